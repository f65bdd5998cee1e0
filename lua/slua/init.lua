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
  -- sl.eval_batch{{session, ids | id [, all_logits = true]}, ...} -> {Output, ...}: several
  -- sessions of one model evaluated together, each weight read once for all their rows; a
  -- fork may come with its parent (same tokens). Outputs equal those of session:prefill/step.
  eval_batch = core.eval_batch,
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

local options = require "slua.options"

-- A clean failure: the host prints "slua: <message>" without a traceback and exits with code
-- (default 1; usage errors use 2).
M.fail = options.fail

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
  M.fail((msg:gsub("^[^:\n]+:%d+: ", "")), type(a) == "table" and a.code or nil)
end

-- sl.try for a primitive that checks an option's value: its error is a usage error (exit 2).
function M.try_option(f, ...)
  local ok, a, b, c = pcall(M.try, f, ...)
  if ok then return a, b, c end
  a.code = a.code or 2
  error(a, 0)
end

---------------------------------------------------------------------------- loading

-- sl.load(dir [, {tokenizer = true, weights = "stored" | "q8_0"}]) -> Model | nil, message, code
-- (q8_0: the matrices converted to 8-bit blocks at load; lossy, not HF-exact)
function M.load(dir, opts) return core.load(dir or M.default_model, opts) end

---------------------------------------------------------------------------- options

-- sl.options(arg, declared): options declared with their defaults and rules (slua.options).
M.options = options.parse
M.option_error = options.error  -- sl.option_error(name, rule, got): a usage error, exit 2
M.parse_ints = options.parse_ints
M.parse_ids = options.parse_ids
M.check_options = options.check_model  -- sl.check_options(opt, model): the checks that need the model
M.option_rules = options               -- model_check helpers: vocab_ids, layers(lo)

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

-- What a scores function or processor (in_place: nil is fine, the scores were changed in
-- place) returned, checked before anything uses it: a slua.Logits as long as the vocabulary.
function M.check_scores(r, n, who, in_place)
  if r == nil and in_place then return nil end
  if core.is_logits(r) then
    if #r ~= n then M.fail(("%s returned %d scores, the vocabulary has %d"):format(who, #r, n)) end
    return r
  end
  M.fail(("%s returned %s, not a slua.Logits%s"):format(who, r == nil and "nil" or "a " .. type(r),
    in_place and " (or nil after changing the scores in place)" or ""))
end

function Chain:__call(ctx, scores)
  local n = #scores
  for i, p in ipairs(self.items) do
    local r = p.fn(ctx, scores)
    if r ~= nil then
      scores = M.check_scores(r, n, ("processor %d (%s)"):format(i, p.name or "fn"), true)
    end
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
M.generate_many = require("slua.batch").generate_many  -- many runs of a recipe, batched

return M
