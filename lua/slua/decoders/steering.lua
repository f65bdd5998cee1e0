-- slua.decoders.steering: what the activation-steering recipes (steer, iti, pasta) share: reading
-- a hook over a prompt, and installing a list of ops on the run's main session, after the ops of
-- the run's --intervene, optionally writing them as a spec file for --intervene elsewhere (slua
-- eval, sweeps).
local core = require "slua.core"
local util = require "slua.util"
local intervene = require "slua.intervene"

local S = {}

-- The hook's values at every position of ids, from a fresh session without interventions:
-- a Tensor [positions, ...].
function S.capture(model, ids, hook)
  local s <close> = model:session{}
  s:capture({ hook }, "all")
  s:prefill(ids)
  return (s:captured(hook))
end

-- The ops of the run's --intervene file as a table, vector files resolved against its folder.
local function run_ops(ctx)
  local file = ctx.opt.intervene
  if not file or file == "" then return {} end
  local ops = core.json_decode(intervene.key(ctx))
  local dir = file:match("^(.*)/[^/]*$")
  for _, op in ipairs(type(ops) == "table" and ops or {}) do
    for _, field in ipairs{ "vector", "values" } do
      local ref = op[field]
      if dir and type(ref) == "string" and ref:sub(1, 1) ~= "/" then op[field] = dir .. "/" .. ref end
    end
  end
  return ops
end

-- The Intervention of the run's ops followed by `ops` (a list of op tables, Tensors allowed as
-- vectors), nil when both are empty; with spec_out ~= "" the list is also written there as JSON.
function S.intervention(ctx, ops, spec_out)
  local all, cwd = run_ops(ctx), os.getenv("PWD")
  for _, op in ipairs(ops) do all[#all + 1] = op end
  for _, op in ipairs(all) do   -- a written spec is read relative to its own folder: name files absolutely
    for _, field in ipairs{ "vector", "values" } do
      if cwd and type(op[field]) == "string" and op[field]:sub(1, 1) ~= "/" then op[field] = cwd .. "/" .. op[field] end
    end
  end
  if spec_out and spec_out ~= "" then
    local f = io.open(spec_out, "w") or util.fail(("option --spec-out: cannot write %s"):format(spec_out), 2)
    f:write(core.json_encode(all), "\n")
    f:close()
  end
  return #all > 0 and intervene.load(ctx.model, all) or nil
end

-- Session options that carry that Intervention (for a recipe's session hook).
function S.install(ctx, ops, spec_out) return { intervene = S.intervention(ctx, ops, spec_out) } end

return S
