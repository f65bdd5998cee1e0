#!/usr/bin/env bash
# `make test` runs every stage even when one fails, names the failed ones and fails itself;
# `make install` installs the release build under PREFIX.
# Stand-in stages (one failing, one passing after it) replace the real ones.
#   test_make_test.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
tmp=$(mktemp -d /tmp/slua-make-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$tmp/stages.mk" <<MK
.PHONY: stage_broken stage_fine
stage_broken:
	@echo broken-ran >> $tmp/ran; exit 1
stage_fine:
	@echo fine-ran >> $tmp/ran
MK
stages="stage_broken stage_fine"
# the stages are taken from TEST_STAGES (a dry run must not mention the real suite)
plan=$(make --no-print-directory -n -C "$src" -f Makefile -f "$tmp/stages.mk" test TEST_STAGES="$stages" 2>&1) ||
  fail "make -n test failed: $plan"
case "$plan" in *ctest*) fail "make test ignores TEST_STAGES: $plan" ;; esac

rc=0
out=$(make --no-print-directory -C "$src" -f Makefile -f "$tmp/stages.mk" test TEST_STAGES="$stages" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "make test succeeded with a failing stage: $out"
[ "$(cat "$tmp/ran")" = $'broken-ran\nfine-ran' ] || fail "not every stage ran: $(cat "$tmp/ran")"
grep -q "failed stages: stage_broken$" <<<"$out" || fail "the failed stage is not named: $out"

: > "$tmp/ran"
out=$(make --no-print-directory -C "$src" -f Makefile -f "$tmp/stages.mk" test TEST_STAGES="stage_fine" 2>&1) ||
  fail "make test failed with passing stages: $out"
# make install: the release build, installed under PREFIX (what puts `slua` on PATH)
plan=$(make --no-print-directory -n -C "$src" install PREFIX="$tmp/prefix" 2>&1) || fail "make -n install failed: $plan"
grep -q "cmake --install build --prefix $tmp/prefix" <<<"$plan" || fail "make install does not install into PREFIX: $plan"
echo "make test: ok"
