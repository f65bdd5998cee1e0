#!/usr/bin/env bash
# The thread count on a busy machine: `slua eval truthfulqa_mc --limit 20 --early-exit-layers -1`
# with --threads 1 and with the default (0 = all CPUs), while stress-ng keeps every core busy,
# with the wait policy slua sets (idle workers sleep) and with libgomp's default, which a plain
# process gets (GOMP_SPINCOUNT=300000: idle workers spin that long after each parallel region).
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
  if [ "$policy" = passive ]; then
    env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$slua" eval truthfulqa_mc --limit 20 --early-exit-layers -1 \
      --threads "$threads" >/dev/null
  else
    env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000 "$slua" eval truthfulqa_mc --limit 20 --early-exit-layers -1 \
      --threads "$threads" >/dev/null
  fi
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

declare -A times
configs="passive:1 passive:0 spin:1 spin:0"
for _ in $(seq "$reps"); do
  for c in $configs; do times[$c]+="$(run "${c%%:*}" "${c##*:}")"$'\n'; done
done
echo "stress-ng --cpu $cpus beside slua eval truthfulqa_mc --limit 20 (median of $reps, wall seconds)"
printf '%-34s %8s\n' "setting" "wall s"
for c in $configs; do
  label="threads ${c##*:}, "$([ "${c%%:*}" = passive ] && echo "slua's policy (passive)" || echo "libgomp's default (spin)")
  printf '%-34s %8.2f\n' "$label" "$(printf '%s' "${times[$c]}" | median)"
done
