-- slua.recipe: a recipe is a value. A recipe file ends with
--
--   return sl.recipe{
--     name = "dola",                       -- "recipe" in the JSON output
--     options = { dola_layers = "high", ... },  -- its own options (slua.options specs), over the
--                                          -- common ones of a generation recipe
--     input = true,                        -- (optional) only the prompt's options: no generation
--     session = function(ctx) return { layers = ... } end,   -- the main session's options (or a table)
--     amateurs = function(ctx) return { session } end,       -- sessions stepped in lockstep
--     scores = function(ctx) return scores, info end,        -- default: the final logits
--     processors = function(ctx) return { ... } end,         -- a list, a chain, or a function
--                                          -- returning one (per run: stateful processors such as
--                                          -- mirostat need the function); default
--                                          -- sl.processors.standard(ctx.opt)
--     sample = false,                      -- default: ctx.opt.do_sample
--     eos = function(ctx) return ids end,  -- default: the model's EOS ids
--     run = function(ctx) return result end,  -- a loop of its own (beam search, speculative
--                                          -- decoding, a dump): replaces the one-token loop
--     text = function(result, ctx) end,    -- text mode's output of a `run` recipe
--     after = function(result, ctx) end,   -- called with the finished result before it is handed
--                                          -- over (slua.view.after writes --html FILE)
--   }
--
-- The value keeps the table as r.spec (r.spec.options: the declared options), with r.name and
-- r.file (the file it came from, whose header comment --help prints).
--
-- Every hook takes the run's context (slua.run): ctx.opt (the parsed options), ctx.model, and
-- for the loop's hooks session, out, step, generated, ...; state of one run lives in ctx (never
-- in upvalues), so one value serves many runs at once (sl.generate_many). ctx.extra collects
-- fields for the result (skip_span). What drives a recipe reads this value:
--
--   local dola = sl.recipe.load("dola")          -- recipes/dola.lua, a path, or require "recipes.dola"
--   dola:options{ dola_layers = "low" }          -- the full option set, checked; nothing runs
--   dola:run{ prompt = "Hi", max_new_tokens = 4 }  -- the result table (what --format json prints)
--   dola{ prompt = "Hi" }                        -- the same
--   dola:run(flags, { model = m, sessions = cache })  -- on a loaded model, with a prefix cache
--   dola:main(arg)                               -- the command line: --help, stream or print
--   dola:help()                                  -- the --help text
--
-- Flags are a list ({"--top-k", "4"}) or a table of options ({top_k = 4}). `slua RECIPE` runs
-- main on the value the file returns; `slua chat --recipe`, sweeps, `slua eval` and
-- sl.generate_many call run. A script that returns nothing still runs as a plain script.
local util = require "slua.util"
local options = require "slua.options"
local run = require "slua.run"
local batch = require "slua.batch"
local chat_options = require "slua.chat.options"

local M = {}

local Recipe = {}
Recipe.__index = Recipe

local hooks = { session = "table", amateurs = "function", scores = "function", processors = "table",
                eos = "table", run = "function", text = "function", after = "function" }
local plain = { name = "string", options = "table", input = "boolean", sample = "boolean", file = "string" }

-- The file of the code that called sl.recipe: the first Lua frame outside slua's own library
-- (a helper such as slua.decoders.contrast.recipe may build the value), unless a call on the
-- way was a tail call (`return sl.recipe{...}`), whose caller's frame is gone; the loaders
-- (M.load, the host) then set it from the path they loaded.
local library = debug.getinfo(1, "S").source:match("^@(.*/)[^/]*$")
local function caller_file()
  for level = 2, 20 do
    local info = debug.getinfo(level, "St")
    if not info then return nil end
    local path = info.source:match("^@(.*)$")
    if info.what ~= "C" and not (path and library and path:sub(1, #library) == library) then return path end
    if info.istailcall then return nil end
  end
end

-- sl.recipe{...} -> a recipe value.
local function new(spec)
  if type(spec) ~= "table" then util.fail("sl.recipe: wants a table {name, options, session, scores, ...}") end
  local file = spec.file or caller_file()
  local self = setmetatable({ name = spec.name, file = file, spec = {} }, Recipe)
  for k, v in pairs(spec) do
    local want = plain[k] or hooks[k]
    if not want then
      local known = {}
      for name in pairs(plain) do known[#known + 1] = name end
      for name in pairs(hooks) do known[#known + 1] = name end
      table.sort(known)
      util.fail(("sl.recipe: unknown field '%s' (fields: %s)"):format(tostring(k), table.concat(known, ", ")))
    end
    if type(v) ~= want and not (hooks[k] and type(v) == "function") then
      util.fail(("sl.recipe: field '%s' must be a %s%s (got %s)"):format(k, want,
        hooks[k] and want ~= "function" and " or a function" or "", type(v)))
    end
    self.spec[k] = v
  end
  self.spec.file = file
  if type(self.name) ~= "string" then util.fail("sl.recipe: field 'name' (a string) is missing") end
  if spec.input and not spec.run then util.fail("sl.recipe: an input recipe needs a run function") end
  return self
end

M.new = new
setmetatable(M, { __call = function(_, spec) local r = new(spec); return r end })  -- no tail call: see caller_file

-- Whether v is a recipe value.
function M.is(v) return getmetatable(v) == Recipe end

-- Every option the recipe reads, with its spec or default (its own over the common ones).
function Recipe:declared() return run.declared(self.spec.options, self.spec.input and "input") end

-- The flags as a list for slua.options, argv[0] naming the recipe in messages and --help.
function Recipe:argv(flags)
  flags = flags or {}
  local named = false                                  -- {top_k = 4} rather than {"--top-k", "4"}
  for k in pairs(flags) do if type(k) == "string" then named = true; break end end
  local argv = named and run.argv(flags) or table.move(flags, 1, #flags, 1, {})
  argv[0] = self.file or self.name
  return argv
end

-- recipe:options(flags) -> the full option set, defaults filled in and checked (a bad flag is
-- a clean usage failure). Nothing is loaded or run.
function Recipe:options(flags)
  return run.options(self:argv(flags), self.spec.options, self.spec.input and "input")
end

-- The --help text for these flags (their --model's generation_config.json gives defaults, as
-- on the command line): the file's header comment, then every option with its default and rule.
function Recipe:help(flags)
  local declared = self:declared()
  chat_options.apply_generation_config(self:argv(flags), declared)
  return options.help_of(self.file, declared)
end

-- recipe:run(flags [, {model = m, sessions = cache, on_token = fn}]) -> the
-- result table its JSON mode prints, printing nothing. opts.model: a loaded model (else
-- --model's is loaded); opts.sessions, a table the caller keeps between runs, is a prefix
-- cache: the next run continues the last one's session from the prefix the two prompts share
-- (same results, less prefill). opts.on_token(id, raw, ctx), called after each token of the
-- one-token loop (logprobs: log_softmax of that step's final logits before any processor), may
-- return "stop" to end the run there (stop_reason "stop"). Errors reach the caller.
function Recipe:run(flags, opts)
  opts = opts or {}
  local ctx = { opt = self:options(flags), model = opts.model, sessions = opts.sessions, on_token = opts.on_token }
  return run.execute(self.spec, ctx)
end

Recipe.__call = Recipe.run

-- recipe:main(argv): the command line. --help prints the help and exits; text mode streams,
-- JSON mode prints one object; Ctrl-C prints what was generated, then the host exits with 130.
-- With SLUA_PROGRESS set in the environment, the one-token loop writes "slua: step N" to
-- stderr after each token (a count to wait for, for tests that interrupt a run).
function Recipe:main(argv)
  local ctx = { opt = self:options(argv), cli = true }
  if os.getenv("SLUA_PROGRESS") then
    ctx.progress = function(n) io.stderr:write(("slua: step %d\n"):format(n)); io.stderr:flush() end
  end
  return run.execute(self.spec, ctx)
end

function Recipe:__tostring() return ("slua.recipe(%s)"):format(self.name) end

---------------------------------------------------------------------------- loading

-- A recipe's path: a file path as given, else recipes/<name>.lua under the slua root.
function M.path(name)
  if name:find("/", 1, true) then return name end
  return ("%s/recipes/%s%s"):format(util.root, name, name:match("%.lua$") and "" or ".lua")
end

local loaded = {}

-- Whether a file's text has a top-level `return` (a line that starts with it): a recipe file
-- returns its value; a plain script has none, and is not run to find out.
local function returns_value(path)
  local f = io.open(path)
  if not f then return false end
  local text = f:read("a")
  f:close()
  return ("\n" .. text):find("\nreturn[%s%(]") ~= nil
end

-- sl.recipe.load(name | path | value) -> the recipe value its file returns (loaded once per
-- path). A file that returns no recipe value (a plain script) is a usage failure.
function M.load(name)
  if M.is(name) then return name end
  if type(name) ~= "string" then util.fail("a recipe: a name, a path or an sl.recipe value", 2) end
  local path = M.path(name)
  if loaded[path] then return loaded[path] end
  local chunk, err = loadfile(path)
  if not chunk then
    util.fail(err:find("No such file", 1, true) and ("unknown recipe '%s' (no %s)"):format(name, path) or err, 2)
  end
  local value = returns_value(path) and chunk() or nil
  if not M.is(value) then
    util.fail(("%s: returns no sl.recipe{...} value (a plain script runs only as `slua %s`)"):format(path, name), 2)
  end
  value.file, value.spec.file = path, path
  loaded[path] = value
  return value
end

---------------------------------------------------------------------------- many runs

-- sl.generate_many{recipe = "greedy" | value, runs = {{prompt = "..."}, ...}, options = {...},
--                  model = m, batch = 8, on_result = function(i, result) end} -> results
-- Runs a recipe once per entry of runs (its flags as a table, over the shared options), up to
-- `batch` generations at once on one loaded model (default: --model's is loaded once per run),
-- and returns each run's result table (what --format json prints), in run order.
function M.generate_many(spec)
  if type(spec) ~= "table" or type(spec.runs) ~= "table" then
    util.fail("generate_many: wants {recipe = NAME, runs = {{flags}, ...}}")
  end
  local recipe = M.load(spec.recipe or "greedy")
  local function one(flags)
    local opts = {}
    for k, v in pairs(spec.options or {}) do opts[k] = v end
    for k, v in pairs(flags) do opts[k] = v end
    opts.format = "json"
    return recipe:run(opts, { model = spec.model })
  end
  return batch.map(spec.runs, one, { batch = spec.batch, on_result = spec.on_result })
end

-- What the host does with the value a script returns: a recipe value runs as the command line.
function M.host(value, argv)
  if M.is(value) then
    value.file, value.spec.file = argv[0], argv[0]
    return value:main(argv)
  end
end

return M
