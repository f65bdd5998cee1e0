#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and uses it as a user would:
#   - examples/greedy.c built against libslua through pkg-config and through find_package(slua)
#     (shared and static), each run on the installed model;
#   - the installed slua, which must take its Lua files from the prefix, not from this checkout;
#   - every evaluation task and an example sweep run by the installed slua outside the checkout,
#     on the data and sweep files installed with it;
#   - `require "slua"` from the stock lua5.4 with the LUA_PATH / LUA_CPATH the README documents,
#     50 times with worker threads alive at exit (the module must unload without a crash).
#   test_install.sh BUILD_DIR SOURCE_DIR LIBDIR   (LIBDIR: CMAKE_INSTALL_LIBDIR, e.g. lib)
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
tmp=$(mktemp -d /tmp/slua-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$3
for f in "$libdir/libslua.a" "$libdir/libslua.so.0" "$libdir/pkgconfig/slua.pc" \
         "$libdir/cmake/slua/slua-config.cmake" "$libdir/lua/5.4/slua/core.so" "$libdir/lua/5.4/slua/core_impl.so" \
         include/slua/sl.h \
         share/slua/lua/slua/init.lua share/slua/lua/slua/util.lua share/slua/lua/slua/recipe.lua \
         share/slua/lua/slua/decoders/dola.lua share/slua/lua/slua/chat/init.lua share/slua/lua/slua/chat/options.lua \
         share/slua/lua/slua/eval/init.lua share/slua/lua/slua/eval/tasks/gsm8k.lua share/slua/recipes/dola.lua \
         share/slua/models/stories260K/model.safetensors bin/slua \
         share/slua/data/truthfulqa/TruthfulQA.csv.xz share/slua/examples/sweeps/dola_layers.lua; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
soname=$(readelf -d "$prefix/$libdir/libslua.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libslua.so.0 ] || fail "SONAME is '$soname', expected libslua.so.0"
# only the public API is exported from the shared library
if nm -D --defined-only "$prefix/$libdir/libslua.so" | awk '{print $3}' | grep -v '^sl_' | grep -q .; then
  fail "libslua.so exports symbols outside sl_*"
fi

model=$prefix/share/slua/models/stories260K
want="$("$build/example_greedy" "$src/models/stories260K" 12)"
[ -n "$want" ] || fail "the build tree's example printed nothing"
export LD_LIBRARY_PATH=$prefix/$libdir

# pkg-config, shared
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# shellcheck disable=SC2046
cc -std=c11 -o "$tmp/greedy_pc" "$src/examples/greedy.c" $(pkg-config --cflags --libs slua)
# the program finds libslua without LD_LIBRARY_PATH, also under a prefix the loader does not search
[ "$(env -u LD_LIBRARY_PATH "$tmp/greedy_pc" "$model" 12)" = "$want" ] ||
  fail "pkg-config build: different ids, or libslua.so not found without LD_LIBRARY_PATH"
[ "$(pkg-config --modversion slua)" = "$(sed -n 's/^project(slua VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] ||
  fail "slua.pc has the wrong version"

# find_package, shared and static
mkdir -p "$tmp/consumer"
cp "$src/examples/greedy.c" "$tmp/consumer/"
cat > "$tmp/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.21)
project(consumer C)
find_package(slua 0.1 REQUIRED)
add_executable(greedy_shared greedy.c)
target_link_libraries(greedy_shared PRIVATE slua::slua)
add_executable(greedy_static greedy.c)
target_link_libraries(greedy_static PRIVATE slua::slua_static)
CMAKE
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
[ "$("$tmp/consumer/build/greedy_shared" "$model" 12)" = "$want" ] || fail "find_package shared build: different ids"
if ldd "$tmp/consumer/build/greedy_static" | grep -q libslua; then fail "static build links libslua.so"; fi
[ "$("$tmp/consumer/build/greedy_static" "$model" 12)" = "$want" ] || fail "find_package static build: different ids"

# the installed host reads the prefix, never this checkout
echo 'print(SLUA_ROOT)' > "$tmp/root.lua"
root=$("$prefix/bin/slua" "$tmp/root.lua")
[ "$root" = "$(realpath "$prefix/share/slua")" ] || fail "installed slua has SLUA_ROOT=$root"
out=$(cd "$tmp" && "$prefix/bin/slua" greedy --prompt-ids 1 --max-new-tokens 12 --format json)
case "$out" in *'"model"'*"$prefix/share/slua/models/stories260K"*) ;; *) fail "installed greedy used another model: $out" ;; esac
"$prefix/bin/slua" --list | grep -q '^  dola ' || fail "installed slua --list lacks dola"
# a recipe is a value: required from the installed tree and run in process
cat > "$tmp/value.lua" <<'EOF'
local r = require("recipes.dola"):run{ prompt_ids = "1", max_new_tokens = 3 }
print(r.recipe, #r.new_ids, r.model)
EOF
out=$(cd "$tmp" && "$prefix/bin/slua" "$tmp/value.lua")
[ "$out" = "dola	3	$prefix/share/slua/models/stories260K" ] || fail "installed require \"recipes.dola\": $out"

# every task on its installed data, from a folder that is not the checkout
tasks=$({ "$prefix/bin/slua" eval 2>&1 || true; } | sed -n 's/.*(tasks: \([^;]*\);.*/\1/p' | tr -d ,)
[ -n "$tasks" ] || fail "slua eval lists no tasks"
for task in $tasks; do
  out=$(cd "$tmp" && "$prefix/bin/slua" eval "$task" --limit 1 --max-new-tokens 4 --threads 1 2>&1) ||
    fail "installed slua eval $task: $out"
  case "$out" in *'"n":1'*) ;; *) fail "installed slua eval $task evaluated no item: $out" ;; esac
done
# an example sweep as installed (its prompts next to it, the bundled model)
out=$(cd "$tmp" && "$prefix/bin/slua" sweep "$prefix/share/slua/examples/sweeps/dola_layers.lua" \
      --out "$tmp/sweep" --quiet 2>&1) || fail "installed example sweep: $out"
[ "$(wc -l < "$tmp/sweep/results.jsonl")" -eq 160 ] || fail "installed example sweep: not 160 result lines"

# the stock interpreter, with the paths the README gives
if command -v lua5.4 >/dev/null; then
  PREFIX=$prefix
  export LUA_PATH="$PREFIX/share/slua/lua/?.lua;$PREFIX/share/slua/lua/?/init.lua;;"
  export LUA_CPATH="$PREFIX/$libdir/lua/5.4/?.so;;"
  out=$(cd "$tmp" && lua5.4 -e 'local sl = require "slua"; print(sl.root);
    local m = assert(sl.load()); print(m:session():prefill{1}.logits:argmax());
    print(#sl.recipe.load("greedy"):run({ prompt_ids = "1", max_new_tokens = 2 }, { model = m }).new_ids)')
  [ "$out" = "$prefix/share/slua"$'\n'"403"$'\n'"2" ] || fail "lua5.4 require \"slua\": $out"
  # the module loads libgomp with idle workers that spin briefly, then sleep, unless the user chose a policy
  out=$(cd "$tmp" && env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT lua5.4 -e 'require "slua"; print(os.getenv("GOMP_SPINCOUNT"))')
  [ "$out" = 1000 ] || fail "lua5.4 require \"slua\": spin count '$out', expected 1000"
  out=$(cd "$tmp" && OMP_WAIT_POLICY=active lua5.4 -e 'require "slua"; print(os.getenv("OMP_WAIT_POLICY"))')
  [ "$out" = active ] || fail "lua5.4 require \"slua\" overrode the user's wait policy: $out"
  # OpenMP workers stay alive until the process ends: lua_close unloads the module under them
  cat > "$tmp/threads_at_exit.lua" <<'LUA'
local sl = require "slua"
local r = sl.invoke("greedy", { prompt = "Once upon a time", max_new_tokens = 8, threads = 2 })
local many = sl.generate_many{ recipe = "dola", runs = { { prompt = "The cat", max_new_tokens = 8 },
  { prompt = "One day", max_new_tokens = 6 } }, batch = 2, options = { dola_layers = "high", threads = 2 } }
io.write(#r, " ", #many, "\n")
LUA
  crashes=0
  for _ in $(seq 50); do
    rc=0
    out=$(cd "$tmp" && lua5.4 "$tmp/threads_at_exit.lua" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] || [ "$out" != "1 2" ]; then crashes=$((crashes + 1)); last="rc $rc: $out"; fi
  done
  [ "$crashes" -eq 0 ] || fail "lua5.4 with slua's threads alive at exit: $crashes of 50 runs failed (last: $last)"
fi
echo "install: ok ($prefix)"
