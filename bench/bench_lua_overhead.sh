#!/usr/bin/env bash
# Cost of the Lua layer per decode step: the greedy recipe (build/slua recipes/greedy.lua,
# JSON output with a top-8 per step) against the same greedy loop in C (example_greedy).
#   bench/bench_lua_overhead.sh [MODEL_DIR] [--runs 7] [--threads 1]
# Each program runs with --max-new-tokens 16 and 80; the difference of the medians over 64
# gives the time of one decode step without load and prefill. The runs of the four variants
# are interleaved so that drifting machine load hits all alike. Both programs must produce
# the same ids. Default model: build/bench-models/smollm2-135m (scripts/bench.sh makes it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
model="$build/bench-models/smollm2-135m"
runs=7
threads=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -*) echo "usage: $0 [MODEL_DIR] [--runs N] [--threads N]" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done
[ -f "$model/model.safetensors" ] || { echo "slua: $model: no model.safetensors (run scripts/bench.sh)" >&2; exit 1; }
short=16
long=80
prompt=1,2,3

lua_run() {
  "$build/slua" "$root/recipes/greedy.lua" --model "$model" --prompt-ids "$prompt" \
    --max-new-tokens "$1" --format json --threads "$threads"
}
c_run() {
  OMP_NUM_THREADS="$threads" "$build/example_greedy" "$model" "$1" "$prompt"
}

# Same ids from both, and no early stop at an EOS id (which would shorten the long runs).
lua_ids="$(lua_run "$long" | python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin)["new_ids"])))')"
c_ids="$(c_run "$long")"
if [ "$lua_ids" != "$c_ids" ]; then
  echo "slua: the recipe and the C loop disagree:" >&2
  echo "  lua: $lua_ids" >&2
  echo "  c:   $c_ids" >&2
  exit 1
fi
n_ids="$(tr ',' '\n' <<<"$c_ids" | wc -l)"
[ "$n_ids" -eq "$long" ] || { echo "slua: generation stopped after $n_ids tokens" >&2; exit 1; }

declare -A times
now_ns() { date +%s%N; }
for ((i = 0; i < runs; i++)); do
  for variant in lua:$short c:$short lua:$long c:$long; do
    kind="${variant%%:*}" n="${variant##*:}"
    t0="$(now_ns)"
    if [ "$kind" = lua ]; then lua_run "$n" >/dev/null; else c_run "$n" >/dev/null; fi
    t1="$(now_ns)"
    times[$variant]+="$(( (t1 - t0) / 1000 )) "
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
steps=$((long - short))
lua_s="$(median "${times[lua:$short]}")" lua_l="$(median "${times[lua:$long]}")"
c_s="$(median "${times[c:$short]}")" c_l="$(median "${times[c:$long]}")"
awk -v ls="$lua_s" -v ll="$lua_l" -v cs="$c_s" -v cl="$c_l" -v n="$steps" -v runs="$runs" -v model="$model" \
    -v threads="$threads" 'BEGIN {
  lua = (ll - ls) / n; c = (cl - cs) / n;
  printf "model %s, %d thread(s), median of %d runs, %d steps (max-new-tokens %d - %d)\n", model, threads, runs, n, 80, 16;
  printf "%-28s %10s %10s %12s\n", "", "16 tok ms", "80 tok ms", "ms/step";
  printf "%-28s %10.1f %10.1f %12.3f\n", "Lua recipe (greedy, json)", ls / 1000, ll / 1000, lua / 1000;
  printf "%-28s %10.1f %10.1f %12.3f\n", "C loop (example_greedy)", cs / 1000, cl / 1000, c / 1000;
  printf "Lua overhead per step: %.3f ms (%.1f %%)\n", (lua - c) / 1000, 100 * (lua - c) / c;
  printf "{\"model\":\"%s\",\"threads\":%d,\"runs\":%d,\"lua_ms_per_step\":%.4f,\"c_ms_per_step\":%.4f,\"overhead_pct\":%.2f}\n",
         model, threads, runs, lua / 1000, c / 1000, 100 * (lua - c) / c;
}'
