#!/usr/bin/env bash
# Build, generate the random-weight BF16 benchmark checkpoints (once) and run bench_model
# at 1 and 2 threads for each shape in bench/configs/.
#   scripts/bench.sh [extra bench_model options, e.g. --runs 9 --bandwidth-gbs 29]
# Results: readable lines on stdout; the JSON lines are also collected in
# build/bench-results.jsonl.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
models="$build/bench-models"
results="$build/bench-results.jsonl"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target sl_make_checkpoint bench_model >/dev/null

mkdir -p "$models"
: >"$results"
for shape in smollm2-135m llama-3.2-1b; do
  dir="$models/$shape"
  # The tool renames its output into place only when complete, so presence means finished.
  if [ ! -f "$dir/model.safetensors" ]; then
    "$build/sl_make_checkpoint" "$root/bench/configs/$shape.json" "$dir" --dtype bf16 --seed 1
  fi
  for threads in 1 2; do
    echo "== $shape, $threads thread(s)"
    report="$("$build/bench_model" "$dir" --threads "$threads" --runs 5 "$@")"
    echo "$report"
    tail -n 1 <<<"$report" >>"$results"
  done
done
echo "JSON results: $results"
