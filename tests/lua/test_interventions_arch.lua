-- Interventions on every architecture family (tests/data/arch), where no HF golden exists for
-- them: the hook points sit in the one forward pass every family runs, so equalities the spec
-- implies must hold bit for bit on each: a no-op spec gives the plain logits; adding v after
-- block L (hook_resid_post) is adding it before block L + 1 (hook_resid_pre); setting a
-- block's output to what a capture of the same run recorded changes nothing; and each family's
-- captured residual stream has the hidden size.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local data = SLUA_ROOT .. "/tests/data/arch/"
local tmp = T.tmpdir()
local cli = T.cli(slua, tmp)

local function final(dir, ids, spec, extra)
  local args = { "logits", "--model", dir, "--prompt-ids", ids, "--format", "json" }
  if spec then
    local path = ("%s/spec_%d.json"):format(tmp, math.random(1 << 30))
    T.write(path, sl.json.encode(spec))
    args[#args + 1], args[#args + 2] = "--intervene", path
  end
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return cli.json(args)
end

for _, family in ipairs{ "qwen3", "olmo2", "gemma2", "gemma3", "phi3", "mixtral", "qwen2moe" } do
  local dir = data .. family
  local cfg = T.json_file(dir .. "/config.json")
  local D, N = cfg.hidden_size, cfg.num_hidden_layers
  local ids = "1,17,99,300,42,7,5,11"
  T.case(family .. ": no-op, resid_post(L) = resid_pre(L+1), set from a capture", function()
    local plain = final(dir, ids)
    local zero, v = {}, {}
    for i = 1, D do zero[i], v[i] = 0, ((i * 7919) % 17 - 8) / 16 end
    local heads = {}
    for h = 0, cfg.num_attention_heads - 1 do heads[#heads + 1] = h end
    local noop = final(dir, ids, {
      { hook = "blocks.0.hook_resid_pre", op = "add", vector = zero },
      { hook = "blocks.1.hook_mlp_out", op = "add", vector = zero, scale = 3 },
      { hook = ("blocks.%d.attn.hook_z"):format(N - 1), op = "scale", heads = heads, factor = 1 },
      { hook = "blocks.0.attn.hook_attn_scores", op = "add", heads = "all", keys = { 0, 3 }, value = 0 } })
    T.eq(sl.json.encode(noop.final), sl.json.encode(plain.final), "a no-op spec: the plain logits, bit for bit")
    local a = final(dir, ids, { { hook = "blocks.0.hook_resid_post", op = "add", vector = v, scale = 2 } })
    local b = final(dir, ids, { { hook = "blocks.1.hook_resid_pre", op = "add", vector = v, scale = 2 } })
    T.eq(sl.json.encode(a.final), sl.json.encode(b.final), "after block 0 = before block 1")
    T.truthy(sl.json.encode(a.final) ~= sl.json.encode(plain.final), "and it changes the logits")
    local cap = final(dir, ids, nil, { "--capture", "blocks.0.hook_resid_post" }).captures["blocks.0.hook_resid_post"]
    T.eq(#cap, 8, "one row per position")
    T.eq(#cap[1], D, "rows of the hidden size")
    local positions = {}
    for p = 0, 7 do positions[#positions + 1] = p end
    local set = final(dir, ids, { { hook = "blocks.0.hook_resid_post", op = "set", values = cap, positions = positions } })
    T.eq(sl.json.encode(set.final), sl.json.encode(plain.final), "setting what was captured changes nothing")
  end)
end

T.finish()
