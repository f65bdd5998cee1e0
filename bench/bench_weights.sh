#!/usr/bin/env bash
# BF16 against Q8_0 weights (--weights q8_0) at the SmolLM2-135M shape: prefill and decode
# tok/s from interleaved bench_model runs (stored, q8_0, stored, q8_0, ...), so that the
# machine's load drifts over both alike; prints the medians, their ratios and the load average.
#   bench/bench_weights.sh [--rounds 5] [--threads 1] [--gen 32] [MODEL_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
rounds=5 threads=1 gen=32 dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    -*) echo "slua: bench_weights.sh: unknown option ($1)" >&2; exit 2 ;;
    *) dir="$1"; shift ;;
  esac
done
cmake --build "$build" -j"$(nproc)" --target sl_make_checkpoint bench_model >/dev/null
if [ -z "$dir" ]; then
  dir="$build/bench-models/smollm2-135m"
  [ -f "$dir/model.safetensors" ] ||
    "$build/sl_make_checkpoint" "$root/bench/configs/smollm2-135m.json" "$dir" --dtype bf16 --seed 1
fi
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A prefill decode
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
for ((r = 1; r <= rounds; r++)); do
  for w in stored q8_0; do
    json="$("$build/bench_model" "$dir" --threads "$threads" --gen "$gen" --runs 1 --retries 0 --weights "$w" 2>/dev/null |
      tail -n 1)"
    prefill[$w]+="$(field prefill_tok_s <<<"$json") "
    decode[$w]+="$(field decode_tok_s <<<"$json") "
  done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
for w in stored q8_0; do
  p=$(tr ' ' '\n' <<<"${prefill[$w]}" | grep . | median)
  d=$(tr ' ' '\n' <<<"${decode[$w]}" | grep . | median)
  eval "p_$w=$p d_$w=$d"
  printf '%-7s prefill %8.1f tok/s  decode %7.2f tok/s  (median of %d; prefill runs: %s)\n' "$w" "$p" "$d" "$rounds" \
    "${prefill[$w]}"
done
awk -v ps="$p_stored" -v pq="$p_q8_0" -v ds="$d_stored" -v dq="$d_q8_0" \
  'BEGIN { printf "q8_0 / stored: prefill %.2fx, decode %.2fx\n", pq / ps, dq / ds }'
