-- Interventions from Lua and the command line: a hook function that adds a vector equals the
-- `add` op bit for bit, an error inside one fails the eval with its message and leaves the
-- session usable, and every kind of bad spec given to a recipe with --intervene is one line
-- naming the op and field, exit 2, nothing on stdout.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local core = require "slua.core"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local models = SLUA_ROOT .. "/tests/data/hf-tiny/"
local prompt = { 1, 17, 230, 5, 99, 41, 7 }

local function zeros(n, v)
  local t = {}
  for i = 1, n do t[i] = v or 0 end
  return t
end

local function wave(n)
  local t = {}
  for i = 1, n do t[i] = 0.25 * math.sin(i) end
  return t
end

-- Final logits of the prompt and three greedy steps.
local function run(session)
  local outs, out = {}, session:prefill(prompt)
  outs[1] = out.logits:totable()
  for s = 2, 4 do
    out = session:step(out.logits:argmax())
    outs[s] = out.logits:totable()
  end
  return outs
end

local function same(a, b, what)
  for s = 1, #a do
    for i = 1, #a[s] do
      if a[s][i] ~= b[s][i] then error(("%s: evaluation %d, logit %d: %.9g vs %.9g"):format(what, s, i, a[s][i], b[s][i]), 2) end
    end
  end
end

for _, name in ipairs{ "tiny-llama", "tiny-qwen2" } do
  local model = sl.check(sl.load(models .. name))
  local D = 64

  T.case(name .. ": a hook function adding a vector equals the add op, bit for bit", function()
    local v = wave(D)
    for _, hook in ipairs{ "blocks.2.hook_resid_post", "blocks.0.hook_resid_pre", "blocks.5.hook_mlp_out" } do
      local op = model:intervention(sl.json.encode{ { hook = hook, op = "add", vector = v, scale = 2.5 } })
      local want = run(model:session{ intervene = op })
      local s = model:session{}
      local t = core.tensor(v)
      local calls = 0
      s:hook(hook, function(view, seen)
        T.eq(seen, hook, "the hook's name")
        T.eq(view:width(), D, "width")
        for i = 1, view:rows() do view:add_row(i, t, 2.5) end
        calls = calls + 1
      end)
      same(want, run(s), hook)
      T.eq(calls, 4, "called once per eval")
      local plain = run(model:session{})
      T.truthy(plain[1][1] ~= want[1][1] or plain[2][2] ~= want[2][2], "the vector changes the logits")
    end
  end)

  T.case(name .. ": hook_z slices through a function equal the ITI-style op", function()
    local hv = wave(16)
    local op = model:intervention(sl.json.encode{
      { hook = "blocks.3.attn.hook_z", op = "add", head = 2, vector = hv, positions = "generated" } })
    local want = run(model:session{ intervene = op })
    local s = model:session{}
    local slice = zeros(64)
    for k = 1, 16 do slice[32 + k] = hv[k] end
    local t = core.tensor(slice)
    s:hook("blocks.3.attn.hook_z", function(view)
      for i = 1, view:rows() do
        if view:position(i) >= #prompt then view:add_row(i, t) end
      end
    end)
    same(want, run(s), "hook_z head 2")
  end)

  T.case(name .. ": an error in a hook function fails the eval with its message; the session stays usable", function()
    local s = model:session{}
    local fail = true
    s:hook("blocks.1.hook_resid_mid", function() if fail then error("probe exploded") end end)
    local ok, err = pcall(s.prefill, s, prompt)
    T.eq(ok, false, "the eval fails")
    T.truthy(tostring(err):find("probe exploded", 1, true), "the message: " .. tostring(err))
    T.truthy(tostring(err):find("blocks.1.hook_resid_mid", 1, true), "the hook: " .. tostring(err))
    T.eq(s:pos(), 0, "the failed eval left no tokens")
    fail = false
    same(run(model:session{}), run(s), "after the failure")
  end)

  T.case(name .. ": a fork with its own intervention equals a fresh session with it", function()
    local op = model:intervention(sl.json.encode{ { hook = "blocks.4.hook_resid_pre", op = "add", vector = wave(D) } })
    local parent = model:session{}
    local fork = parent:fork{ skip = {}, intervene = op }
    local fresh = model:session{ intervene = op }
    local out = parent:prefill(prompt)
    local a, b = fork:prefill(prompt), fresh:prefill(prompt)
    same({ a.logits:totable() }, { b.logits:totable() }, "prompt")
    for _ = 1, 3 do
      local id = out.logits:argmax()
      out = parent:step(id)
      same({ fork:step(id).logits:totable() }, { fresh:step(id).logits:totable() }, "step")
    end
    local low = model:intervention(sl.json.encode{ { hook = "blocks.1.hook_resid_pre", op = "add", vector = wave(D) } })
    T.raises(function() fork:intervene(low) end, "block 1", "an op below the fork's branch")
  end)
end

---------------------------------------------------------------------------- the command line

local cli = T.cli(slua, tmp)
local llama = models .. "tiny-llama"

local function spec(name, ops)
  local path = tmp .. "/" .. name .. ".json"
  T.write(path, type(ops) == "string" and ops or sl.json.encode(ops))
  return path
end

local function greedy(path)
  return { SLUA_ROOT .. "/recipes/greedy.lua", "--model", llama, "--prompt-ids", "1,5,9", "--max-new-tokens", "2",
           "--intervene", path }
end

local bad = {
  { "unknown hook", { { hook = "blocks.1.hook_resdi_post", op = "add", vector = zeros(64) } },
    "op 0: field 'hook': unknown hook 'blocks.1.hook_resdi_post' (valid: blocks.L.hook_resid_pre|hook_attn_out|"
    .. "hook_resid_mid|hook_mlp_out|hook_resid_post or blocks.L.attn.hook_q|hook_k|hook_v|hook_z|hook_attn_scores|"
    .. "hook_pattern, L in [0, 7])" },
  { "block out of range", { { hook = "blocks.8.hook_resid_post", op = "add", vector = zeros(64) } },
    "op 0: field 'hook': hook 'blocks.8.hook_resid_post': block 8 out of range [0, 7]" },
  { "head out of range", { { hook = "blocks.1.attn.hook_z", op = "add", head = 7, vector = zeros(16) } },
    "op 0: field 'head': head 7 out of range [0, 3] (blocks.1.attn.hook_z)" },
  { "heads out of range", { { hook = "blocks.1.attn.hook_z", op = "scale", heads = { 0, 4 }, factor = 0 } },
    "op 0: field 'heads': head 4 out of range [0, 3] (blocks.1.attn.hook_z)" },
  { "wrong vector length", { { hook = "blocks.0.hook_resid_pre", op = "add", vector = zeros(64) },
                             { hook = "blocks.2.hook_mlp_out", op = "add", vector = zeros(63) } },
    "op 1: field 'vector': 63 values, expected 64 (d_model of blocks.2.hook_mlp_out)" },
  { "wrong head vector length", { { hook = "blocks.2.attn.hook_z", op = "add", head = 1, vector = zeros(64) } },
    "op 0: field 'vector': 64 values, expected 16 (head_dim of blocks.2.attn.hook_z)" },
  { "empty key span", { { hook = "blocks.1.attn.hook_attn_scores", op = "add", keys = { 4, 4 }, value = -1 } },
    "op 0: field 'keys': empty span [4, 4)" },
  { "key span beyond the context", { { hook = "blocks.1.attn.hook_attn_scores", op = "add", keys = { 200, 300 },
                                       value = -1 } },
    "op 0: field 'keys': span [200, 300) goes beyond the model's context of 256 positions" },
  { "unreadable vector file", { { hook = "blocks.1.hook_resid_post", op = "add", vector = "nope.safetensors:v" } },
    "op 0: field 'vector': " .. tmp .. "/nope.safetensors: cannot open (No such file or directory)" },
  { "unknown field", { { hook = "blocks.1.hook_resid_post", op = "add", vector = zeros(64), sclae = 2 } },
    "op 0: field 'sclae': not a field of 'add' on blocks.1.hook_resid_post" },
  { "write on a read-only hook", { { hook = "blocks.1.attn.hook_pattern", op = "add", vector = zeros(4) } },
    "op 0: field 'op': 'add' is not defined on blocks.1.attn.hook_pattern (it can be captured; writes go to the "
    .. "residual hooks, hook_z and hook_attn_scores)" },
  { "bad positions", { { hook = "blocks.1.hook_resid_post", op = "add", vector = zeros(64), positions = "later" } },
    "op 0: field 'positions': expected \"all\", \"prompt\", \"generated\" or a list (got \"later\")" },
}

for i, case in ipairs(bad) do
  T.case("--intervene: " .. case[1], function()
    local path = spec("bad" .. i, case[2])
    cli.usage_error(greedy(path), ("slua: %s: %s"):format(path, case[3]))
  end)
end

T.case("--intervene: malformed JSON and an op that is not an object", function()
  local path = spec("malformed", '[{"hook": "blocks.1.hook_resid_post",')
  local out, err, code = cli.exec(greedy(path))
  T.eq(code, 2, "exit status")
  T.eq(out, "", "stdout")
  T.truthy(err:match("^slua: " .. path:gsub("%p", "%%%0") .. ": invalid JSON at byte %d+ %b()\n$"), err)
  path = spec("notobject", "[3]")
  cli.usage_error(greedy(path), ("slua: %s: op 0: expected an object {\"hook\", \"op\", ...}"):format(path))
end)

T.case("--intervene: an op on a block the recipe's fork skips", function()
  local path = spec("skipped", { { hook = "blocks.2.hook_resid_pre", op = "add", vector = zeros(64) },
                                 { hook = "blocks.3.hook_resid_post", op = "add", vector = zeros(64) } })
  local line = ("slua: %s: op 1: field 'hook': blocks.3.hook_resid_post is in block 3, which this session skips")
    :format(path)
  local out, err, code = cli.exec{ SLUA_ROOT .. "/recipes/skiplayer_slh.lua", "--model", llama, "--prompt-ids", "1,5,9",
                                   "--max-new-tokens", "2", "--skip-blocks", "3:5", "--intervene", path }
  T.eq(code, 2, "exit status: " .. err)
  T.eq(out, "", "stdout")
  -- after the recipe's note of the span it skips
  T.eq(err:match("[^\n]*\n$"), line .. "\n", "message")
  T.truthy(not err:find("traceback", 1, true), err)
end)

T.case("--intervene: a vector from a safetensors file of captures", function()
  local t = core.tensor{ wave(64) }
  core.save_tensors(tmp .. "/caps.safetensors", { steer = t })
  local path = spec("fromfile", { { hook = "blocks.1.hook_resid_post", op = "add", vector = "caps.safetensors:steer" } })
  local inline = spec("inline", { { hook = "blocks.1.hook_resid_post", op = "add", vector = t:flat():totable() } })
  local a = cli.json{ SLUA_ROOT .. "/recipes/greedy.lua", "--model", llama, "--prompt-ids", "1,5,9",
                      "--max-new-tokens", "3", "--format", "json", "--intervene", path }
  local b = cli.json{ SLUA_ROOT .. "/recipes/greedy.lua", "--model", llama, "--prompt-ids", "1,5,9",
                      "--max-new-tokens", "3", "--format", "json", "--intervene", inline }
  T.eq(sl.json.encode(a.steps), sl.json.encode(b.steps), "the same steps")
end)

T.finish()
