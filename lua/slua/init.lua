-- slua: the Lua front end over the C core (slua.core).
--
--   local sl = require "slua"
--   local model <close> = sl.check(sl.load("models/stories260K"))
--   local s <close> = model:session{ layers = {2, 4}, raw = true }
--   local out = s:prefill(model.tokenizer:encode("Once upon a time", { special = true }))
--   print(out.logits:argmax(), out:layer_logits(2):argmax())
--
-- Conventions: token ids are 0-based as in tokenizer.json (logits:get(id)); token sequences are
-- ordinary Lua arrays; layers follow HF hidden_states numbering (0 = embeddings, N = final).
-- Environment failures return nil, message, code; misuse raises.
local core = require "slua.core"

local M = {
  core = core,
  version = core.version,
  logits = core.logits,       -- sl.logits(n [, fill]) or sl.logits{...}
  rng = core.rng,             -- sl.rng(seed): xoshiro256** seeded through splitmix64
  set_threads = core.set_threads,
  threads = core.threads,
  json = { encode = core.json_encode, decode = core.json_decode, null = core.null },
  load_tokenizer = core.load_tokenizer,
  clock = core.clock,         -- monotonic wall clock in seconds
}

-- The directory holding lua/, recipes/ and models/ (set by the host; found from package.path
-- when slua is used as a plain module).
local function root()
  if SLUA_ROOT then return SLUA_ROOT end
  local init = package.searchpath("slua", package.path)
  return init and init:gsub("/lua/slua/init%.lua$", "") or "."
end
M.root = root()
M.default_model = M.root .. "/models/stories260K"

---------------------------------------------------------------------------- failures

-- A clean failure: the host prints "slua: <message>" without a traceback.
local Failure = { __tostring = function(e) return e.message end }
function M.fail(message) error(setmetatable({ message = message }, Failure), 0) end

-- Like assert for fail tuples (nil, message, code), but raises a clean failure.
function M.check(v, message, ...)
  if v == nil or v == false then M.fail(message or "check failed") end
  return v, message, ...
end

-- Calls f(...); an error it raises (a bad option reaching a primitive) becomes a clean failure
-- with the message alone, without the Lua position or a traceback.
function M.try(f, ...)
  local ok, a, b, c = pcall(f, ...)
  if ok then return a, b, c end
  local msg = type(a) == "table" and a.message or tostring(a)
  M.fail((msg:gsub("^[^:\n]+:%d+: ", "")))
end

---------------------------------------------------------------------------- loading

-- sl.load(dir [, {tokenizer = true}]) -> Model | nil, message, code
function M.load(dir, opts) return core.load(dir or M.default_model, opts) end

---------------------------------------------------------------------------- options

-- "1,2,3" -> {1, 2, 3}; "" -> {}. Raises a clean failure naming the option on bad entries.
function M.parse_ints(text, name)
  local out = {}
  if text == nil or text == "" then return out end
  for part in tostring(text):gmatch("[^,]+") do
    local v = math.tointeger(tonumber(part))
    if not v then M.fail(("option --%s: '%s' is not an integer"):format(name or "?", part)) end
    out[#out + 1] = v
  end
  return out
end

local function header_comment(path)
  local f = path and io.open(path)
  if not f then return "" end
  local lines = {}
  for line in f:lines() do
    local text = line:match("^%-%-%s?(.*)$")
    if not text then break end
    lines[#lines + 1] = text
  end
  f:close()
  return table.concat(lines, "\n")
end

local function coerce(name, value, default)
  local kind = type(default)
  if kind == "number" then
    local v = tonumber(value)
    if not v then M.fail(("option --%s expects a number (got '%s')"):format(name, value)) end
    if math.type(default) == "integer" then
      v = math.tointeger(v) or M.fail(("option --%s expects an integer (got '%s')"):format(name, value))
    end
    return v
  elseif kind == "boolean" then
    if value == true or value == "true" or value == "1" or value == "yes" then return true end
    if value == "false" or value == "0" or value == "no" then return false end
    M.fail(("option --%s expects true or false (got '%s')"):format(name, tostring(value)))
  end
  return value
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- sl.options(arg, defaults) -> table of options.
-- Flags are --key value, --key=value, or a bare --key for booleans (--no-key for false);
-- dashes and underscores are the same. Values take the type of the default. --config FILE.json
-- merges a JSON object first; --help prints the script's header comment and the defaults.
function M.options(argv, defaults)
  local opt = {}
  for k, v in pairs(defaults) do opt[k] = v end
  local function known(key)
    if defaults[key] == nil then
      M.fail(("unknown option --%s (see %s --help)"):format(key:gsub("_", "-"), argv[0] or "the script"))
    end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local key, value = a:match("^%-%-([%w_%-]+)=(.*)$")
    if not key then key = a:match("^%-%-([%w_%-]+)$") end
    if not key then M.fail(("unexpected argument '%s' (options are --key value)"):format(a)) end
    key = key:gsub("%-", "_")
    if key == "help" then
      io.write(header_comment(argv[0]), "\n\nOptions (defaults):\n")
      for _, k in ipairs(sorted_keys(defaults)) do
        io.write(("  --%-22s %s\n"):format(k:gsub("_", "-"), tostring(defaults[k])))
      end
      os.exit(0, true)
    elseif key == "config" then
      local f = io.open(value or argv[i + 1] or "", "r")
      if not f then M.fail(("option --config: cannot open '%s'"):format(value or argv[i + 1] or "")) end
      local conf, err = core.json_decode(f:read("a"))
      f:close()
      if type(conf) ~= "table" then M.fail("option --config: " .. (err or "not a JSON object")) end
      for k, v in pairs(conf) do
        k = k:gsub("%-", "_")
        known(k)
        opt[k] = coerce(k, v, defaults[k])
      end
      if not value then i = i + 1 end
    else
      local negated = key:match("^no_(.+)$")
      if value == nil and negated and type(defaults[negated]) == "boolean" then
        opt[negated] = false
      else
        known(key)
        if value == nil then
          if type(defaults[key]) == "boolean" and (argv[i + 1] == nil or argv[i + 1]:match("^%-%-")) then
            value = true
          else
            i = i + 1
            value = argv[i]
            if value == nil then M.fail(("option --%s needs a value"):format(key:gsub("_", "-"))) end
          end
        end
        opt[key] = coerce(key:gsub("_", "-"), value, defaults[key])
      end
    end
    i = i + 1
  end
  return opt
end

---------------------------------------------------------------------------- processors and chains

M.processors = require "slua.processors"
M.chat = require "slua.chat"  -- chat templates; adds model:apply_chat_template

-- sl.chain{p1, p2, ...}: one ordered list of processors, each a function(ctx, scores) or a
-- processor table from sl.processors. chain(ctx, scores) runs them in order and returns scores.
local Chain = {}
Chain.__index = Chain

local function as_processor(p, i)
  if type(p) == "function" then return { name = "fn", fn = p } end
  if type(p) == "table" and type(p.fn) == "function" then return p end
  error(("chain: entry %s is not a processor (a function or sl.processors.*)"):format(tostring(i)), 3)
end

function M.chain(list)
  local c = setmetatable({ items = {} }, Chain)
  for i, p in ipairs(list or {}) do c.items[i] = as_processor(p, i) end
  return c
end

function Chain:__call(ctx, scores)
  for _, p in ipairs(self.items) do
    local r = p.fn(ctx, scores)
    if r ~= nil then scores = r end
  end
  return scores
end

function Chain:insert(pos, p)
  if p == nil then pos, p = #self.items + 1, pos end
  table.insert(self.items, pos, as_processor(p, pos))
  return self
end

function Chain:remove(pos) return table.remove(self.items, pos) end

function Chain:names()
  local out = {}
  for i, p in ipairs(self.items) do out[i] = p.name end
  return out
end

function Chain:__len() return #self.items end

---------------------------------------------------------------------------- generation

local run = require "slua.run"
M.generate = run.generate
M.prompt_ids = run.prompt_ids
M.run_options = run.options  -- sl.options over the flags every generation recipe shares
M.invoke = run.invoke        -- run a recipe in this process, its results returned, not printed

return M
