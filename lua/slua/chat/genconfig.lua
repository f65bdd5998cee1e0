-- slua.chat.genconfig: generation_config.json defaults, applied as transformers applies them.
--
-- HF's generate() starts from the model's generation_config.json and lets call arguments override
-- it. Here the file's values become the defaults of the recipe's own options before the command
-- line is parsed, so flags override them and `--format json` lists the values in `options`. Only
-- options the recipe has are touched (greedy has no temperature). eos_token_id (an id or a list)
-- is read by the model loader itself (generation stops at any of the ids); recipes with an
-- --eos-token-id option list the file's ids as its default.
local core = require "slua.core"
local chat = require "slua.chat"
local M = {}

-- generation_config.json key -> option name
M.KEYS = {
  do_sample = "do_sample", temperature = "temperature", top_p = "top_p", top_k = "top_k",
  min_p = "min_p", repetition_penalty = "repetition_penalty", max_new_tokens = "max_new_tokens",
  no_repeat_ngram_size = "no_repeat_ngram_size",
}

-- The --model value in argv ("--model DIR" or "--model=DIR"), else nil.
function M.model_arg(argv)
  for i = 1, #argv do
    local v = argv[i]:match("^%-%-model=(.*)$")
    if v then return v end
    if argv[i] == "--model" then return argv[i + 1] end
  end
  return nil
end

-- Reads DIR/generation_config.json. Returns the decoded table (or {} when there is none), or
-- nil, message for a file that is not a JSON object.
function M.read(dir)
  local text, rerr = chat.read_file(dir .. "/generation_config.json")
  if rerr then return nil, rerr end
  if not text then return {} end
  local t, err = core.json_decode(text)
  if type(t) ~= "table" then
    return nil, ("%s/generation_config.json: %s"):format(dir, err or "not a JSON object")
  end
  return t
end

-- Overwrites defaults[option] with the file's values (type-checked against the defaults) and
-- returns the list of applied options; nil, message on a malformed file.
function M.apply(dir, defaults)
  local gc, err = M.read(dir)
  if not gc then return nil, err end
  local applied = {}
  for key, option in pairs(M.KEYS) do
    local v, entry = gc[key], defaults[option]
    -- a declared option is a default value or a spec table {default = ...} (slua.options)
    local d = type(entry) == "table" and entry.default or entry
    if v ~= nil and d ~= nil and v ~= core.null then
      if type(v) ~= type(d) or (math.type(d) == "integer" and math.type(v) ~= "integer") then
        return nil, ("%s/generation_config.json: '%s' must be %s (got %s)"):format(dir, key,
          math.type(d) == "integer" and "an integer" or type(d), tostring(v))
      end
      if type(entry) == "table" then
        local copy = {}
        for k, x in pairs(entry) do copy[k] = x end
        copy.default = v
        defaults[option] = copy
      else
        defaults[option] = v
      end
      applied[#applied + 1] = option
    end
  end
  -- eos_token_id: recipes that take --eos-token-id get the file's ids as its default
  local eos = gc.eos_token_id
  if math.type(eos) == "integer" then eos = { eos } end
  local entry = defaults.eos_token_id
  local d = type(entry) == "table" and entry.default or entry
  if type(eos) == "table" and #eos > 0 and d == "" then
    local text = table.concat(eos, ",")
    if type(entry) == "table" then
      local copy = {}
      for k, x in pairs(entry) do copy[k] = x end
      copy.default = text
      defaults.eos_token_id = copy
    else
      defaults.eos_token_id = text
    end
    applied[#applied + 1] = "eos_token_id"
  end
  table.sort(applied)
  return applied
end

return M
