-- `slua eval` end to end: TruthfulQA-MC and FACTOR through the CLI on pre-tokenised items and
-- through the Lua API against the official scripts' outputs (tfqa_mc.json, factor.json);
-- prefix cache on and off; resume after SIGINT and SIGKILL; shards merged; settings guard;
-- the generating tasks on the bundled model with two recipes.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local eval_items = require "eval_items"
local sl = require "slua"
local ev = require "slua.eval"

local slua = arg[1] or "build/slua"
local fixtures = slua:gsub("[^/]+$", "") .. "data/evals/"
local tmp = T.run("mktemp -d"):gsub("%s+$", "")
local models = SLUA_ROOT .. "/tests/data/hf-tiny/"

local function rel(a, b) return math.abs(a - b) / math.max(1, math.abs(b)) end

local write_lines, read_lines = T.write_json_lines, T.json_lines

local function eval_cli(args, env)
  local out, ok = T.run(("%s%s eval %s --threads 1"):format(env and env ~= "" and env .. " " or "", slua, args))
  if not ok then error("slua eval " .. args .. " failed:\n" .. out, 2) end
  return assert(sl.json.decode(out:match("[^\n]*\n?$")), out)
end

local tfqa_items, factor_items = eval_items.tfqa, eval_items.factor

local function layers_arg(list, N)
  local t = {}
  for i, l in ipairs(list) do t[i] = l end
  t[#t + 1] = N
  return table.concat(t, ",")
end

local function check_tfqa(lines, ref, what)
  T.eq(#lines, #ref.per_question, what .. ": one line per question")
  for i, pq in ipairs(ref.per_question) do
    local r = lines[i]
    T.eq(r.index, pq.index, what .. ": order")
    for _, kind in ipairs{ "true", "false" } do
      for j, s in ipairs(pq["scores_" .. kind]) do
        local got = r["scores_" .. kind][j]
        T.truthy(rel(got, s) <= 1e-4, ("%s q%d %s answer %d: %.9g, expected %.9g"):format(what, i, kind, j, got, s))
      end
    end
    T.eq(r.MC1, pq.MC1, what .. " MC1 of q" .. i)
    T.eq(r.MC3, pq.MC3, what .. " MC3 of q" .. i)
    -- MC2 is exp of the summed scores: it moves with them (1e-4 relative on sums of ~100s).
    T.near(r.MC2, pq.MC2, 1e-4, what .. " MC2 of q" .. i)
  end
end

-- Under the sanitizers (10x slower) one model covers the same code paths.
local sanitized = (os.getenv("SL_SANITIZE") or "") ~= ""
for _, name in ipairs(sanitized and { "tiny-llama" } or { "tiny-llama", "tiny-llama-tied" }) do
  local tf = T.json_file(fixtures .. name .. "/tfqa_mc.json")
  local fa = T.json_file(fixtures .. name .. "/factor.json")
  local N = tf.settings.mature_layer
  local tf_path, fa_path = ("%s/%s-tfqa.jsonl"):format(tmp, name), ("%s/%s-factor.jsonl"):format(tmp, name)
  write_lines(tf_path, tfqa_items(tf))
  write_lines(fa_path, factor_items(fa))
  local model_dir = models .. name

  T.case(name .. ": TruthfulQA-MC through the CLI on ids, baseline and DoLa", function()
    for mode, layers in pairs{ baseline = "-1", dola = layers_arg(tf.settings.dola_candidate_premature_layers, N) } do
      local out = ("%s/%s-tfqa-%s.out"):format(tmp, name, mode)
      local s = eval_cli(("truthfulqa_mc --model %s --items %s --early-exit-layers %s --output %s"):format(
        model_dir, tf_path, layers, out))
      local ref = tf.modes[mode]
      check_tfqa(read_lines(out), ref, name .. " " .. mode)
      T.eq(s.metrics.MC1, ref.total_mc1, mode .. " total MC1")
      T.eq(s.metrics.MC3, ref.total_mc3, mode .. " total MC3")
      T.near(s.metrics.MC2, ref.total_mc2, 1e-4, mode .. " total MC2")
      T.eq(s.settings.relative_top, 0, "the script's relative_top")
      T.eq(s.settings.post_softmax, false, "the script's post_softmax")
    end
  end)

  -- A row is correct when no contradiction scores strictly above the true answer. Scores match
  -- the reference to 1e-4 relative (float32 summation order), so where the reference's own
  -- margin (true minus best contradiction) is inside that tolerance, the row is a near-tie:
  -- its correctness may go either way on another kernel level or machine, and the test checks
  -- the margin instead. Every other row must agree with the reference, on every kernel level.
  local TIE_TOL = 1e-4
  local function margin(log_probs)
    local best = -math.huge
    for j = 2, #log_probs do best = math.max(best, log_probs[j]) end
    return log_probs[1] - best, math.max(1, math.abs(log_probs[1]), math.abs(best))
  end

  T.case(name .. ": FACTOR through the CLI on ids, baseline and DoLa, at every kernel level", function()
    for _, level in ipairs{ "", "SL_NO_AVX512=1", "SL_NO_AVX2=1" } do
      for mode, layers in pairs{ baseline = "-1", dola = layers_arg(fa.settings.dola_candidate_premature_layers, N) } do
        local what = ("%s%s"):format(mode, level ~= "" and " (" .. level .. ")" or "")
        local out = ("%s/%s-factor-%s%s.out"):format(tmp, name, mode, level:gsub("=1", ""))
        local s = eval_cli(("factor --model %s --items %s --early-exit-layers %s --output %s --details"):format(
          model_dir, fa_path, layers, out), level)
        local ref = fa.modes[mode]
        local lines = read_lines(out)
        local near_ties = 0
        for i, pr in ipairs(ref.per_row) do
          for j, lp in ipairs(pr.log_probs) do
            T.truthy(rel(lines[i].log_probs[j], lp) <= 1e-4, ("%s row %d answer %d: %.9g vs %.9g"):format(what, i, j,
              lines[i].log_probs[j], lp))
            for k, t in ipairs(pr.answer_details[j].per_token) do
              T.truthy(rel(lines[i].answer_details[j].per_token[k], t) <= 1e-4, "per-token term")
            end
          end
          local ref_margin, scale = margin(pr.log_probs)
          if math.abs(ref_margin) <= TIE_TOL * scale then
            -- a near-tie in the reference itself: the margins agree, the verdict may not
            near_ties = near_ties + 1
            local got = margin(lines[i].log_probs)
            T.truthy(math.abs(got - ref_margin) <= 2 * TIE_TOL * scale, ("%s row %d: a near-tie in the reference "
              .. "(margin %.3g); ours %.3g"):format(what, i, ref_margin, got))
          else
            T.eq(lines[i].is_correct, pr.is_correct, ("%s row %d correctness (reference margin %.3g)"):format(what, i,
              ref_margin))
          end
        end
        T.truthy(math.abs(s.metrics.accuracy - ref.accuracy) <= near_ties / #ref.per_row + 1e-12,
          ("%s accuracy %.4f vs %.4f (%d near-ties)"):format(what, s.metrics.accuracy, ref.accuracy, near_ties))
        if near_ties == 0 then T.eq(s.metrics.accuracy, ref.accuracy, what .. " accuracy") end
      end
    end
  end)

  T.case(name .. ": the same through the Lua API", function()
    local model = sl.check(sl.load(model_dir))
    local t = ev.tasks.truthfulqa_mc
    local setting = { mode = "dola", candidate_layers = tf.settings.dola_candidate_premature_layers,
                      relative_top = 0.0, post_softmax = false }
    local recs = {}
    for i, obj in ipairs(tfqa_items(tf)) do recs[i] = t.evaluate(model, t.from_ids(obj, "fixture"), setting) end
    check_tfqa(recs, tf.modes.dola, name .. " api")
    T.eq(t.summarize(recs).MC1, tf.modes.dola.total_mc1, "api total MC1")
    local f = ev.tasks.factor
    local frecs = {}
    for i, obj in ipairs(factor_items(fa)) do frecs[i] = f.evaluate(model, f.from_ids(obj, "fixture"), { mode = "baseline" }) end
    T.eq(f.summarize(frecs).accuracy, fa.modes.baseline.accuracy, "api FACTOR accuracy")
  end)
end

local tf = T.json_file(fixtures .. "tiny-llama/tfqa_mc.json")
local items = tmp .. "/tfqa.jsonl"
write_lines(items, tfqa_items(tf))
local base = ("truthfulqa_mc --model %s --items %s --early-exit-layers 4,6,8"):format(models .. "tiny-llama", items)

T.case("prefix cache on and off give the same scores; the cache saves forwards", function()
  local a, b = tmp .. "/cache-on.out", tmp .. "/cache-off.out"
  local sa = eval_cli(base .. " --output " .. a)
  local sb = eval_cli(base .. " --no-prefix-cache --output " .. b)
  local la, lb = read_lines(a), read_lines(b)
  T.eq(#la, #lb, "as many items")
  for i = 1, #la do   -- bit for bit: a cached prefix is the same numbers as a recomputed one
    T.eq(sl.json.encode(la[i].scores_true), sl.json.encode(lb[i].scores_true), "true scores of item " .. i)
    T.eq(sl.json.encode(la[i].scores_false), sl.json.encode(lb[i].scores_false), "false scores of item " .. i)
  end
  T.truthy(sa.token_forwards * 5 < sb.token_forwards,
    ("forwards with the cache %d, without %d"):format(sa.token_forwards, sb.token_forwards))
end)

local function ids_of(path)
  local seen, n = {}, 0
  for _, r in ipairs(read_lines(path)) do
    if seen[r.id] then error("item " .. r.id .. " written twice") end
    seen[r.id], n = true, n + 1
  end
  return n
end

-- Start a run with a pause after each item, kill it once `after` lines are on disk, rerun.
local function kill_and_resume(signal)
  local out = ("%s/killed-%s.out"):format(tmp, signal)
  local script = ([[
%s eval %s --threads 1 --pause 0.3 --output %s >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 200); do
  n=$(cat %s 2>/dev/null | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.05
done
kill -%s $pid
wait $pid
echo "lines $(cat %s | wc -l)"
]]):format(slua, base, out, out, signal, out)
  local text = T.run("sh -c '" .. script:gsub("'", "'\\''") .. "'")
  local before = tonumber(text:match("lines (%d+)"))
  T.truthy(before and before >= 3 and before < 12, ("killed mid-run (%s lines): %s"):format(tostring(before), text))
  local s = eval_cli(base .. " --output " .. out)
  T.eq(s.n_resumed, before, "finished items are kept")
  T.eq(s.n_run, 12 - before, "only the rest runs")
  T.eq(ids_of(out), 12, "every item exactly once")
  T.eq(s.metrics.MC1, tf.modes.dola.total_mc1, "metrics of the whole set")
end

T.case("SIGINT mid-run, rerun: nothing lost, nothing duplicated", function() kill_and_resume("INT") end)
T.case("SIGKILL mid-run, rerun: nothing lost, nothing duplicated", function() kill_and_resume("KILL") end)

T.case("a line cut short by a kill is dropped and recomputed", function()
  local out = tmp .. "/cut.out"
  eval_cli(base .. " --limit 4 --output " .. out)
  local f = assert(io.open(out, "rb"))
  local text = f:read("a")
  f:close()
  local cut = text:sub(1, #text - 40)
  f = assert(io.open(out, "wb"))
  f:write(cut)
  f:close()
  local s = eval_cli(base .. " --limit 4 --output " .. out)
  T.eq(s.n_run, 1, "the cut item runs again")
  T.eq(ids_of(out), 4, "four complete lines")
end)

T.case("a rerun with other settings is refused", function()
  local out = tmp .. "/guard.out"
  eval_cli(base .. " --limit 2 --output " .. out)
  local text, ok = T.run(("%s eval %s --relative-top 0.1 --output %s"):format(slua, base, out))
  T.truthy(not ok, "refused")
  T.truthy(text:find("holds results of other settings", 1, true), text)
  T.truthy(not text:find("traceback", 1, true), "no traceback")
end)

T.case("--batch 3 generates the items together: the same answers as one at a time", function()
  local one, three = tmp .. "/gsm-b1.jsonl", tmp .. "/gsm-b3.jsonl"
  local common = "gsm8k --limit 5 --max-new-tokens 12 --progress never --output "
  local s1, s3 = eval_cli(common .. one), eval_cli(common .. three .. " --batch 3")
  T.eq(s3.batch, 3, "summary records the batch")
  T.eq(s1.settings_hash, s3.settings_hash, "the batch is not a setting")
  local by_id = {}
  for _, r in ipairs(read_lines(one)) do by_id[r.id] = r end
  local lines = read_lines(three)
  T.eq(#lines, 5, "every item once")
  for _, r in ipairs(lines) do
    T.eq(r.completion, by_id[r.id].completion, "completion of " .. tostring(r.id))
    T.eq(r.model_answer, by_id[r.id].model_answer, "answer of " .. tostring(r.id))
  end
  local q8 = eval_cli("gsm8k --limit 1 --max-new-tokens 4 --progress never --weights q8_0")
  T.eq(q8.settings.weights, "q8_0", "8-bit weights are a setting")
  T.truthy(q8.settings_hash ~= s1.settings_hash, "and change the hash")
end)

T.case("shards 0/3, 1/3, 2/3 merged equal one run", function()
  local whole = eval_cli(base .. " --output " .. tmp .. "/whole.out")
  local paths = {}
  for i = 0, 2 do
    paths[#paths + 1] = ("%s/shard%d.out"):format(tmp, i)
    local s = eval_cli(("%s --shard %d/3 --output %s"):format(base, i, paths[#paths]))
    T.eq(s.n, 4, "12 items in 3 shards")
  end
  local out, ok = T.run(("%s eval --merge %s --output %s/merged.out"):format(slua, table.concat(paths, " "), tmp))
  T.truthy(ok, out)
  local merged = assert(sl.json.decode(out))
  T.eq(merged.n, 12, "all items")
  for _, k in ipairs{ "MC1", "MC2", "MC3" } do T.eq(merged.metrics[k], whole.metrics[k], "merged " .. k) end
  T.eq(ids_of(tmp .. "/merged.out"), 12, "merged file")
  eval_cli(("truthfulqa_mc --model %s --items %s --limit 1 --output %s/other.out"):format(models .. "tiny-llama", items, tmp))
  local bad, refused = T.run(("%s eval --merge %s %s/other.out"):format(slua, paths[1], tmp))
  T.truthy(not refused and bad:find("only runs of one setting merge", 1, true), bad)
end)

T.case("progress goes to stderr only on a terminal (or when asked); the summary to stdout", function()
  local function stderr_of(args)
    local p = assert(io.popen(("%s eval %s --limit 2 --threads 1 %s 2>&1 >/dev/null"):format(slua, base, args)))
    local text = p:read("a")
    p:close()
    return text
  end
  T.eq(stderr_of(""), "", "nothing on stderr when it is not a terminal")
  local shown = stderr_of("--progress always")
  T.truthy(shown:find("2/2", 1, true) and shown:find("it/s", 1, true) and shown:find("MC2", 1, true), shown)
  local s = eval_cli(base .. " --limit 2")
  T.eq(s.n, 2, "summary")
  T.truthy(s.wall_s >= 0 and s.settings_hash and s.settings.mode == "dola", "summary fields")
end)

T.case("generating tasks run any recipe with the official stop words", function()
  local jsonl = tmp .. "/gsm.jsonl"
  write_lines(jsonl, {
    { question = "Tom has 3 apples and buys 2 more. How many apples does he have?", answer = "3 + 2 = 5\n#### 5" },
    { question = "A box holds 1,000 pens. How many pens are in 2 boxes?", answer = "#### 2,000" },
  })
  for _, extra in ipairs{ "", "--recipe dola --recipe-options '{\"dola_layers\":\"2,4\"}'" } do
    local out = tmp .. "/gsm" .. #extra .. ".out"
    local s = eval_cli(("gsm8k --data %s --max-new-tokens 6 --n-ctx 2048 --output %s %s"):format(jsonl, out, extra))
    T.eq(s.n, 2, "two items")
    local lines = read_lines(out)
    T.eq(lines[2].gt_answer, "2000", "reference without commas")
    T.truthy(type(lines[1].completion) == "string" and lines[1].n_new_tokens > 0, "a completion")
    T.eq(lines[1].model_answer, ev.tasks.gsm8k.extract(lines[1].completion), "extracted from the completion")
    -- the second question continues the first one's session from the shared 8-shot demo
    local plain = tmp .. "/gsm-plain" .. #extra .. ".out"
    eval_cli(("gsm8k --data %s --max-new-tokens 6 --n-ctx 2048 --no-prefix-cache --output %s %s"):format(jsonl, plain, extra))
    for i, r in ipairs(read_lines(plain)) do T.eq(lines[i].completion, r.completion, "same completion with the cache") end
  end
  local p = assert(io.popen(("%s eval strategyqa --limit 1 --max-new-tokens 2 --n-ctx 2048 --early-exit-layers 0,2,5 "
    .. "--threads 1 2>&1 >/dev/null"):format(slua)))
  T.eq(p:read("a"), "", "recipes print nothing to stderr inside an eval")
  p:close()
  local s = eval_cli("strategyqa --limit 2 --max-new-tokens 4 --n-ctx 2048 --early-exit-layers 0,2,5")
  T.eq(s.n, 2, "bundled StrategyQA")
  T.eq(s.settings.recipe, "dola", "DoLa layers pick the dola recipe")
  T.eq(s.settings.recipe_options.repetition_penalty, 1.2, "with the official penalty")
  s = eval_cli("mgsm --lang en --limit 1 --max-new-tokens 4")
  T.eq(s.n, 1, "bundled MGSM")
end)

T.case("bad invocations fail with one clean line", function()
  for args, needle in pairs{
    ["nosuch"] = "unknown task",
    ["factor --shard 3/3"] = "--shard",
    ["factor --early-exit-layers 0,99"] = "out of range",
    ["factor --items /nonexistent.jsonl"] = "cannot open",
  } do
    local out, ok = T.run(("%s eval %s"):format(slua, args))
    T.truthy(not ok, args .. " must fail")
    T.truthy(out:find(needle, 1, true), args .. ": " .. out)
    T.truthy(not out:find("traceback", 1, true), args .. ": no traceback")
  end
end)

os.execute("rm -rf '" .. tmp .. "'")
T.finish()
