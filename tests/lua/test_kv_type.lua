-- The float16 KV cache from Lua: model:session{kv_type = ...} and --kv-type on the generation
-- recipes. F16 is lossy: the drift of the logits is bounded here, token-level checks against
-- the goldens are in tests/unit/test_kv_f16.c.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local model = sl.check(sl.load(SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama"))
local prompt = { 1, 7, 42, 99, 5, 61, 300, 12 }

T.case("session kv_type f16 stays near f32 and decodes alike", function()
  local a <close> = model:session{ kv_type = "f32" }
  local b <close> = model:session{ kv_type = "f16" }
  local la, lb = a:prefill(prompt).logits, b:prefill(prompt).logits
  local d = 0
  for id = 0, #la - 1 do d = math.max(d, math.abs(la:get(id) - lb:get(id))) end
  T.truthy(d > 0, "f16 rounds the cache (max|d| " .. d .. ")")
  T.truthy(d < 0.05, "f16 logits within 0.05 of f32 (max|d| " .. d .. ")")
end)

T.case("--help and the README state one f16 drift, and the measured drift is within it", function()
  local help = T.run(("%s greedy --help"):format(T.q(slua))):match("%-%-kv%-type[^\n]*")
  local stated = help and help:match("up to ~([%d.e-]+)")
  local readme = T.read(SLUA_ROOT .. "/README.md"):match("`%-%-kv%-type f32|f16`.-up to ~([%d.e-]+)")
  T.truthy(stated, "--help states the drift: " .. tostring(help))
  T.eq(readme, stated, "README and --help")
  local bound = tonumber(stated)
  -- 24 greedy steps on each test model: the largest |d logit| between the two caches
  for _, dir in ipairs{ "tiny-llama", "tiny-llama-tied", "tiny-qwen2" } do
    local m = sl.check(sl.load(SLUA_ROOT .. "/tests/data/hf-tiny/" .. dir))
    local a <close> = m:session{ kv_type = "f32" }
    local b <close> = m:session{ kv_type = "f16" }
    local oa, ob = a:prefill(prompt), b:prefill(prompt)
    local d = 0
    for _ = 1, 24 do
      local la, lb = oa.logits, ob.logits
      for id = 0, #la - 1 do d = math.max(d, math.abs(la:get(id) - lb:get(id))) end
      local next_id = la:argmax()
      oa, ob = a:step(next_id), b:step(next_id)
    end
    T.truthy(d <= bound, ("%s: max|d| %.3g within the stated ~%s"):format(dir, d, stated))
    T.truthy(d > bound / 100, ("%s: max|d| %.3g is of the stated order (~%s)"):format(dir, d, stated))
  end
end)

T.case("a bad kv_type is refused", function()
  T.raises(function() return model:session{ kv_type = "bf16" } end, 'kv_type must be "f32" or "f16" (got bf16)')
end)

local function run(args)
  local cmd = ("%s %s 2>&1"):format(slua, table.concat(args, " "))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

T.case("--kv-type on the generation recipes", function()
  local dir = SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama"
  for _, recipe in ipairs{ "greedy", "beam_search", "speculative", "contrastive_search", "sample" } do
    local out, code = run{ recipe, "--model", dir, "--prompt-ids", "1,5,9,33", "--max-new-tokens", "6",
                           "--format", "json", "--kv-type", "f16" }
    T.eq(code, 0, recipe .. ": " .. out)
    local r = sl.json.decode(out)
    T.eq(r.options.kv_type, "f16", recipe)
    T.eq(#r.new_ids, 6, recipe)
  end
  local out, code = run{ "greedy", "--kv-type", "bf16" }
  T.eq(code, 2, "exit status")
  T.eq(out, "slua: option --kv-type must be one of f32, f16 (got 'bf16')\n", "message")
end)

T.finish()
