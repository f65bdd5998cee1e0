-- slua.util: the bottom layer of the Lua library. Internal modules require this, never the
-- facade `slua` (lua/slua/init.lua), so that no module depends on the one that gathers them all
-- and none needs a lazy require to break a cycle. It holds what every layer uses: clean
-- failures, loading a model, where slua's files live, JSON, option parsing and processor
-- chains. The facade re-exports all of it.
local core = require "slua.core"
local options = require "slua.options"
local processors = require "slua.processors"

local U = {
  core = core,
  version = core.version,
  logits = core.logits,       -- sl.logits(n [, fill]) or sl.logits{...}
  rng = core.rng,             -- sl.rng(seed): xoshiro256** seeded through splitmix64
  set_threads = core.set_threads,
  threads = core.threads,
  -- json.object(): an empty table that json.encode writes as {} (an empty table is [])
  json = { encode = core.json_encode, decode = core.json_decode, null = core.null,
           object = function() return setmetatable({}, { __json = "object" }) end },
  load_tokenizer = core.load_tokenizer,
  clock = core.clock,         -- monotonic wall clock in seconds
  -- sl.eval_batch{{session, ids | id [, all_logits = true]}, ...} -> {Output, ...}: several
  -- sessions of one model evaluated together, each weight read once for all their rows; a
  -- fork may come with its parent (same tokens). Outputs equal those of session:prefill/step.
  eval_batch = core.eval_batch,
}

-- The directory holding lua/, recipes/ and models/: the host's (the global SLUA_ROOT it sets
-- before any script runs), else found from package.path when slua is used as a plain module.
local function root()
  if SLUA_ROOT then return SLUA_ROOT end
  local init = package.searchpath("slua.util", package.path)
  return init and init:gsub("/lua/slua/util%.lua$", "") or "."
end
U.root = root()
U.default_model = U.root .. "/models/stories260K"

---------------------------------------------------------------------------- failures

-- A clean failure: the host prints "slua: <message>" without a traceback and exits with code
-- (default 1; usage errors use 2).
U.fail = options.fail

-- Like assert for fail tuples (nil, message, code), but raises a clean failure.
function U.check(v, message, ...)
  if v == nil or v == false then U.fail(message or "check failed") end
  return v, message, ...
end

-- Calls f(...); an error it raises (a bad option reaching a primitive) becomes a clean failure
-- with the message alone, without the Lua position or a traceback.
function U.try(f, ...)
  local ok, a, b, c = pcall(f, ...)
  if ok then return a, b, c end
  local msg = type(a) == "table" and a.message or tostring(a)
  U.fail((msg:gsub("^[^:\n]+:%d+: ", "")), type(a) == "table" and a.code or nil)
end

-- sl.try for a primitive that checks an option's value: its error is a usage error (exit 2).
function U.try_option(f, ...)
  local ok, a, b, c = pcall(U.try, f, ...)
  if ok then return a, b, c end
  a.code = a.code or 2
  error(a, 0)
end

-- The plain string the host raises on Ctrl-C (sl.try keeps it as a message).
function U.is_interrupt(err)
  local msg = type(err) == "table" and err.message or err
  return type(msg) == "string" and msg:find("interrupted", 1, true) ~= nil and #msg < 80
end

-- 64-bit FNV-1a of a string as 16 hex digits (stable across machines and Lua builds): the
-- hashes of settings, sweep points and input files.
function U.fnv1a64(text)
  local h = -3750763034362895579  -- 0xcbf29ce484222325
  for i = 1, #text do
    h = (h ~ text:byte(i)) * 1099511628211
  end
  return ("%016x"):format(h)
end

---------------------------------------------------------------------------- loading

-- sl.load(dir [, {tokenizer = true, weights = "stored" | "q8_0", compute = "exact" | "bf16"}])
-- -> Model | nil, message, code (q8_0: the matrices converted to 8-bit blocks at load; bf16: the
-- products in BF16; both lossy, not HF-exact)
function U.load(dir, opts) return core.load(dir or U.default_model, opts) end

-- The load options of parsed command-line options (--weights, --compute, --mmap), checked
-- together: BF16 compute does not combine with Q8_0 weights (a usage error, exit 2).
function U.load_options(opt)
  if opt.compute == "bf16" and opt.weights == "q8_0" then
    options.error("compute", "exact with --weights q8_0 (Q8_0 has its own compute)", opt.compute)
  end
  return { weights = opt.weights, compute = opt.compute, mmap = opt.mmap }
end

---------------------------------------------------------------------------- options

-- sl.options(arg, declared): options declared with their defaults and rules (slua.options).
U.options = options.parse
U.option_error = options.error  -- sl.option_error(name, rule, got): a usage error, exit 2
U.parse_ints = options.parse_ints
U.parse_ids = options.parse_ids
U.check_options = options.check_model  -- sl.check_options(opt, model): the checks that need the model
U.option_rules = options               -- model_check helpers: vocab_ids, layers(lo)

---------------------------------------------------------------------------- processors

U.processors = processors
U.chain = processors.chain
U.check_scores = processors.check_scores

return U
