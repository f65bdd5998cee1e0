-- Batch invariance through what a researcher runs: a result never depends on what ran beside
-- it. Generation (greedy, DoLa, SkipLayerCD, beam search) batched 1, 3 and 8 wide and with 1 or
-- 2 threads; lm_score (TruthfulQA-MC in baseline, static and dynamic DoLa modes) with --batch 1,
-- 3 and 8, --threads 2, a cold prefix cache, three shards merged and a resume after SIGKILL. Every
-- comparison is bit for bit: tokens, every step's scores, and every answer's score. CTest runs
-- this file at the native kernel level and again with SL_NO_AVX512=1.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local level = os.getenv("SL_NO_AVX2") and "generic" or os.getenv("SL_NO_AVX512") and "avx2" or "native"
local sanitized = (os.getenv("SL_SANITIZE") or "") ~= ""

-- The parts of a result that decoding decides (not the options it records, such as threads).
local function decided(r)
  return sl.json.encode{ r.new_ids or false, r.text or false, r.stop_reason or false, r.steps or false,
                         r.sequences or false }
end

---------------------------------------------------------------------------- generation

local stories = sl.check(sl.load())
local prompts = { "Once upon a time", "The cat sat", "Lily and Tom went to the park. They", "One day",
                  "Tim had a red ball", "Sue", "The sun was hot and the dog", "A little bird" }
local runs = {}
for i, p in ipairs(prompts) do runs[i] = { prompt = p, max_new_tokens = 4 + 3 * i } end

local decoders = {
  { "greedy", "greedy", {} },
  { "DoLa (dynamic, high)", "dola", { dola_layers = "high", repetition_penalty = 1.2 } },
  { "DoLa (static layer 2)", "dola", { dola_layers = "2" } },
  { "SkipLayerCD", "skiplayer_sld", { skip_blocks = "1:3" } },
  { "beam search", "beam_search", { num_beams = 3, num_return_sequences = 2 } },
}

for _, d in ipairs(decoders) do
  local name, recipe, flags = d[1], d[2], d[3]
  T.case(("%s (%s): batches of 1, 3 and 8 equal each run alone"):format(name, level), function()
    local value = sl.recipe.load(recipe)
    local alone = {}
    for r, one in ipairs(runs) do
      local opts = { threads = 1 }
      for k, v in pairs(flags) do opts[k] = v end
      for k, v in pairs(one) do opts[k] = v end
      alone[r] = decided(value:run(opts, { model = stories }))
    end
    for _, width in ipairs(sanitized and { 3 } or { 1, 3, 8 }) do
      local results = sl.generate_many{ recipe = recipe, runs = runs, options = flags, model = stories, batch = width }
      for r = 1, #runs do T.eq(decided(results[r]), alone[r], ("batch %d, run %d"):format(width, r)) end
    end
  end)
end

T.case(("DoLa and SkipLayerCD from the command line: 1 and 2 threads give the same JSON (%s)"):format(level), function()
  for _, args in ipairs{ "dola --dola-layers high --repetition-penalty 1.2", "skiplayer_sld --skip-blocks 1:3" } do
    local out = {}
    for _, threads in ipairs{ 1, 2 } do
      local text, ok = T.run(("%s %s --prompt %s --max-new-tokens 16 --format json --threads %d"):format(
        slua, args, T.q("Once upon a time, there was a little girl"), threads))
      T.truthy(ok, text)
      out[threads] = decided(assert(sl.json.decode(text)))
    end
    T.eq(out[2], out[1], args)
  end
end)

---------------------------------------------------------------------------- lm_score

local fixtures = slua:gsub("[^/]+$", "") .. "data/evals/"
local tf = T.json_file(fixtures .. "tiny-llama/tfqa_mc.json")
local items = tmp .. "/tfqa.jsonl"
T.write_json_lines(items, require("eval_items").tfqa(tf))
local n_items = #tf.questions
local model_dir = SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama"

local function eval(args)
  local out, ok = T.run(("%s eval truthfulqa_mc --model %s --items %s --progress never %s"):format(
    slua, model_dir, items, args))
  if not ok then error("slua eval " .. args .. " failed:\n" .. out, 2) end
  return assert(sl.json.decode(out:match("[^\n]*\n?$")), out)
end

-- Each item's scores and metrics, by id, as text compared bit for bit.
local function by_id(path)
  local t = {}
  for _, r in ipairs(T.json_lines(path)) do
    T.truthy(t[r.id] == nil, "item " .. tostring(r.id) .. " written once")
    t[r.id] = sl.json.encode{ r.scores_true, r.scores_false, r.MC1, r.MC2, r.MC3 }
  end
  return t
end

local function same_items(got, want, what)
  local n = 0
  for id, w in pairs(want) do
    T.eq(got[id], w, ("%s: item %s"):format(what, tostring(id)))
    n = n + 1
  end
  T.eq(n, n_items, what .. ": every item")
end

for _, mode in ipairs{ { "baseline", "-1" }, { "static DoLa", "4,8" }, { "dynamic DoLa", "4,6,8" } } do
  T.case(("lm_score, %s (%s): --batch, --threads, a cold prefix cache and shards change no bit"):format(
    mode[1], level), function()
    local common = "--early-exit-layers " .. mode[2]
    local ref_path = ("%s/ref-%s.out"):format(tmp, mode[2])
    eval(common .. " --threads 1 --output " .. ref_path)
    local ref = by_id(ref_path)
    local variants = { "--batch 3", "--batch 8", "--threads 2", "--no-prefix-cache", "--batch 8 --threads 2" }
    if sanitized then variants = { "--batch 3 --threads 2" } end
    for k, v in ipairs(variants) do
      local path = ("%s/v%d-%s.out"):format(tmp, k, mode[2])
      eval(common .. " " .. v .. " --output " .. path)
      same_items(by_id(path), ref, v)
    end
    local shards = {}
    for i = 0, 2 do
      shards[#shards + 1] = ("%s/shard%d-%s.out"):format(tmp, i, mode[2])
      eval(("%s --shard %d/3 --output %s"):format(common, i, shards[#shards]))
    end
    local merged = ("%s/merged-%s.out"):format(tmp, mode[2])
    local out, ok = T.run(("%s eval --merge %s --output %s"):format(slua, table.concat(shards, " "), merged))
    T.truthy(ok, out)
    same_items(by_id(merged), ref, "shards 0/3, 1/3, 2/3 merged")
  end)
end

T.case(("lm_score resumed after SIGKILL equals an uninterrupted run (%s)"):format(level), function()
  local common = "--early-exit-layers 4,6,8"
  local ref_path = tmp .. "/ref-kill.out"
  eval(common .. " --threads 1 --output " .. ref_path)
  local out = tmp .. "/killed.out"
  -- wait for a count of finished items on disk, then kill
  local script = ([[
%s eval truthfulqa_mc --model %s --items %s --progress never %s --threads 1 --pause 0.2 --output %s >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 600); do
  n=$(cat %s 2>/dev/null | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.05
done
kill -9 $pid
wait $pid
echo "lines $(cat %s | wc -l)"
]]):format(slua, model_dir, items, common, out, out, out)
  local text = T.run("sh -c " .. T.q(script))
  local before = tonumber(text:match("lines (%d+)"))
  T.truthy(before and before >= 3 and before < n_items, "killed mid-run: " .. text)
  local s = eval(common .. " --batch 3 --output " .. out)
  T.eq(s.n_resumed, before, "finished items kept")
  same_items(by_id(out), by_id(ref_path), "resumed after SIGKILL")
end)

T.remove_tmpdirs()
T.finish()
