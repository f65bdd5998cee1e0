-- slua.options: command-line options declared once, with their type, allowed values and help,
-- parsed and checked in one place.
--
--   local opt = sl.options(arg, {
--     alpha = 0.1,                                   -- a plain default: type from the value
--     window = { default = 0, min = 0, help = "look at the last N tokens only (0 = all)" },
--     mode = { default = "exp", choices = { "exp", "linear" } },
--   })
--
-- A spec may give: default, type ("number" | "integer" | "string" | "boolean" | "ids", else
-- taken from the default), min / max (inclusive), gt / lt (exclusive), choices, check =
-- function(value, opt) returning a rule the value breaks ("> 0 when sampling") or nil, rule
-- (the words --help shows for a check, after the range),
-- model_check = function(value, model, opt) the same once the model is loaded (layers, token
-- ids; the generation loop runs these, other scripts call sl.check_options(opt, model)), and
-- help. An older name of an option is declared as { alias = "new_name", translate =
-- function(text) -> the value in the new option's form | nil, rule, help }: its flag sets the
-- new option, and the parsed options hold only the new name. Options named like a well-known one (temperature, top_p, threads, ...) take its rule
-- from `known` below unless the spec says otherwise, so recipes get HF's rules for free.
-- Every broken rule is a usage error: `slua: option --top-p must be in [0, 1] (got 2)`, exit 2.
local core = require "slua.core"

local O = {}

---------------------------------------------------------------------------- failures

local Failure = { __tostring = function(e) return e.message end }

-- A clean failure: the host prints "slua: <message>" without a traceback and exits with `code`
-- (1 unless given; 2 for usage errors).
function O.fail(message, code)
  error(setmetatable({ message = message, code = code }, Failure), 0)
end

local function flag(name) return "--" .. name:gsub("_", "-") end

local function shown(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if math.type(v) == "float" then return ("%.14g"):format(v) end
  return tostring(v)
end

-- A usage error about one option: "option --NAME must be RULE (got VALUE)".
function O.error(name, rule, got)
  O.fail(("option %s must be %s (got %s)"):format(flag(name), rule, shown(got)), 2)
end

---------------------------------------------------------------------------- well-known options

local function when_sampling(v, opt)
  if opt.do_sample ~= false and not (v > 0) then return "> 0 when sampling" end
end

-- HF's cross-option rules of beam search (GenerationConfig.validate, BeamSearchScorer).
local function multiple_of_groups(v, opt)
  local g = opt.num_beam_groups
  if g and g >= 1 and v % g ~= 0 then return ("a multiple of --num-beam-groups (%d)"):format(g) end
end

local function diverse(v, opt)
  if (opt.num_beam_groups or 1) > 1 and not (v > 0) then return "> 0 when --num-beam-groups > 1" end
end

local function at_most_beams(v, opt)
  if opt.num_beams and v > opt.num_beams then return ("<= --num-beams (%d)"):format(opt.num_beams) end
end

-- Rules follow HF transformers where it has them (generation/logits_process.py,
-- configuration_utils.py); 0 turns top_k off, as it does in HF's GenerationConfig.
O.known = {
  model = { type = "string", help = "model directory (\"\" = the bundled stories260K)" },
  prompt = { type = "string", help = "prompt text (the tokenizer adds BOS as it is configured to)" },
  prompt_ids = { type = "ids", help = "comma-separated prompt token ids, used as they are" },
  truncate_prompt = { type = "boolean", help = "keep the end of a prompt that does not fit the context" },
  max_new_tokens = { type = "integer", min = 0, help = "tokens to generate at most" },
  n_ctx = { type = "integer", min = 0, help = "context length (0 = max_position_embeddings; RoPE runs past it)" },
  seed = { type = "integer", min = 0, help = "seed of the sampling generator" },
  logprobs = { type = "integer", min = 0, max = 1000,
               help = "JSON steps: the top K raw log-probabilities (log_softmax of the final logits before any processor) beside each step's `logprob`" },
  intervene = { type = "string",
                help = "activation interventions: a JSON file (or inline JSON) listing ops at TransformerLens hook points (docs/spec/interventions.md)" },
  kv_type = { choices = { "f32", "f16" },
              help = "KV cache storage: f32 (HF float32) or f16 (half the cache reads at long contexts; lossy: logits move by up to ~0.04, tokens may differ at near ties)" },
  threads = { type = "integer", min = 0, max = core.max_threads,
              help = ("CPU threads, at most %d (0 = all CPUs)"):format(core.max_threads) },
  weights = { choices = { "stored", "q8_0" },
              help = "stored keeps the checkpoint's F32/BF16/F16; q8_0 converts the matrices at load to 8-bit "
                     .. "blocks (llama.cpp Q8_0): faster decode, lossy, NOT HF-exact" },
  compute = { choices = { "exact", "bf16" },
              help = "exact: float32 products of the stored weights (HF float32); bf16: the inputs of the matrix "
                     .. "products rounded to BF16, with BF16 weights and float32 sums (vdpbf16ps where the CPU has "
                     .. "AVX512-BF16, emulated elsewhere): faster prefill, lossy, NOT HF-exact" },
  stats = { type = "boolean", help = "text mode: one line of timings (load, prefill, decode, tok/s) on stderr after the output" },
  mmap = { type = "boolean",
           help = "map the checkpoint instead of reading it into memory: processes share the page cache and "
                  .. "load lazily; decode may read it slower" },
  format = { choices = { "text", "json" }, help = "text streams the continuation; json prints one object" },
  stop = { type = "string", help = "stop strings, separated by |" },
  do_sample = { type = "boolean", help = "draw from softmax(scores) instead of argmax" },
  temperature = { type = "number", check = when_sampling, rule = "> 0 when sampling", help = "divide the scores by T before sampling" },
  top_k = { type = "integer", min = 0, help = "keep the k best tokens (0 = off)" },
  top_p = { type = "number", min = 0, max = 1, help = "keep the smallest set with probability >= p (1 = off)" },
  min_p = { type = "number", min = 0, max = 1, help = "keep tokens with p >= min_p * max p (0 = off)" },
  repetition_penalty = { type = "number", gt = 0, help = "CTRL penalty on tokens already seen (1 = off)" },
  no_repeat_ngram_size = { type = "integer", min = 0, help = "ban repeated n-grams of this size (0 = off)" },
  typical_p = { type = "number", gt = 0, max = 1, help = "keep the locally typical set of mass p (1 = off)" },
  epsilon_cutoff = { type = "number", min = 0, lt = 1, help = "drop tokens with p < epsilon (0 = off)" },
  eta_cutoff = { type = "number", min = 0, lt = 1,
                 help = "drop tokens with p < min(eta, sqrt(eta) * exp(-entropy)) (0 = off)" },
  eos_token_id = { type = "ids", help = "end-of-sequence ids, comma-separated, instead of the model's "
                   .. "(an id outside the vocabulary is never generated)" },
  num_beams = { type = "integer", min = 1, check = multiple_of_groups, rule = "a multiple of --num-beam-groups",
                help = "beams kept at each step" },
  num_beam_groups = { type = "integer", min = 1, help = "diverse beam search: groups of beams (1 = off)" },
  diversity_penalty = { type = "number", min = 0, check = diverse, rule = "> 0 when --num-beam-groups > 1",
                        help = "diverse beam search: penalty per use of a token by an earlier group this step" },
  num_return_sequences = { type = "integer", min = 1, check = at_most_beams, rule = "<= --num-beams",
                           help = "sequences returned, best first" },
  length_penalty = { type = "number", help = "a finished hypothesis scores sum(log p) / length ^ this" },
  early_stopping = { choices = { "false", "true", "never" }, help = "beam search ends with num_beams finished "
                     .. "hypotheses: false = once no beam can beat them, true = at once, never = canonical" },
  penalty_alpha = { type = "number", min = 0, max = 1, help = "contrastive search: weight of the degeneration penalty" },
}

---------------------------------------------------------------------------- specs

local function spec_of(name, entry)
  local spec = {}
  for k, v in pairs(O.known[name] or {}) do spec[k] = v end
  if type(entry) == "table" then
    for k, v in pairs(entry) do spec[k] = v end
  else
    spec.default = entry
  end
  if spec.alias then spec.type = "string" end
  if not spec.type then
    local t = type(spec.default)
    spec.type = t == "number" and (math.type(spec.default) == "integer" and "integer" or "number") or t
    if spec.choices then spec.type = "string" end
  end
  return spec
end

-- The range or choices a value must be in, as words ("in [0, 1]", "> 0", "one of text, json").
local function range_text(spec)
  if spec.choices then
    local names = {}
    for i, c in ipairs(spec.choices) do names[i] = c == "" and '""' or c end
    return "one of " .. table.concat(names, ", ")
  end
  local lo = spec.min ~= nil and ("[" .. shown(spec.min)) or spec.gt ~= nil and ("(" .. shown(spec.gt)) or nil
  local hi = spec.max ~= nil and (shown(spec.max) .. "]") or spec.lt ~= nil and (shown(spec.lt) .. ")") or nil
  if lo and hi then return ("in %s, %s"):format(lo, hi) end
  if spec.min ~= nil then return ">= " .. shown(spec.min) end
  if spec.gt ~= nil then return "> " .. shown(spec.gt) end
  if spec.max ~= nil then return "<= " .. shown(spec.max) end
  if spec.lt ~= nil then return "< " .. shown(spec.lt) end
end

-- Every rule of a value, as --help shows it: its range, then what its check asks ("in [0, 1]",
-- ">= 1; a multiple of --num-beam-groups").
local function rule_text(spec)
  local range = range_text(spec)
  if range and spec.rule then return range .. "; " .. spec.rule end
  return range or spec.rule
end

-- Integers are plain decimal (no 0x10, no 1e2): what a user types is what the option holds.
local function parse_integer(name, text)
  if math.type(text) == "integer" then return text end
  if math.type(text) == "float" then
    return math.tointeger(text) or O.fail(("option %s expects an integer (got %s)"):format(flag(name), shown(text)), 2)
  end
  local v = type(text) == "string" and text:match("^%s*([+-]?%d+)%s*$") and math.tointeger(tonumber(text))
  if not v then O.fail(("option %s expects an integer (got %s)"):format(flag(name), shown(text)), 2) end
  return v
end

local function parse_number(name, text)
  local v = tonumber(text)
  if type(text) == "string" and text:match("^%s*0[xX]") then v = nil end
  if not v then O.fail(("option %s expects a number (got %s)"):format(flag(name), shown(text)), 2) end
  if v ~= v or v == math.huge or v == -math.huge then
    O.fail(("option %s expects a finite number (got %s)"):format(flag(name), shown(text)), 2)
  end
  return v + 0.0
end

-- The decimal integers of a comma-separated list (entries match `pattern`), or nil.
local function int_list(text, pattern)
  local out = {}
  for part in (text .. ","):gmatch("([^,]*),") do
    local v = part:match(pattern) and math.tointeger(tonumber(part))
    if not v then return nil end
    out[#out + 1] = v
  end
  return out
end
O.int_list = int_list

-- "1,2,3" -> {1, 2, 3}; "" -> {}. Entries are non-negative decimal integers.
function O.parse_ids(text, name)
  if text == nil or text == "" then return {} end
  return int_list(tostring(text), "^%s*%d+%s*$") or O.fail(("option %s expects comma-separated "
    .. "non-negative integers such as 1,2,3 (got %s)"):format(flag(name or "?"), shown(tostring(text))), 2)
end

-- "2,-1" -> {2, -1}: decimal integers of either sign, for lists the caller checks further.
function O.parse_ints(text, name)
  if text == nil or text == "" then return {} end
  return int_list(tostring(text), "^%s*[+-]?%d+%s*$") or O.fail(("option %s expects comma-separated "
    .. "integers such as 1,2,3 (got %s)"):format(flag(name or "?"), shown(tostring(text))), 2)
end

-- A raw value (command-line text, or a JSON value from --config) as the spec's type.
local function coerce(name, spec, value)
  local t = spec.type
  if t == "integer" then return parse_integer(name, value) end
  if t == "number" then return parse_number(name, value) end
  if t == "boolean" then
    if value == true or value == "true" or value == "1" or value == "yes" then return true end
    if value == false or value == "false" or value == "0" or value == "no" then return false end
    O.fail(("option %s expects true or false (got %s)"):format(flag(name), shown(value)), 2)
  end
  if type(value) == "boolean" and spec.choices then value = tostring(value) end -- JSON's true for "true"
  if type(value) ~= "string" and type(value) ~= "number" then
    O.fail(("option %s expects a string (got a %s)"):format(flag(name), type(value)), 2)
  end
  value = tostring(value)
  if t == "ids" then O.parse_ids(value, name) end
  return value
end

local function validate(name, spec, value, opt)
  if spec.choices then
    for _, c in ipairs(spec.choices) do
      if value == c then return end
    end
    O.error(name, range_text(spec), value)
  end
  if type(value) == "number" then
    local ok = (spec.min == nil or value >= spec.min) and (spec.max == nil or value <= spec.max)
      and (spec.gt == nil or value > spec.gt) and (spec.lt == nil or value < spec.lt)
    if not ok then O.error(name, range_text(spec), value) end
  end
  if spec.check then
    local broken = spec.check(value, opt)
    if broken then O.error(name, broken, value) end
  end
end

---------------------------------------------------------------------------- help

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

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function default_text(spec)
  local d = spec.default
  if d == "" or d == nil then return '""' end
  return math.type(d) == "float" and shown(d) or (tostring(d):gsub("\n", "\\n"))
end

-- The help of a script: its header comment, then every option it reads with its default, the
-- rule its values follow and what it does.
function O.help(script, specs)
  local out = { header_comment(script), "", "Options (default; allowed values):" }
  for _, k in ipairs(sorted_keys(specs)) do
    local spec = specs[k]
    local rule = rule_text(spec)
    local text = table.concat({ spec.help or "", rule and ("[" .. rule .. "]") or "" }, spec.help and rule and " " or "")
    out[#out + 1] = ("  %-24s %-18s %s"):format(flag(k), default_text(spec), text)
  end
  out[#out + 1] = ("  %-24s %-18s %s"):format("--config FILE.json", "", "read options from a JSON object first "
    .. "(keys as the flags, \"top_p\" or \"top-p\"); flags on the command line override it")
  out[#out + 1] = ("  %-24s %-18s %s"):format("--help", "", "this text")
  return table.concat(out, "\n") .. "\n"
end

-- The help of a script from its declared options (plain defaults or specs, as O.parse takes).
function O.help_of(script, declared)
  local specs = {}
  for k, entry in pairs(declared) do specs[k] = spec_of(k, entry) end
  return O.help(script, specs)
end

---------------------------------------------------------------------------- parsing

-- sl.options(argv, declared) -> table of options.
-- Flags are --key value, --key=value, or a bare --key for booleans (--no-key for false);
-- dashes and underscores are the same. --config FILE.json merges a JSON object first (flags
-- after it override it); --help prints the script's header and its options, then exits.
function O.parse(argv, declared)
  local specs, opt, aliases, all = {}, {}, {}, {}
  for k, entry in pairs(declared) do
    local spec = spec_of(k, entry)
    all[k] = spec
    if spec.alias then aliases[k] = spec else specs[k], opt[k] = spec, spec.default end
  end
  -- An older name of an option: its value in the older form, translated into the option's.
  local function resolve(key, value)
    local a = aliases[key]
    if not a then return key, value end
    local translated, rule = a.translate(value)
    if not translated then O.error(key, rule, value) end
    return a.alias, translated
  end
  local function known(key)
    if not specs[key] then
      O.fail(("unknown option %s (see %s --help)"):format(flag(key), argv[0] or "the script"), 2)
    end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local key, value = a:match("^%-%-([%w_%-]+)=(.*)$")
    if not key then key = a:match("^%-%-([%w_%-]+)$") end
    if not key then O.fail(("unexpected argument '%s' (options are --key value)"):format(a), 2) end
    key = key:gsub("%-", "_")
    if key == "help" then
      io.write(O.help(argv[0], all))
      os.exit(0, true)
    elseif key == "config" then
      local file = value or argv[i + 1]
      if not value then i = i + 1 end
      local f = io.open(file or "", "r")
      if not f then O.fail(("option --config: cannot open '%s'"):format(file or ""), 2) end
      local conf, err = core.json_decode(f:read("a"))
      f:close()
      if type(conf) ~= "table" or (next(conf) ~= nil and rawlen(conf) > 0) then
        O.fail(("option --config: %s: %s"):format(file, err or "not a JSON object"), 2)
      end
      for k, v in pairs(conf) do
        k = tostring(k):gsub("%-", "_")
        if aliases[k] then k, v = resolve(k, tostring(v)) end
        known(k)
        opt[k] = coerce(k, specs[k], v)
      end
    else
      local negated = key:match("^no_(.+)$")
      if value == nil and negated and specs[negated] and specs[negated].type == "boolean" then
        opt[negated] = false
      else
        if aliases[key] then
          if value == nil then
            i = i + 1
            value = argv[i]
            if value == nil then O.fail(("option %s needs a value"):format(flag(key)), 2) end
          end
          key, value = resolve(key, value)
        end
        known(key)
        if value == nil then
          if specs[key].type == "boolean" and (argv[i + 1] == nil or argv[i + 1]:match("^%-%-")) then
            value = true
          else
            i = i + 1
            value = argv[i]
            if value == nil then O.fail(("option %s needs a value"):format(flag(key)), 2) end
          end
        end
        opt[key] = coerce(key, specs[key], value)
      end
    end
    i = i + 1
  end
  for _, k in ipairs(sorted_keys(specs)) do validate(k, specs[k], opt[k], opt) end
  O.specs[opt] = specs
  return opt
end

-- The specs each parsed option table was declared with (for the checks that need the model).
O.specs = setmetatable({}, { __mode = "k" })

-- Runs the model_check of every option of opt (parsed by O.parse) against a loaded model.
function O.check_model(opt, model)
  local specs = O.specs[opt] or {}
  for _, k in ipairs(sorted_keys(specs)) do
    local check = specs[k].model_check
    local broken = check and check(opt[k], model, opt)
    if broken then O.error(k, broken, opt[k]) end
  end
end

-- model_check helpers: a list of token ids below the vocabulary size, of layer numbers in
-- [lo, N] (HF hidden_states numbering) where N is the model's number of layers.
function O.vocab_ids(value, model)
  for _, id in ipairs(O.parse_ids(value)) do
    if id >= model.n_vocab then return ("token ids in [0, %d]"):format(model.n_vocab - 1) end
  end
end

function O.layers(lo)
  return function(value, model)
    for _, l in ipairs(type(value) == "number" and { value } or O.parse_ints(value)) do
      if l < lo or l > model.n_layer then return ("layers in [%d, %d]"):format(lo, model.n_layer) end
    end
  end
end

return O
