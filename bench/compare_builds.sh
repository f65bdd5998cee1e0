#!/usr/bin/env bash
# Two builds of slua side by side on one checkpoint: prefill and decode tok/s of one sequence
# (bench_model) and of B sequences at once (bench_batch), at the native kernel level and with
# SL_NO_AVX512=1, engines interleaved round by round so that the machine's load drifts over both
# alike. Prints per cell the medians of each build and the median of the per-round ratios B / A.
# This is how the cost of a kernel change is measured (e.g. batch invariance: A = the commit
# before it, B = after).
#   bench/compare_builds.sh BUILD_A BUILD_B MODEL_DIR [--rounds 5] [--threads 2] [--batch 8]
#                           [--prompt-len 128] [--gen 32]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bench/compare_builds.sh BUILD_A BUILD_B MODEL_DIR [options]" >&2; exit 2; }
a="$1" b="$2" model="$3"
shift 3
rounds=5 threads=2 batch=8 plen=128 gen=32
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --prompt-len) plen="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    *) echo "slua: compare_builds.sh: unknown option ($1)" >&2; exit 2 ;;
  esac
done
for d in "$a" "$b"; do
  for t in bench_model bench_batch; do
    [ -x "$d/$t" ] || { echo "slua: compare_builds.sh: $d/$t: not built (cmake --build $d --target $t)" >&2; exit 1; }
  done
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs); threads $threads, B = $batch"
for ((r = 1; r <= rounds; r++)); do
  for level in native avx2; do
    env_level=()
    [ "$level" = avx2 ] && env_level=(SL_NO_AVX512=1)
    for side in A B; do
      d="$a"; [ "$side" = B ] && d="$b"
      single=$(env "${env_level[@]}" "$d/bench_model" "$model" --threads "$threads" --prompt-len "$plen" \
        --gen "$gen" --runs 3 | tail -1)
      batched=$(env "${env_level[@]}" "$d/bench_batch" "$model" --threads "$threads" --prompt-len "$plen" \
        --gen "$gen" --runs 1 --batch "$batch" | grep '^{' | tail -1)
      echo "$single" | field prefill_tok_s >>"$out/$level.$side.prefill"
      echo "$single" | field decode_tok_s >>"$out/$level.$side.decode"
      echo "$batched" | field prefill_tok_s >>"$out/$level.$side.bprefill"
      echo "$batched" | field decode_tok_s >>"$out/$level.$side.bdecode"
    done
  done
done
printf '| level | measure | A tok/s | B tok/s | B / A |\n|---|---|---|---|---|\n'
for level in native avx2; do
  for m in prefill decode bprefill bdecode; do
    label=$m
    case $m in
      prefill) label="prefill $plen, B = 1" ;;
      decode) label="decode, B = 1" ;;
      bprefill) label="prefill $plen, B = $batch" ;;
      bdecode) label="decode, B = $batch" ;;
    esac
    ratio=$(paste "$out/$level.B.$m" "$out/$level.A.$m" | awk '{ print $1 / $2 }' | median)
    printf '| %s | %s | %.1f | %.1f | %.3f |\n' "$level" "$label" "$(median <"$out/$level.A.$m")" \
      "$(median <"$out/$level.B.$m")" "$ratio"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
