#!/usr/bin/env bash
# Install the Debian 12 packages slua needs to build and test, if any are missing.
#   liblua5.4-dev    the Lua 5.4 host and module
#   libjson-c-dev    config.json, safetensors headers, tokenizer.json
#   libpcre2-dev     tokenizer pre-tokenizer regexes (\p{L}, look-ahead, case-insensitive groups)
#   libutf8proc-dev  Unicode NFC/NFKC normalization and script classes for tokenizers
#   libcriterion-dev the C test framework
#   libmicrohttpd-dev GNU libmicrohttpd: the HTTP/1.1 side of `slua serve` (keep-alive, chunked
#                    streams, 100-continue, connection limits and timeouts, one thread per
#                    connection), so the server parses no HTTP itself
#   nodejs, npm      the serve tests drive the server with the official `openai` npm client
#                    (installed only when no node / npm is on the PATH)
#   librsvg2-bin     rsvg-convert, to check in tests that SVG heatmaps and sweep plots render
#   lua5.4           the stock interpreter, to test slua.core as a plain Lua module
#   python3          its strict JSON parser checks every recipe's JSON output in a test
#   chromium         headless, the browser the HTML view's test opens its pages in
#   stress-ng, bc    bench/busy_threads.sh: the thread count on a machine whose cores are busy
#   clang, libclang-rt-14-dev, libomp-14-dev
#                    make fuzz: libFuzzer and the sanitizer runtimes for clang, OpenMP for clang
# (Slurm for the sweep's job-array test: scripts/slurm-local.sh install, run by .ci/run)
set -euo pipefail
packages=(build-essential cmake pkg-config xz-utils liblua5.4-dev libjson-c-dev
          libpcre2-dev libutf8proc-dev libcriterion-dev libmicrohttpd-dev librsvg2-bin lua5.4 python3 chromium
          stress-ng bc
          clang libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js from Debian unless one is installed already (another distribution's own npm would
# conflict with Debian's npm package)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
