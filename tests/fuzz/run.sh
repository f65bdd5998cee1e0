#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS over its committed seeds (tests/fuzz/corpus/<target>/,
# never written to) and a working corpus (BUILD/fuzz/work/<target>/, where new inputs go).
#   run.sh BUILD_DIR SECONDS [TARGET...]     (default: every target)
# Any crash, sanitizer report, leak or input slower than 1 s fails the run; the input is saved in
# BUILD/fuzz/artifacts/ -- add it to the target's corpus folder as crash-<what> once fixed.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config tokenizer_load encode stream options chat_template intervention)

declare -A max_len=([safetensors]=8192 [config]=4096 [tokenizer_load]=65536 [encode]=2048 [stream]=3072
                    [options]=1024 [chat_template]=4096 [intervention]=4096)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1
mkdir -p "$build/fuzz/artifacts"
failed=0
summary=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: no $bin (make fuzz builds it)" >&2; exit 2; }
  work=$build/fuzz/work/$t
  mkdir -p "$work"
  log=$build/fuzz/$t.log
  "$bin" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2560 -max_len="${max_len[$t]}" \
    -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$build/fuzz/artifacts/$t-" \
    "$work" "$src/tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    failed=1
    summary+=("$(printf '%-16s FAILED (exit %d; log %s)' "$t" "$rc" "$log")")
    grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$log" | head -8 >&2
  else
    summary+=("$(printf '%-16s %12s executions  %8s/s  %6s corpus files' "$t" "${execs:-?}" "${rate:-?}" \
      "$(ls "$work" | wc -l)")")
  fi
done
printf 'fuzz (%s s per target):\n' "$seconds"
printf '  %s\n' "${summary[@]}"
exit $failed
