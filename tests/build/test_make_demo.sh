#!/usr/bin/env bash
# `make demo` on a fresh build folder builds the host alone and prints nothing but the story.
#   test_make_demo.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
tmp=$(mktemp -d /tmp/slua-demo-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(make --no-print-directory -C "$src" demo DEMO_DIR="$tmp/build" JOBS=2 2>&1) || fail "make demo failed: $out"
[ "${out:0:16}" = "Once upon a time" ] || fail "make demo printed more than the story: $(head -c 600 <<<"$out")"
[ "$(wc -l <<<"$out")" -le 12 ] || fail "make demo printed $(wc -l <<<"$out") lines"
[ -x "$tmp/build/slua" ] || fail "no slua built"
for unwanted in test_forward test_tokenizer bench_matmul example_greedy sl_make_checkpoint libslua.so; do
  [ ! -e "$tmp/build/$unwanted" ] || fail "make demo built $unwanted"
done
echo "make demo: ok"
