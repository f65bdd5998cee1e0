-- The activation-intervention recipes through the command line: SLED against the official
-- sled_greedy_decode and DeCoRe-entropy against the official generate_self_contrast
-- (tests/data/interventions.tar.xz, from the shared fixtures), then steer, iti, pasta and
-- patching on the bundled tiny models with properties that pin what each one does.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local fixtures = slua:gsub("[^/]+$", "") .. "data/interventions/"
local models = SLUA_ROOT .. "/tests/data/hf-tiny/"
local tmp = T.tmpdir()

local function run_json(recipe, args)
  local out, ok = T.run(("%s %s/recipes/%s --format json %s"):format(slua, SLUA_ROOT, recipe, args))
  if not ok then error(recipe .. " failed:\n" .. out) end
  return assert(sl.json.decode(out))
end

local seen = { sled = 0, decore = 0, alpha = 0 }

-- SLED: tokens exactly; the scores loosely (the fixture's README: on these random tiny models
-- the official float32 and float64 runs differ by up to ~0.2 in score, never in tokens).
for _, name in ipairs{ "tiny-llama", "tiny-llama-tied" } do
  local g = T.json_file(fixtures .. name .. "/sled_default.json")
  for r, res in ipairs(g.results) do
    T.case(("%s sled_default prompt %d"):format(name, r), function()
      local got = run_json("sled.lua", ("--model %s --prompt-ids %s --max-new-tokens %d"):format(models .. name,
        table.concat(res.prompt, ","), g.sled_call.max_new_tokens))
      T.eq(table.concat(got.new_ids, ","), table.concat(res.new_token_ids, ","), "tokens")
      for i, step in ipairs(res.steps) do
        -- near ties below the first place may swap: each golden entry's score, by id
        local mine = {}
        for _, pair in ipairs(got.steps[i].top) do mine[pair[1]] = pair[2] end
        T.eq(got.steps[i].top[1][1], step.top_scores[1][1], ("step %d top id"):format(i))
        for k, pair in ipairs(step.top_scores) do
          if k <= 6 then   -- the 7th and 8th may be pushed out by a near tie
            T.truthy(mine[pair[1]], ("step %d: id %d among the top 8"):format(i, pair[1]))
            T.near(mine[pair[1]], pair[2], 0.25, ("step %d id %d score"):format(i, pair[1]))
            seen.sled = math.max(seen.sled, math.abs(mine[pair[1]] - pair[2]))
          end
        end
      end
    end)
  end
end

do
  local g = T.json_file(fixtures .. "tiny-qwen2/decore_entropy.json")
  local heads = {}
  for i, pair in ipairs(g.retrieval_heads) do heads[i] = pair[1] .. ":" .. pair[2] end
  for r, res in ipairs(g.results) do
    T.case(("tiny-qwen2 decore_entropy prompt %d"):format(r), function()
      local got = run_json("decore.lua", ("--model %s --prompt-ids %s --max-new-tokens %d --retrieval-heads %s")
        :format(models .. "tiny-qwen2", table.concat(res.prompt, ","), g.max_new_tokens, table.concat(heads, ",")))
      T.eq(table.concat(got.new_ids, ","), table.concat(res.new_token_ids, ","), "tokens")
      for i, step in ipairs(res.steps) do
        T.near(got.steps[i].alpha, step.alpha_entropy, 1e-4, ("step %d alpha"):format(i))
        seen.alpha = math.max(seen.alpha, math.abs(got.steps[i].alpha - step.alpha_entropy))
        for k, pair in ipairs(step.top_scores) do
          T.eq(got.steps[i].top[k][1], pair[1], ("step %d top %d id"):format(i, k))
          T.near(got.steps[i].top[k][2], pair[2], 1e-4, ("step %d top %d score"):format(i, k))
          seen.decore = math.max(seen.decore, math.abs(got.steps[i].top[k][2] - pair[2]))
        end
      end
    end)
  end
end

---------------------------------------------------------------------------- properties

local function json_of(recipe, args) return sl.json.encode(run_json(recipe, args).steps) end
local function failure(recipe, args)
  local p = assert(io.popen(("%s %s/recipes/%s %s 2>&1"):format(slua, SLUA_ROOT, recipe, args)))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok, code
end

-- A vector file of zeros (d_model of the model) and one of a fixed pattern.
local function vectors(name, d)
  local zero, pattern = {}, {}
  for i = 1, d do zero[i], pattern[i] = 0.0, ((i * 37) % 17 - 8) / 8 end
  local path = ("%s/%s_vectors.safetensors"):format(tmp, name)
  assert(sl.core.save_tensors(path, { zero = sl.core.tensor(zero), pattern = sl.core.tensor(pattern) }))
  return path
end

for _, name in ipairs{ "stories260K", "tiny-llama", "tiny-qwen2" } do
  local bundled = name == "stories260K"
  local model = bundled and "" or ("--model %s"):format(models .. name)
  local ids = "1,17,99,300,42,7,211,88"
  local prompt = bundled and "" or "--prompt-ids " .. ids
  local d = bundled and 64 or 64
  local vec = vectors(name, d)

  T.case(name .. ": steer with a zero vector is plain greedy, bit for bit; a vector changes the scores", function()
    local plain = json_of("greedy.lua", ("%s %s --max-new-tokens 10"):format(model, prompt))
    for _, positions in ipairs{ "generated", "all" } do
      T.eq(json_of("steer.lua", ("%s %s --max-new-tokens 10 --vector %s:zero --multiplier 8 --positions %s")
        :format(model, prompt, vec, positions)), plain, "zero vector at " .. positions)
    end
    if bundled then   -- ActAdd with the same prompt on both sides: a zero difference
      T.eq(json_of("steer.lua", "--max-new-tokens 10 --prompt-add Hate --prompt-sub Hate --multiplier 8"), plain, "h(x) - h(x)")
    end
    local spec = ("%s/%s_steer.json"):format(tmp, name)
    local steered = json_of("steer.lua", ("%s %s --max-new-tokens 10 --vector %s:pattern --multiplier 2 --positions all --layer 1 --spec-out %s")
      :format(model, prompt, vec, spec))
    T.truthy(steered ~= plain, "a steering vector changes the scores")
    T.eq(json_of("greedy.lua", ("%s %s --max-new-tokens 10 --intervene %s"):format(model, prompt, spec)), steered,
      "--spec-out's file through --intervene gives the same run")
  end)

  T.case(name .. ": PASTA with the span covering every key is plain greedy; a span changes the scores", function()
    local args = bundled and '--prompt "Once upon a time, Tom had a red ball. Lily"' or "--prompt-ids " .. ids
    local plain = json_of("greedy.lua", ("%s %s --max-new-tokens 10"):format(model, args))
    local all = bundled and '--prompt "**Once upon a time, Tom had a red ball. Lily**"' or "--prompt-ids " .. ids .. " --span 0:8"
    T.eq(json_of("pasta.lua", ("%s %s --max-new-tokens 10 --head-config 1:*,2:*"):format(model, all)), plain, "every key emphasised")
    local some = bundled and "" or "--prompt-ids " .. ids .. " --span 2:5"
    local got = run_json("pasta.lua", ("%s %s --max-new-tokens 10 --head-config 1:*,2:0"):format(model, some))
    T.truthy(sl.json.encode(got.steps) ~= plain, "an emphasised span changes the scores")
    if not bundled then T.eq(sl.json.encode(got.emphasised_span), "[2,5]", "the span as given") end
  end)

  T.case(name .. ": patching every position with the clean run recovers the clean logit difference exactly", function()
    local args = bundled and "" or ("--prompt-ids %s --corrupted-ids %s"):format(ids, "1,17,99,301,42,7,211,88")
    local svg = ("%s/%s_patching.svg"):format(tmp, name)
    local r = run_json("patching.lua", ("%s %s --svg %s"):format(model, args, svg))
    local picture = T.read(svg)
    T.truthy(picture:find("<svg", 1, true) and select(2, picture:gsub("<rect ", "")) == 1 + #r.layers * (#r.prompt_ids + 1),
      "the heatmap: a cell per block and position, and the [all] column")
    local _, _, rendered = os.execute(("rsvg-convert %s -o %s.png 2>/dev/null"):format(svg, svg))
    T.eq(rendered, 0, "the heatmap renders (rsvg-convert)")
    for l, v in ipairs(r.recovered_all) do T.eq(v, 1, ("block %d: every position patched"):format(l - 1)) end
    -- positions before the first differing token hold the same activations in both runs
    local clean, corrupted = r.prompt_ids, r.corrupted_ids
    local first = 1
    while clean[first] == corrupted[first] do first = first + 1 end
    for l = 1, #r.layers do
      for p = 1, first - 1 do T.eq(r.recovered[l][p], 0, ("block %d position %d: nothing differs there"):format(l - 1, p - 1)) end
    end
    -- one token differs: at block 0 (the embeddings) patching it alone restores everything
    local differing = 0
    for p = 1, #clean do if clean[p] ~= corrupted[p] then differing = differing + 1 end end
    if differing == 1 then T.eq(r.recovered[1][first], 1, "block 0, the differing position") end
    T.truthy(bundled or differing == 1, "the tiny models' prompts differ in one token")
  end)
end

T.case("ITI: directions from TruthfulQA, the best heads shifted by alpha * std, alpha 0 is plain greedy", function()
  local file = tmp .. "/iti.safetensors"
  local out, ok = T.run(("%s %s/examples/interventions/iti_directions.lua --limit 12 --out %s"):format(slua, SLUA_ROOT, file))
  T.truthy(ok, out)
  local t = assert(sl.core.load_tensors(file))
  T.eq(sl.json.encode(t.accuracy:shape()), "[5,8]", "accuracy [blocks, heads]")
  T.eq(sl.json.encode(t.std:shape()), "[5,8]", "std [blocks, heads]")
  T.near(t["blocks.3.head.5"]:norm(), 1, 1e-5, "a unit direction")
  local plain = json_of("greedy.lua", "--max-new-tokens 10")
  T.eq(json_of("iti.lua", ("--max-new-tokens 10 --directions %s --alpha 0"):format(file)), plain, "alpha 0")
  local spec = tmp .. "/iti.json"
  local shifted = json_of("iti.lua", ("--max-new-tokens 10 --directions %s --num-heads 3 --alpha 5 --spec-out %s"):format(file, spec))
  local ops = T.json_file(spec)
  T.eq(#ops, 3, "three heads")
  local best = t.accuracy:top(3)
  for k, op in ipairs(ops) do
    local l, h = (best[k][1] - 1) // 8, (best[k][1] - 1) % 8
    T.eq(op.hook, ("blocks.%d.attn.hook_z"):format(l), "op " .. k .. " block")
    T.eq(op.head, h, "op " .. k .. " head")
    T.near(op.scale, 5 * t.std:get(l + 1, h + 1), 1e-6, "op " .. k .. " scale = alpha * std")
  end
  T.eq(json_of("greedy.lua", "--max-new-tokens 10 --intervene " .. spec), shifted, "the spec file gives the same run")
  local msg, ok2 = failure("iti.lua", "--max-new-tokens 2")
  T.truthy(not ok2 and msg:find("option --directions", 1, true), "no directions: " .. msg)
end)

T.case("CAA: a vector built from TruthfulQA A/B pairs steers through steer.lua", function()
  local file = tmp .. "/caa.safetensors"
  local out, ok = T.run(("%s %s/examples/interventions/caa_vector.lua --limit 12 --out %s"):format(slua, SLUA_ROOT, file))
  T.truthy(ok, out)
  local t = assert(sl.core.load_tensors(file))
  for l = 0, 4 do T.eq(sl.json.encode(t["layer" .. l]:shape()), "[64]", "layer " .. l .. " vector") end
  local plain = json_of("greedy.lua", "--max-new-tokens 10")
  T.eq(json_of("steer.lua", ("--max-new-tokens 10 --vector %s:layer2 --layer 2 --hook resid_post --multiplier 0"):format(file)), plain,
    "multiplier 0")
  T.truthy(json_of("steer.lua", ("--max-new-tokens 10 --vector %s:layer2 --layer 2 --hook resid_post --multiplier 4 --positions all")
    :format(file)) ~= plain, "multiplier 4 changes the scores")
end)

T.case("scale on hook_attn_scores: factor 1 changes no bit, factor 0 is uniform attention over the visible keys", function()
  local dir = models .. "tiny-qwen2"
  local function spec(name, ops)
    local path = ("%s/%s.json"):format(tmp, name)
    T.write(path, sl.json.encode(ops))
    return path
  end
  local args = ("--model %s --prompt-ids 1,17,99,300,42,7 --max-new-tokens 8"):format(dir)
  local plain = json_of("greedy.lua", args)
  local one = spec("scores_one", { { hook = "blocks.4.attn.hook_attn_scores", op = "scale", heads = "all", factor = 1 } })
  T.eq(json_of("greedy.lua", args .. " --intervene " .. one), plain, "factor 1")
  local zero = spec("scores_zero", { { hook = "blocks.4.attn.hook_attn_scores", op = "scale", heads = { 0, 2 }, factor = 0 } })
  T.truthy(json_of("greedy.lua", args .. " --intervene " .. zero) ~= plain, "factor 0 changes the scores")
  local out = run_json("logits.lua", ("--model %s --prompt-ids 1,17,99,300 --intervene %s --capture blocks.4.attn.hook_pattern")
    :format(dir, zero))
  local pattern = out.captures["blocks.4.attn.hook_pattern"]
  for q = 1, 4 do
    for k = 1, q do
      T.near(pattern[1][q][k], 1 / q, 1e-6, ("head 0 query %d key %d: uniform"):format(q, k))
      T.near(pattern[3][q][k], 1 / q, 1e-6, ("head 2 query %d key %d: uniform"):format(q, k))
    end
    if q < 4 then T.eq(pattern[1][q][q + 1], 0, ("query %d: a future key stays masked"):format(q)) end
  end
  T.truthy(math.abs(pattern[2][4][1] - 0.25) > 1e-3, "head 1 is left alone")
  local bad = spec("scores_bad", { { hook = "blocks.4.hook_resid_post", op = "scale", factor = 0 } })
  local msg, ok, code = failure("greedy.lua", ("--model %s --prompt-ids 1,2 --intervene %s"):format(dir, bad))
  T.truthy(not ok and code == 2 and msg:find("'scale' applies to blocks.L.attn.hook_z and blocks.L.attn.hook_attn_scores", 1, true), msg)
end)

T.case("DeCoRe under the run's --intervene: its fork takes those ops too (a zero-vector op changes no bit)", function()
  local vec = vectors("decore", 64)
  local spec = tmp .. "/decore_zero.json"
  T.write(spec, sl.json.encode{ { hook = "blocks.1.hook_resid_post", op = "add", vector = vec .. ":zero", scale = 3 } })
  local args = ("--model %s --prompt-ids 1,17,99,300,42,7 --max-new-tokens 8 --retrieval-heads 4:0,4:2"):format(models .. "tiny-qwen2")
  T.eq(json_of("decore.lua", args .. " --intervene " .. spec), json_of("decore.lua", args), "zero vector under DeCoRe")
  T.write(spec, sl.json.encode{ { hook = "blocks.1.hook_resid_post", op = "add", vector = vec .. ":pattern", scale = 1 } })
  T.truthy(json_of("decore.lua", args .. " --intervene " .. spec) ~= json_of("decore.lua", args), "a vector changes both rows")
end)

T.case("bad options are one line and exit status 2", function()
  for _, case in ipairs{
    { "decore.lua", "--max-new-tokens 2", "option --retrieval-heads" },
    { "decore.lua", "--max-new-tokens 2 --retrieval-heads 2:9", "head 9 out of range" },
    { "patching.lua", '--corrupted "Once"', "patching needs equal lengths" },
    { "pasta.lua", '--prompt "no markers here"', "option --prompt" },
    { "steer.lua", "--vector nothing.safetensors:v --max-new-tokens 2", "nothing.safetensors" },
    { "sled.lua", "--early-exit-layers 9 --max-new-tokens 2", "option --early-exit-layers" },
  } do
    local out, ok, code = failure(case[1], case[2])
    T.truthy(not ok, case[1] .. " fails")
    T.truthy(out:find(case[3], 1, true), case[1] .. ": " .. out)
    T.truthy(not out:find("traceback", 1, true), case[1] .. ": no traceback")
    T.eq(code, 2, case[1] .. " exit status")
  end
end)

io.write(("max |d|: SLED scores %.3g, DeCoRe scores %.3g, DeCoRe alpha %.3g\n"):format(seen.sled, seen.decore, seen.alpha))
T.finish()
