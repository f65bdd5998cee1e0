#!/usr/bin/env bash
# slua side by side with llama.cpp on the same weights, runs interleaved (slua, llama.cpp, slua,
# llama.cpp, ...) so that the machine's bandwidth drift hits both engines alike.
#
#   bench/peer_compare.sh --peer-native DIR --peer-avx2 DIR --models DIR [--threads 1,2] [--runs 3]
#                         [--out FILE.jsonl] [--shapes smollm2-135m,llama-3.2-1b] [--dtypes bf16,f16,q8_0,bf16c]
#                         [--levels native,avx2] [--parts single,batch] [--batch 1,2,4,8,16,32]
#                         [--max-foreign 0.03] [--redo 2] [--idle-timeout 900] [--tools DIR] [--dry-run]
#
# It runs an already-built llama.cpp; it never builds or downloads one (bench/README.md, "Side by
# side with llama.cpp", says how). --peer-native / --peer-avx2 are llama.cpp build directories
# (holding bin/llama-bench and bin/llama-batched-bench): a GGML_NATIVE=ON build, and one limited to
# AVX2 that is compared with slua under SL_NO_AVX512=1.
#
# --models DIR holds, for each shape (the names of bench/configs/*.json):
#   SHAPE-bf16/          sl_make_checkpoint --dtype bf16 --seed 1, plus the family's tokenizer.json
#   SHAPE-f16/           the same with --dtype f16
#   SHAPE-bf16.gguf      llama-quantize of the F32 GGUF converted from SHAPE-bf16/, type BF16 (or
#                        bench/families_to_gguf.py's BF16 GGUF, for the other families)
#   SHAPE-f16.gguf       the same from SHAPE-f16/, type F16
#   SHAPE-q8_0.gguf      from SHAPE-bf16/, type Q8_0 (slua: SHAPE-bf16/ with --weights q8_0)
# The dtype bf16c ("BF16C" in the records) is slua's SHAPE-bf16/ with --compute bf16 against the
# same SHAPE-bf16.gguf: llama.cpp's BF16 path rounds its activations to BF16 as that mode does.
# A (shape, dtype) without its safetensors is skipped with a message; one without its GGUF (a
# family the peer cannot convert or run) is measured for slua alone.
#
# Per shape x dtype x kernel level x threads, --runs rounds of
#   single  slua bench_model (prompt 128, 64 decode steps after it), then llama-bench -p 128 -n 64
#           (pp128 and tg64 from an empty cache, each after its own warm-up run)
#   batch   slua bench_batch --batch LIST (when built), then llama-batched-bench -c 8192 -b 2048
#           -ub 512 -npp 128 -ntg 64 -npl LIST
# each program measuring once per round. Before each timed command the script waits for an idle
# machine and measures the CPU share other processes took while it ran (cpuwatch.py from --tools,
# default ../shared/tools/peer-bench, when present; the wait gives up after --idle-timeout seconds);
# a command above --max-foreign is redone up to --redo times, and its records say `disturbed` if it
# never ran clean. --dry-run prints the commands only. bwprobe (built into
# build/ from --tools/bwprobe.c) measures the read bandwidth at each thread count before and
# after the series.
#
# Output: JSON lines (default build/peer-compare.jsonl, appended), one per measurement:
#   {"engine":"slua"|"llama.cpp","shape":...,"dtype":"BF16"|"F16"|"Q8_0","level":"native"|"avx2",
#    "threads":T,"phase":"prefill"|"decode"|"batch_prefill"|"batch_decode","batch":B (batch phases),
#    "tok_s":x,"run":r,"foreign_share":f|null,"wall_s":s|null,"attempts":n,"disturbed":bool}
# plus {"phase":"bandwidth","when":"before"|"after","threads":T,"gb_s":x,...} and one
# {"phase":"meta",...} line per invocation. `build/slua bench/peer_table.lua --input FILE` turns
# them into the Markdown table of medians and slua / llama.cpp ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
me="peer_compare.sh"

peer_native="" peer_avx2="" models="" threads_list="1,2" runs=3 out="$build/peer-compare.jsonl"
shapes="smollm2-135m,llama-3.2-1b" dtypes="bf16,f16,q8_0" levels="native,avx2" parts="single,batch"
batches="1,2,4,8,16,32" max_foreign=0.03 redo=2 idle_timeout=900 tools="$root/../shared/tools/peer-bench" dry_run=0
prompt_len=128 gen=64

die() { echo "slua: $me: $1 ($2)" >&2; exit 2; }
usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
need_value() { [ $# -ge 2 ] || die "missing value" "$1"; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) dry_run=1; shift; continue ;;
  esac
  need_value "$@"
  case "$1" in
    --peer-native) peer_native="$2" ;;
    --peer-avx2) peer_avx2="$2" ;;
    --models) models="$2" ;;
    --threads) threads_list="$2" ;;
    --runs) runs="$2" ;;
    --out) out="$2" ;;
    --shapes) shapes="$2" ;;
    --dtypes) dtypes="$2" ;;
    --levels) levels="$2" ;;
    --parts) parts="$2" ;;
    --batch) batches="$2" ;;
    --max-foreign) max_foreign="$2" ;;
    --redo) redo="$2" ;;
    --idle-timeout) idle_timeout="$2" ;;
    --tools) tools="$2" ;;
    *) die "unknown option" "$1; see --help" ;;
  esac
  shift 2
done

# ---------------------------------------------------------------------------- checks
int_list() { [[ "$2" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "invalid option value" "$1 $2; expected positive integers such as 1,2"; }
word_list() { # flag value allowed...
  local flag="$1" value="$2" w ok a
  shift 2
  IFS=, read -ra ws <<<"$value"
  [ ${#ws[@]} -gt 0 ] || die "invalid option value" "$flag '$value'"
  for w in "${ws[@]}"; do
    ok=0
    for a in "$@"; do [ "$w" = "$a" ] && ok=1; done
    [ $ok = 1 ] || die "invalid option value" "$flag $w; expected some of: $*"
  done
}
int_list --threads "$threads_list"
int_list --batch "$batches"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "invalid option value" "--runs $runs; expected a positive integer"
[[ "$redo" =~ ^[0-9]+$ ]] || die "invalid option value" "--redo $redo; expected a non-negative integer"
[[ "$idle_timeout" =~ ^[0-9]+$ ]] || die "invalid option value" "--idle-timeout $idle_timeout; expected seconds"
[[ "$max_foreign" =~ ^(0|1)?(\.[0-9]+)?$ && "$max_foreign" != "" ]] ||
  die "invalid option value" "--max-foreign $max_foreign; expected a share in [0, 1]"
word_list --dtypes "$dtypes" bf16 f16 q8_0 bf16c
word_list --levels "$levels" native avx2
word_list --parts "$parts" single batch
IFS=, read -ra shape_arr <<<"$shapes"
for s in "${shape_arr[@]}"; do
  [ -f "$root/bench/configs/$s.json" ] || die "unknown shape" "--shapes $s; expected a name of bench/configs/*.json"
done
[ -n "$models" ] || die "missing option" "--models DIR"
[ -d "$models" ] || die "not a directory" "--models $models"

# The directory of a peer build's programs: DIR/bin (a CMake build tree) or DIR itself.
peer_bin() {
  local dir="$1"
  if [ -x "$dir/bin/llama-bench" ]; then echo "$dir/bin"
  elif [ -x "$dir/llama-bench" ]; then echo "$dir"
  else return 1; fi
}
declare -A peer
for level in ${levels//,/ }; do
  dir="$peer_native" flag=--peer-native
  [ "$level" = avx2 ] && dir="$peer_avx2" flag=--peer-avx2
  [ -n "$dir" ] || die "missing option" "$flag DIR (or leave $level out of --levels)"
  peer[$level]="$(peer_bin "$dir")" || die "no llama-bench in the peer build" "$flag $dir; expected DIR/bin/llama-bench"
done
command -v python3 >/dev/null || die "python3 not found" "it parses the programs' JSON output"
for prog in bench_model sl_make_checkpoint; do
  [ -x "$build/$prog" ] || die "missing program" "$build/$prog; build it with make build"
done

have_batch=0
batch_q8=0
if [ -x "$build/bench_batch" ]; then
  have_batch=1
  "$build/bench_batch" --help 2>&1 | grep -q -- "--weights" && batch_q8=1
fi
if [[ ",$parts," == *,batch,* && $have_batch = 0 ]]; then
  echo "$me: $build/bench_batch is not built: the many-sequences part runs llama-batched-bench alone" >&2
fi

cpuwatch=""
[ -f "$tools/cpuwatch.py" ] && cpuwatch="$tools/cpuwatch.py"
[ -n "$cpuwatch" ] || echo "$me: no $tools/cpuwatch.py: no idle wait, foreign CPU not measured" >&2
bwprobe=""
if [ -f "$tools/bwprobe.c" ]; then
  bwprobe="$build/bwprobe"
  if [ ! -x "$bwprobe" ] || [ "$tools/bwprobe.c" -nt "$bwprobe" ]; then
    gcc -O2 -mavx2 -fopenmp "$tools/bwprobe.c" -o "$bwprobe" || die "cannot build bwprobe" "$tools/bwprobe.c"
  fi
else
  echo "$me: no $tools/bwprobe.c: bandwidth not probed" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
failures=0

# ---------------------------------------------------------------------------- output parsing
# python3 parse.py KIND STDOUT_FILE CONTEXT_JSON: prints the records found in a program's output,
# each being CONTEXT plus the measurement; exits 1 if the output holds none.
cat >"$tmp/parse.py" <<'PY'
import json, re, sys

kind, path, ctx = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
text = open(path, encoding="utf-8", errors="replace").read()


def objects():
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                yield v


out = []


def rec(phase, tok_s, **extra):
    r = dict(ctx)
    r["phase"] = phase
    r.update(extra)
    r["tok_s"] = round(float(tok_s), 3)
    out.append(r)


if kind == "slua_model":
    for v in objects():
        if "prefill_tok_s" in v and "decode_tok_s" in v:
            rec("prefill", v["prefill_tok_s"])
            rec("decode", v["decode_tok_s"])
elif kind == "slua_batch":
    for v in objects():
        if "batch" in v:
            if "prefill_tok_s" in v:
                rec("batch_prefill", v["prefill_tok_s"], batch=int(v["batch"]))
            if "decode_tok_s" in v:
                rec("batch_decode", v["decode_tok_s"], batch=int(v["batch"]))
elif kind == "peer_bench":  # llama-bench -o jsonl: one object per test
    for v in objects():
        if "avg_ts" not in v:
            continue
        extra = {"build": v.get("build_commit")}
        if v.get("n_prompt", 0) > 0 and v.get("n_gen", 0) == 0:
            rec("prefill", v["avg_ts"], **extra)
        elif v.get("n_prompt", 0) == 0 and v.get("n_gen", 0) > 0:
            rec("decode", v["avg_ts"], **extra)
elif kind == "peer_batched":  # llama-batched-bench --output-format jsonl, else its Markdown table
    for v in objects():
        if "pl" in v and "speed_tg" in v:
            rec("batch_prefill", v["speed_pp"], batch=int(v["pl"]))
            rec("batch_decode", v["speed_tg"], batch=int(v["pl"]))
    if not out:
        # |    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 10 and re.fullmatch(r"\d+", cells[2] or ""):
                rec("batch_prefill", cells[5], batch=int(cells[2]))
                rec("batch_decode", cells[7], batch=int(cells[2]))
elif kind == "bwprobe":
    for v in objects():
        if "median_gbs" in v:
            r = dict(ctx)
            r.update(phase="bandwidth", gb_s=v["median_gbs"], gb_s_min=v.get("min_gbs"), gb_s_max=v.get("max_gbs"))
            out.append(r)
else:
    sys.exit("unknown kind " + kind)

for r in out:
    print(json.dumps(r, allow_nan=False))
sys.exit(0 if out else 1)
PY

# Context of a record as a JSON object: ctx_json key=value ...; the keys below hold numbers (or
# null), booleans stay booleans, everything else is a string.
ctx_json() {
  python3 - "$@" <<'PY'
import json, sys
numeric = {"threads", "run", "batch", "ncpu", "runs", "max_foreign", "foreign_share", "wall_s", "attempts"}
d = {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    if k in numeric:
        d[k] = None if v == "null" else (int(v) if v.isdigit() else float(v))
    elif v in ("true", "false"):
        d[k] = v == "true"
    else:
        d[k] = v
print(json.dumps(d, allow_nan=False))
PY
}

shown() { # the arguments as a shell would take them back (quoted only where needed)
  local a s=""
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./,:=+-]+$ ]]; then s+="$a "; else s+="$(printf '%q' "$a") "; fi
  done
  echo "${s% }"
}

# timed KIND "ctx k=v ..." ENV... -- CMD...: wait for an idle machine, run CMD (with the ENV
# assignments) under cpuwatch, redo while other processes took more than --max-foreign of the CPUs,
# append the parsed records to --out.
timed() {
  local kind="$1" ctx="$2"
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  echo "  $(shown "${envs[@]}" "$@")" >&2
  [ $dry_run = 1 ] && return 0
  local attempt=0 foreign=null wall=null rc disturbed=false
  while :; do
    attempt=$((attempt + 1))
    if [ -n "$cpuwatch" ]; then
      python3 "$cpuwatch" wait 0.05 2 "$idle_timeout" >/dev/null
      rc=0
      python3 "$cpuwatch" run "$tmp/cw.json" -- env "${envs[@]}" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
      read -r foreign wall < <(python3 -c 'import json, sys
w = json.load(open(sys.argv[1]))
print(w["foreign_share"], w["wall_s"])' "$tmp/cw.json")
    else
      rc=0
      env "${envs[@]}" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
    fi
    if [ $rc != 0 ]; then
      echo "$me: failed (exit $rc): $(shown "$@")" >&2
      tail -n 5 "$tmp/stderr" >&2
      failures=$((failures + 1))
      return 0
    fi
    if [ "$foreign" = null ] || python3 -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))' \
      "$foreign" "$max_foreign"; then
      break
    fi
    if [ $attempt -gt "$redo" ]; then
      disturbed=true
      echo "    other processes took $foreign of the CPUs in each of $attempt attempts; kept, marked disturbed" >&2
      break
    fi
    echo "    other processes took $foreign of the CPUs; again" >&2
  done
  # shellcheck disable=SC2086
  if ! python3 "$tmp/parse.py" "$kind" "$tmp/stdout" \
    "$(ctx_json $ctx foreign_share="$foreign" wall_s="$wall" attempts="$attempt" disturbed="$disturbed")" >"$tmp/records"; then
    echo "$me: no measurement in the output of $(shown "$@")" >&2
    tail -n 5 "$tmp/stdout" >&2
    failures=$((failures + 1))
    return 0
  fi
  cat "$tmp/records" >>"$out"
  python3 -c 'import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print("    " + ", ".join("%s%s %.2f" % (r["phase"], " B=%d" % r["batch"] if "batch" in r else "",
      r.get("tok_s", r.get("gb_s"))) for r in rs) + ("" if sys.argv[2] == "null" else ", foreign %s" % sys.argv[2]))' \
    "$tmp/records" "$foreign" >&2
}

probe_bandwidth() { # before|after
  [ -n "$bwprobe" ] || return 0
  local t
  for t in ${threads_list//,/ }; do
    timed bwprobe "engine=bwprobe when=$1 threads=$t" OMP_NUM_THREADS="$t" -- "$bwprobe" "$t" 7 1024
  done
}

# ---------------------------------------------------------------------------- the series
if [ $dry_run = 0 ]; then
  peer_builds=""
  for level in ${levels//,/ }; do peer_builds+="$level=${peer[$level]} "; done
  ctx_json phase=meta time="$(date -u +%FT%TZ)" cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    ncpu="$(nproc)" loadavg="$(cut -d' ' -f1-3 /proc/loadavg)" \
    slua_commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    peer="${peer_builds% }" runs="$runs" max_foreign="$max_foreign" >>"$out"
fi
echo "== bandwidth before" >&2
probe_bandwidth before

for shape in "${shape_arr[@]}"; do
  for dtype in ${dtypes//,/ }; do
    slua_dir="$models/$shape-$dtype" weights=stored compute=exact gguf="$models/$shape-$dtype.gguf"
    [ "$dtype" = q8_0 ] && slua_dir="$models/$shape-bf16" weights=q8_0
    [ "$dtype" = bf16c ] && slua_dir="$models/$shape-bf16" compute=bf16 gguf="$models/$shape-bf16.gguf"
    if [ ! -f "$slua_dir/model.safetensors" ]; then
      echo "== skip $shape $dtype: missing $slua_dir/model.safetensors" >&2
      continue
    fi
    # A family the peer build cannot convert or run still gets slua's figures.
    have_gguf=1
    [ -f "$gguf" ] || { have_gguf=0; echo "== $shape $dtype: no $gguf: slua alone" >&2; }
    name="${dtype^^}"
    for level in ${levels//,/ }; do
      pb="${peer[$level]}"
      slua_env=()
      [ "$level" = avx2 ] && slua_env=(SL_NO_AVX512=1)
      for t in ${threads_list//,/ }; do
        base="shape=$shape dtype=$name level=$level threads=$t"
        if [[ ",$parts," == *,single,* ]]; then
          echo "== $shape $name $level, $t thread(s): prefill $prompt_len, decode $gen" >&2
          for ((r = 1; r <= runs; r++)); do
            timed slua_model "engine=slua $base run=$r" "${slua_env[@]}" -- \
              "$build/bench_model" "$slua_dir" --threads "$t" --prompt-len "$prompt_len" --gen "$gen" \
              --runs 1 --retries 0 --weights "$weights" --compute "$compute"
            [ $have_gguf = 1 ] || continue
            timed peer_bench "engine=llama.cpp $base run=$r" -- \
              "$pb/llama-bench" -m "$gguf" -p "$prompt_len" -n "$gen" -r 1 -t "$t" -o jsonl
          done
        fi
        if [[ ",$parts," == *,batch,* ]]; then
          echo "== $shape $name $level, $t thread(s): sequences $batches, prompt $prompt_len, gen $gen each" >&2
          if [ ! -x "$pb/llama-batched-bench" ]; then
            echo "$me: no $pb/llama-batched-bench: many sequences skipped for $level" >&2
            continue
          fi
          for ((r = 1; r <= runs; r++)); do
            if [ $have_batch = 1 ] && { [ "$weights" = stored ] || [ $batch_q8 = 1 ]; }; then
              wflag=()
              [ $batch_q8 = 1 ] && wflag=(--weights "$weights")
              [ "$compute" = exact ] || wflag+=(--compute "$compute")
              timed slua_batch "engine=slua $base run=$r" "${slua_env[@]}" -- \
                "$build/bench_batch" "$slua_dir" --threads "$t" --prompt-len "$prompt_len" --gen "$gen" \
                --batch "$batches" --runs 1 "${wflag[@]}"
            elif [ $r = 1 ]; then
              echo "  (slua: bench_batch $([ $have_batch = 1 ] && echo "has no --weights" || echo "not built"); llama.cpp alone)" >&2
            fi
            [ $have_gguf = 1 ] || continue
            timed peer_batched "engine=llama.cpp $base run=$r" -- \
              "$pb/llama-batched-bench" -m "$gguf" -c 8192 -b 2048 -ub 512 -npp "$prompt_len" -ntg "$gen" \
              -npl "$batches" -t "$t" -tb "$t" --output-format jsonl
          done
        fi
      done
    done
  done
done

echo "== bandwidth after" >&2
probe_bandwidth after
if [ $dry_run = 0 ]; then
  echo "results: $out (table: build/slua bench/peer_table.lua --input $out)" >&2
fi
if [ $failures -gt 0 ]; then
  echo "$me: $failures command(s) failed or printed no measurement (above)" >&2
  exit 1
fi
