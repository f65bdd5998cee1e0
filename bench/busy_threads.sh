#!/usr/bin/env bash
# The thread count on a busy machine: `slua eval truthfulqa_mc --limit 20 --early-exit-layers -1`
# with --threads 1 and with the default (0 = all CPUs), while stress-ng keeps every core busy,
# under the wait policy slua sets (GOMP_SPINCOUNT=1000: idle workers spin briefly, then sleep),
# with workers that sleep at once (OMP_WAIT_POLICY=passive) and under libgomp's default, which a
# plain process gets (GOMP_SPINCOUNT=300000: idle workers spin that long after each region).
# Medians of REPS runs, interleaved.
#   bench/busy_threads.sh [SLUA (default build/slua)] [REPS (default 3)]
set -euo pipefail
slua=${1:-build/slua}
reps=${2:-3}
command -v stress-ng >/dev/null || { echo "busy_threads: needs stress-ng (scripts/install-deps.sh)" >&2; exit 1; }
cpus=$(nproc)
stress-ng --cpu "$cpus" --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null || true' EXIT

run() { # policy threads -> wall seconds
  local policy=$1 threads=$2 start end
  start=$(date +%s.%N)
  case "$policy" in
    slua) env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$slua" eval truthfulqa_mc --limit 20 --early-exit-layers -1 \
            --threads "$threads" >/dev/null ;;
    passive) env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive "$slua" eval truthfulqa_mc --limit 20 \
            --early-exit-layers -1 --threads "$threads" >/dev/null ;;
    *) env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000 "$slua" eval truthfulqa_mc --limit 20 --early-exit-layers -1 \
            --threads "$threads" >/dev/null ;;
  esac
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

declare -A times
configs="slua:1 slua:0 passive:1 passive:0 spin:1 spin:0"
for _ in $(seq "$reps"); do
  for c in $configs; do times[$c]+="$(run "${c%%:*}" "${c##*:}")"$'\n'; done
done
echo "stress-ng --cpu $cpus beside slua eval truthfulqa_mc --limit 20 (median of $reps, wall seconds)"
printf '%-48s %8s\n' "setting" "wall s"
for c in $configs; do
  case "${c%%:*}" in
    slua) policy="slua's policy (spin 1000)" ;; passive) policy="passive" ;; *) policy="libgomp's default (spin 300000)" ;;
  esac
  label="threads ${c##*:}, $policy"
  printf '%-48s %8.2f\n' "$label" "$(printf '%s' "${times[$c]}" | median)"
done
