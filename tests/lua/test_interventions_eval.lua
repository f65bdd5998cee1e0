-- --intervene wherever a setting goes: `slua eval` (the spec is in the settings by its content,
-- a no-op spec scores exactly as none, a results file refuses another spec), inline JSON on a
-- recipe, and sweeps whose axis is a field of the spec.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local cli = T.cli(slua, tmp)

local D = 64 -- the bundled stories260K's hidden size
local function spec(value, scale, extra)
  local v = {}
  for i = 1, D do v[i] = value end
  local ops = { { hook = "blocks.2.hook_resid_post", op = "add", vector = v, scale = scale } }
  for _, op in ipairs(extra or {}) do ops[#ops + 1] = op end
  return sl.json.encode(ops)
end
T.write(tmp .. "/noop.json", spec(0, 3, { { hook = "blocks.1.attn.hook_z", op = "scale", heads = { 0, 3 }, factor = 1 },
  { hook = "blocks.3.attn.hook_attn_scores", op = "add", heads = "all", keys = { 0, 4 }, value = 0 } }))
T.write(tmp .. "/steer.json", spec(0.5, 2))
T.write(tmp .. "/steer_moved.json", spec(0.5, 2))

local function eval(args)
  local all = { "eval", "truthfulqa_mc", "--limit", "3", "--progress", "never", "--details", "--threads", "1" }
  for _, a in ipairs(args) do all[#all + 1] = a end
  return cli.json(all)
end

T.case("slua eval: a no-op spec scores exactly as none; a spec is in the settings by its content", function()
  local plain, noop = eval{ "--output", tmp .. "/plain.jsonl" }, eval{ "--intervene", tmp .. "/noop.json" }
  for k, v in pairs(plain.metrics) do T.eq(noop.metrics[k], v, "metric " .. k) end
  T.eq(plain.settings.intervene, nil, "no spec, no setting")
  T.truthy(noop.settings_hash ~= plain.settings_hash, "a spec changes the settings hash")
  local a, b = eval{ "--intervene", tmp .. "/steer.json" }, eval{ "--intervene", tmp .. "/steer_moved.json" }
  T.eq(a.settings_hash, b.settings_hash, "the same spec under another name: the same settings")
  T.truthy(a.metrics.MC2 ~= plain.metrics.MC2, "steering changes the scores")
  -- the per-item lines of the no-op run equal the plain run's
  local lines = T.json_lines(tmp .. "/plain.jsonl")
  eval{ "--intervene", tmp .. "/noop.json", "--output", tmp .. "/noop.jsonl" }
  local noop_lines = T.json_lines(tmp .. "/noop.jsonl")
  for i, l in ipairs(lines) do T.eq(sl.json.encode(noop_lines[i].scores or noop_lines[i].metrics),
    sl.json.encode(l.scores or l.metrics), "item " .. i) end
end)

T.case("slua eval: a results file of one spec refuses another; a bad spec fails before anything is written", function()
  eval{ "--intervene", tmp .. "/steer.json", "--output", tmp .. "/steer.jsonl" }
  local _, err, code = cli.exec{ "eval", "truthfulqa_mc", "--limit", "3", "--progress", "never",
                                 "--intervene", tmp .. "/noop.json", "--output", tmp .. "/steer.jsonl" }
  T.eq(code, 1, "exit status")
  T.truthy(err:find("holds results of other settings", 1, true), err)
  T.write(tmp .. "/bad.json", '[{"hook": "blocks.2.hook_resid_post", "op": "add", "vector": [1, 2]}]')
  cli.usage_error({ "eval", "truthfulqa_mc", "--limit", "3", "--intervene", tmp .. "/bad.json", "--output",
                    tmp .. "/never.jsonl" },
    ("slua: %s/bad.json: op 0: field 'vector': 2 values, expected 64 (d_model of blocks.2.hook_resid_post)"):format(tmp))
  T.eq(T.read_file(tmp .. "/never.jsonl"), nil, "no results file")
end)

T.case("--intervene takes inline JSON; its no-op gives the plain tokens", function()
  local plain = cli.json{ "recipes/greedy.lua", "--max-new-tokens", "12", "--format", "json" }
  local noop = cli.json{ "recipes/greedy.lua", "--max-new-tokens", "12", "--format", "json", "--intervene",
                         T.read(tmp .. "/noop.json") }
  T.eq(sl.json.encode(noop.new_ids), sl.json.encode(plain.new_ids), "tokens")
  T.eq(sl.json.encode(noop.steps), sl.json.encode(plain.steps), "scores, bit for bit")
  local steered = cli.json{ "recipes/greedy.lua", "--max-new-tokens", "12", "--format", "json", "--intervene",
                            spec(0.5, 4) }
  T.truthy(sl.json.encode(steered.new_ids) ~= sl.json.encode(plain.new_ids), "a strong vector changes the tokens")
end)

T.case("a sweep over a field of the spec: one point per value, scale 0 gives the plain run", function()
  T.write(tmp .. "/sweep.lua", ([[
return { recipe = "greedy", fixed = { max_new_tokens = 12, intervene = "steer.json" },
         prompts = { { prompt = "Once upon a time" } }, grid = { ["intervene.0.scale"] = { 0, 4 } } }]]))
  local out, err, code = cli.exec{ "sweep", tmp .. "/sweep.lua", "--out", tmp .. "/runs" }
  T.eq(code, 0, "sweep ran: " .. err .. out)
  local results = T.json_lines(tmp .. "/runs/results.jsonl")
  T.eq(#results, 2, "two points")
  local plain = cli.json{ "recipes/greedy.lua", "--max-new-tokens", "12", "--format", "json" }
  local scale_of, by_scale = {}, {}
  for _, p in ipairs(T.json_file(tmp .. "/runs/sweep.json").points) do scale_of[p.id] = p.params["intervene.0.scale"] end
  for _, r in ipairs(results) do by_scale[scale_of[r.point]] = r end
  T.truthy(by_scale[0] and by_scale[4], "both scales reported under their axis name")
  T.eq(sl.json.encode(by_scale[0].new_ids), sl.json.encode(plain.new_ids), "scale 0 = no steering")
  T.truthy(sl.json.encode(by_scale[4].new_ids) ~= sl.json.encode(plain.new_ids), "scale 4 steers")
  T.truthy(T.read(tmp .. "/runs/report.md"):find("intervene.0.scale", 1, true), "the report names the axis")
  -- an axis of an op the spec does not have is a plan error
  T.write(tmp .. "/bad_sweep.lua", [[
return { recipe = "greedy", fixed = { intervene = "steer.json" }, grid = { ["intervene.3.scale"] = { 1 } } }]])
  local _, err2, code2 = cli.exec{ "sweep", tmp .. "/bad_sweep.lua", "--out", tmp .. "/runs2" }
  T.truthy(code2 ~= 0 and err2:find("no op 3 in the spec", 1, true), err2)
end)

T.finish()
