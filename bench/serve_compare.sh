#!/usr/bin/env bash
# slua serve side by side with llama.cpp's llama-server on the same weights, and with slua's
# in-process batch: time to first token and decode rate of one client, and the aggregate rate
# of 16 concurrent clients (bench/serve_bench.mjs), rounds interleaved between the engines.
#
#   bench/serve_compare.sh --slua-model DIR --gguf FILE --llama-server BIN [--threads 2]
#                          [--clients 1,16] [--rounds 5] [--max-tokens 64] [--out FILE.jsonl]
#
# It never builds or downloads llama.cpp (see "Side by side with llama.cpp" in bench/README.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
slua_model="" gguf="" llama="" threads=2 clients="1,16" rounds=5 max_tokens=64 out="$root/build/serve-compare.jsonl"
die() { echo "slua: serve_compare.sh: $1" >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "missing value ($1)"
  case "$1" in
    --slua-model) slua_model="$2" ;; --gguf) gguf="$2" ;; --llama-server) llama="$2" ;;
    --threads) threads="$2" ;; --clients) clients="$2" ;; --rounds) rounds="$2" ;;
    --max-tokens) max_tokens="$2" ;; --out) out="$2" ;;
    *) die "unknown option ($1)" ;;
  esac
  shift 2
done
[ -n "$slua_model" ] || die "--slua-model is required"
slua="$root/build/slua"
max_par=$(echo "$clients" | tr ',' '\n' | sort -n | tail -1)

wait_port() { # wait for a server's /health to answer
  for _ in $(seq 1 600); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "no server at $1"
}

for round in $(seq 1 "$rounds"); do
  # slua serve
  "$slua" serve --model "$slua_model" --port 18080 --parallel "$max_par" --threads "$threads" 2>/dev/null &
  pid=$!; wait_port http://127.0.0.1:18080
  for c in ${clients//,/ }; do
    node "$root/bench/serve_bench.mjs" http://127.0.0.1:18080 "$c" 1 "$max_tokens" \
      | sed "s/^{/{\"engine\":\"slua serve\",\"round\":$round,/" >>"$out"
  done
  kill "$pid"; wait "$pid" || true
  # llama-server
  if [ -n "$llama" ] && [ -n "$gguf" ]; then
    "$llama" -m "$gguf" --port 18081 -t "$threads" -tb "$threads" -np "$max_par" -c $((max_par * 512)) \
      --cont-batching >/dev/null 2>&1 &
    pid=$!; wait_port http://127.0.0.1:18081
    for c in ${clients//,/ }; do
      node "$root/bench/serve_bench.mjs" http://127.0.0.1:18081 "$c" 1 "$max_tokens" \
        | sed "s/^{/{\"engine\":\"llama-server\",\"round\":$round,/" >>"$out"
    done
    kill "$pid"; wait "$pid" || true
  fi
  # in process
  for c in ${clients//,/ }; do
    "$slua" "$root/bench/serve_inprocess.lua" "$slua_model" "$c" 1 "$max_tokens" "$threads" \
      | sed "s/^{/{\"round\":$round,/" >>"$out"
  done
done
echo "serve_compare.sh: results in $out" >&2
