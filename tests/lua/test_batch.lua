-- Batched generation (sl.generate_many, slua.batch): HF's goldens come out of a batch whose
-- rows have different prompt lengths, stop at different points and join as slots free up, and
-- every decoder gives the tokens it gives alone (greedy, DoLa, SkipLayerCD, sampling with the
-- same seed per row, contrastive and stop strings).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local batch = require "slua.batch"

local data = SLUA_ROOT .. "/tests/data/hf-tiny/"
local models = { "tiny-llama", "tiny-llama-tied", "tiny-qwen2" }

local function ids_text(ids) return table.concat(ids, ",") end

-- Each golden result as one run of a batch of 2: the five prompts go through two slots, so
-- prompts join while others decode; row r stops 2(r - 1) tokens early, so rows leave at
-- different steps. Tokens are HF's; top scores within tol.
local function check_golden(model_name, file, recipe, flags, tol)
  T.case(("generate_many %s %s"):format(model_name, file), function()
    local model = sl.check(sl.load(data .. model_name))
    local g = T.json_file(data .. model_name .. "/golden/" .. file)
    local runs = {}
    for r, res in ipairs(g.results) do
      runs[r] = { prompt_ids = ids_text(res.prompt), max_new_tokens = g.generate_kwargs.max_new_tokens - 2 * (r - 1) }
    end
    local finished = {}
    local results = sl.generate_many{ recipe = recipe, runs = runs, options = flags, model = model, batch = 2,
                                      on_result = function(i) finished[#finished + 1] = i end }
    T.eq(#finished, #runs, "every run reported")
    for r, res in ipairs(g.results) do
      local got = results[r]
      T.eq(#got.new_ids, runs[r].max_new_tokens, ("run %d length"):format(r))
      for i = 1, #got.new_ids do
        T.eq(got.new_ids[i], res.new_token_ids[i], ("run %d token %d"):format(r, i))
        for k, pair in ipairs(res.steps[i].top_scores) do
          if type(pair[2]) == "number" and pair[2] > -math.huge then
            T.eq(got.steps[i].top[k][1], pair[1], ("run %d step %d top %d id"):format(r, i, k))
            T.near(got.steps[i].top[k][2], pair[2], tol, ("run %d step %d top %d score"):format(r, i, k))
          end
        end
        if res.steps[i].dola then
          T.eq(got.steps[i].premature_layer, res.steps[i].dola.premature_layer, "premature layer")
        end
      end
    end
  end)
end

for _, m in ipairs(models) do
  check_golden(m, "greedy.json", "greedy", {}, 1e-4)
  check_golden(m, "rep_penalty_1.2.json", "repetition_penalty", { repetition_penalty = 1.2 }, 1e-4)
  check_golden(m, "dola_high_rep_1.2.json", "dola", { dola_layers = "high", repetition_penalty = 1.2 }, 3e-4)
  check_golden(m, "dola_layers_2_4.json", "dola", { dola_layers = "2,4", repetition_penalty = 1.0 }, 3e-4)
end

-- The same runs alone and batched give the same tokens and the same scores, bit for bit.
local function check_alone(name, recipe, model, runs, flags, width)
  T.case(("%s batched = alone (batch %d)"):format(name, width), function()
    local results = sl.generate_many{ recipe = recipe, runs = runs, options = flags, model = model, batch = width }
    for r, one in ipairs(runs) do
      local options = { format = "json" }
      for k, v in pairs(flags) do options[k] = v end
      for k, v in pairs(one) do options[k] = v end
      local alone = sl.invoke(recipe, options, { model = model })[1]
      T.eq(ids_text(results[r].new_ids), ids_text(alone.new_ids), ("run %d tokens"):format(r))
      T.eq(results[r].stop_reason, alone.stop_reason, ("run %d stop reason"):format(r))
      T.eq(results[r].text, alone.text, ("run %d text"):format(r))
      -- every step's scores and choices bit for bit (batch invariance)
      T.eq(sl.json.encode(results[r].steps), sl.json.encode(alone.steps), ("run %d steps"):format(r))
    end
  end)
end

local stories = sl.check(sl.load())
local prompts = { "Once upon a time", "The cat sat", "Lily and Tom went to the park. They", "One day", "Tim had a red ball",
                  "Sue", "The sun was hot and the dog" }
local runs = {}
for i, p in ipairs(prompts) do runs[i] = { prompt = p, max_new_tokens = 6 + 4 * i } end

check_alone("greedy", "greedy", stories, runs, {}, 3)
check_alone("DoLa high", "dola", stories, runs, { dola_layers = "high", repetition_penalty = 1.2 }, 4)
check_alone("SkipLayerCD explicit span", "skiplayer_sld", stories, runs, { skip_layers = "1,3" }, 3)
check_alone("SkipLayerCD SL-H small-model span", "skiplayer_slh", stories, runs, {}, 8)
check_alone("contrastive (SkipLayerCD amateur)", "contrastive", stories, runs, {}, 2)
local seeded = {}
for i, r in ipairs(runs) do seeded[i] = { prompt = r.prompt, max_new_tokens = r.max_new_tokens, seed = 100 + i } end
check_alone("sampling, a seed per row", "sample", stories, seeded, { temperature = 0.9, top_k = 20, top_p = 0.95 }, 4)
local stopping = {}
for i, r in ipairs(runs) do stopping[i] = { prompt = r.prompt, max_new_tokens = 40, stop = i % 2 == 0 and "." or "" } end
check_alone("stop strings end some rows early", "greedy", stories, stopping, {}, 3)

T.case("batch.map runs items in order of slots and reports each", function()
  local seen = {}
  local out = batch.map({ 1, 2, 3, 4, 5 }, function(x) seen[#seen + 1] = batch.slot(); return x * 10 end, { batch = 2 })
  T.eq(table.concat(out, ","), "10,20,30,40,50", "results in item order")
  for _, slot in ipairs(seen) do T.truthy(slot == 1 or slot == 2, "slot within the batch") end
  T.eq(batch.slot(), nil, "no slot outside a job")
end)

T.case("an error in one job stops the batch and surfaces", function()
  T.raises(function()
    sl.generate_many{ recipe = "greedy", model = stories, batch = 3,
                      runs = { { prompt = "One" }, { prompt = "Two", max_new_tokens = -4 }, { prompt = "Three" } } }
  end, "max-new-tokens", "the bad run's message")
  -- the model is still usable afterwards
  local r = sl.generate_many{ recipe = "greedy", model = stories, runs = { { prompt = "One", max_new_tokens = 3 } } }
  T.eq(#r[1].new_ids, 3, "a later batch runs")
end)

T.case("sl.eval_batch checks its entries", function()
  local a, b = stories:session(), stories:session()
  T.raises(function() sl.eval_batch{ { a, { 1 } }, { a, { 2 } } } end, "entry 2 repeats the session of entry 1")
  T.raises(function() sl.eval_batch{ { a, { 1 } }, 7 } end, "entry 2 is not a table")
  T.raises(function() sl.eval_batch{ { a, { 1 } }, { "x", { 2 } } } end, "entry 2: [1] is not an open slua.Session")
  T.raises(function() sl.eval_batch{ { a, { 1 } }, { b, "2" } } end, "entry 2: [2] must be a token id")
  T.raises(function() sl.eval_batch{ { a, { 1 } }, { b, { 1, 99999 } } } end, "entry 2: token id 99999 out of range")
  T.eq(a:pos(), 0, "a failed batch leaves every session as it was")
  local outs = sl.eval_batch{ { a, { 1, 20, 30 } }, { b, 1 } }
  T.eq(outs[1].pos, 3, "first output")
  T.eq(outs[2].pos, 1, "second output")
  local alone = stories:session():prefill{ 1, 20, 30 }
  T.eq(outs[1].logits:argmax(), alone.logits:argmax(), "same argmax as prefill")
end)

T.finish()
