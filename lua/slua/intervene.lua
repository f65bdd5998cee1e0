-- slua.intervene: activation interventions for the sessions a run creates.
--
--   local iv = intervene.load(model, "steer.json")            -- a JSON spec file
--   local iv = intervene.load(model, { { hook = "blocks.2.hook_resid_post", op = "add",
--                                        vector = { ... }, scale = 4 } })   -- ops as a table
--   model:session{ intervene = iv }                           -- or session:intervene(iv)
--
-- The spec format and the hook names are those of docs/spec/interventions.md. A spec names
-- vectors as "FILE.safetensors:NAME" relative to the spec file's directory (inline JSON: the
-- working directory). Every error names the op's index (from 0) and field; loading one for
-- the command line is a usage error (exit 2).
local core = require "slua.core"
local options = require "slua.options"
local util = require "slua.util"

local M = {}

local function read_file(path)
  local text, err = core.fs.read(path)
  if not text then options.fail(err and tostring(err) or (path .. ": cannot read"), 2) end
  return text
end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

-- Whether an --intervene value is the spec itself (inline JSON) rather than a file name.
local function inline(v) return type(v) == "string" and v:find("^%s*%[") ~= nil end

-- intervene.load(model, spec) -> Intervention: spec is a path to a JSON file, the JSON text
-- itself ("[{...}]"), a table of ops, or an Intervention already made. Bad specs are clean
-- usage failures.
function M.load(model, spec)
  if type(spec) == "userdata" then return spec end
  local text, label, base
  if type(spec) == "table" then
    text, label = core.json_encode(spec), "intervention"
  elseif inline(spec) then
    text, label = spec, "--intervene"
  elseif type(spec) == "string" then
    text, label, base = read_file(spec), spec, dirname(spec)
  else
    options.fail(("intervention: expected a file name or a table of ops (got %s)"):format(type(spec)), 2)
  end
  local ok, iv = pcall(model.intervention, model, text, label, base)
  if not ok then options.fail((tostring(iv):gsub("^[^:\n]+:%d+: ", "")), 2) end
  return iv
end

-- The run's intervention (--intervene FILE), loaded once per run context; nil without one.
function M.of_run(ctx)
  local file = ctx.opt and ctx.opt.intervene
  if not file or file == "" then return nil end
  if ctx.intervention == nil then ctx.intervention = M.load(ctx.model, file) end
  return ctx.intervention
end

-- Session options with the run's intervention added (for sessions of the run's model).
function M.session_options(ctx, opts, model)
  local iv = M.of_run(ctx)
  if not iv or (model and model ~= ctx.model) then return opts end
  local with = { intervene = iv }
  for k, v in pairs(opts or {}) do with[k] = v end
  return with
end

-- What a spec file is in settings hashes: its content's hash, so an edited spec gives new
-- settings and a moved one does not. (Vector files it names are taken by name.)
function M.identity(path)
  return "fnv1a64:" .. util.fnv1a64(inline(path) and path or read_file(path))
end

-- intervene.capture(session, "hook,hook,...") -> the hook names, recorded from now on (a bad
-- name is a usage error); intervene.captured(session, names [, file]) -> {name = Tensor} (nil
-- for no names), also written to file as safetensors when given.
function M.capture(session, list)
  local hooks = {}
  for name in (list or ""):gmatch("[^,%s]+") do hooks[#hooks + 1] = name end
  if #hooks > 0 then util.try_option(session.capture, session, hooks) end
  return hooks
end

function M.captured(session, hooks, file)
  if #hooks == 0 then return nil end
  local out = {}
  for _, name in ipairs(hooks) do out[name] = session:captured(name) end
  if file and file ~= "" then util.check(core.save_tensors(file, out)) end
  return out
end

-- A stable text of the run's intervention for keys and hashes: the spec file's content.
function M.key(ctx)
  local file = ctx.opt and ctx.opt.intervene
  if not file or file == "" then return "" end
  return inline(file) and file or read_file(file)
end

return M
