-- slua.serve.request: the fields of an OpenAI completions / chat request, checked, and turned
-- into what a generation needs: the prompts as ids, the recipe and its flags, the stop strings,
-- the log-probability request. Every problem is a request error (slua.serve.errors) naming the
-- field, so the client gets a 400 whose message is the CLI's where the CLI has one.
local util = require "slua.util"
local options = require "slua.options"
local recipe_of = require "slua.recipe"
local chat = require "slua.chat"
local errors = require "slua.serve.errors"
local dola = require "slua.decoders.dola"

local R = {}
local null = util.json.null
local bad = errors.bad

local function isnull(v) return v == nil or v == null end

local function integer(body, key, lo, hi)
  local v = body[key]
  if isnull(v) then return nil end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v) and math.abs(v) < 2^53) then
    bad(("'%s' must be an integer"):format(key), key)
  end
  v = math.tointeger(v)
  if (lo and v < lo) or (hi and v > hi) then bad(("'%s' must be in [%s, %s] (got %d)"):format(key, lo, hi, v), key) end
  return v
end

local function number(body, key, lo, hi, open_lo)
  local v = body[key]
  if isnull(v) then return nil end
  if type(v) ~= "number" or v ~= v then bad(("'%s' must be a number"):format(key), key) end
  if (lo and (v < lo or (open_lo and v == lo))) or (hi and v > hi) then
    bad(("'%s' must be in %s%s, %s] (got %s)"):format(key, open_lo and "(" or "[", lo, hi, util.json.encode(v)), key)
  end
  return v
end

local function boolean(body, key)
  local v = body[key]
  if isnull(v) then return nil end
  if type(v) ~= "boolean" then bad(("'%s' must be true or false"):format(key), key) end
  return v
end

-- stop: a string or up to 16 strings.
local function stops(body)
  local v = body.stop
  if isnull(v) then return {} end
  if type(v) == "string" then return v ~= "" and { v } or {} end
  if type(v) ~= "table" or #v > 16 then bad("'stop' must be a string or a list of at most 16 strings", "stop") end
  local list = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then bad(("'stop[%d]' must be a string"):format(i - 1), "stop") end
    if s ~= "" then list[#list + 1] = s end
  end
  return list
end

local function id_list(v, model, where)
  if #v == 0 then bad(("'%s' is empty"):format(where), "prompt") end
  for i, id in ipairs(v) do
    if math.type(id) ~= "integer" or id < 0 or id >= model.n_vocab then
      bad(("'%s[%d]' is not a token id in [0, %d)"):format(where, i - 1, model.n_vocab), "prompt")
    end
  end
  return v
end

-- The prompts of /v1/completions: {ids, text (string prompts), n_prompt}.
function R.prompts(body, model, add_special)
  local p = body.prompt
  local tok = model.tokenizer
  local function text_prompt(s, where)
    if s == "" then bad(("'%s' is empty"):format(where), "prompt") end
    if not tok then bad("this model has no tokenizer: send token ids", "prompt") end
    return { ids = tok:encode(s, { special = add_special }), text = s }
  end
  if type(p) == "string" then return { text_prompt(p, "prompt") } end
  if type(p) ~= "table" or #p == 0 then
    bad("'prompt' must be a string, a list of strings, a list of token ids or a list of such lists", "prompt")
  end
  if math.type(p[1]) == "integer" then return { { ids = id_list(p, model, "prompt") } } end
  if #p > 256 then errors.fail(413, ("at most 256 prompts per request (got %d)"):format(#p), "prompt", "request_too_large") end
  local list = {}
  for i, e in ipairs(p) do
    local where = ("prompt[%d]"):format(i - 1)
    if type(e) == "string" then list[i] = text_prompt(e, where)
    elseif type(e) == "table" then list[i] = { ids = id_list(e, model, where) }
    else bad(("'%s' must be a string or a list of token ids"):format(where), "prompt") end
  end
  return list
end

-- The prompt of /v1/chat/completions, rendered with the chat template: {ids, text}.
function R.chat_prompt(body, model, template)
  local msgs = body.messages
  if type(msgs) ~= "table" or #msgs == 0 then bad("'messages' must be a non-empty list", "messages") end
  local list = {}
  for i, m in ipairs(msgs) do
    local where = ("messages[%d]"):format(i - 1)
    if type(m) ~= "table" or type(m.role) ~= "string" then bad(("'%s' needs a 'role'"):format(where), where) end
    local content = m.content
    if type(content) == "table" then -- [{type = "text", text = ...}]
      local parts = {}
      for k, part in ipairs(content) do
        if type(part) ~= "table" or part.type ~= "text" or type(part.text) ~= "string" then
          bad(("'%s.content[%d]': only text parts are supported"):format(where, k - 1), where .. ".content")
        end
        parts[#parts + 1] = part.text
      end
      content = table.concat(parts)
    elseif not isnull(content) and type(content) ~= "string" then
      bad(("'%s.content' must be a string or a list of text parts"):format(where), where .. ".content")
    end
    list[i] = { role = m.role == "developer" and "system" or m.role, content = not isnull(content) and content or "" }
  end
  local text, ids = chat.apply(model, list, { add_generation_prompt = body.add_generation_prompt ~= false,
                                               template = template })
  if not text then
    local msg = tostring(ids)
    if msg:find("no chat template", 1, true) then bad(msg, "messages", "no_chat_template") end
    bad("chat template: " .. msg, "messages")
  end
  return { ids = ids, text = text }
end

-- The decoder of a request: the slua extension ({recipe, options, logprobs_from}) found at the
-- top level, in a literal extra_body, or as flat aliases.
local function extension(body)
  local ext, inner = body.slua, type(body.extra_body) == "table" and body.extra_body.slua or nil
  if not isnull(ext) and not isnull(inner) then bad("give 'slua' once, not also in 'extra_body'", "slua") end
  ext = not isnull(ext) and ext or inner
  if isnull(ext) then ext = {} end
  if type(ext) ~= "table" then bad("'slua' must be an object", "slua") end
  if isnull(ext.recipe) and type(body.recipe) == "string" then ext.recipe = body.recipe end
  if isnull(ext.options) and type(body.recipe_options) == "table" then ext.options = body.recipe_options end
  return ext
end

-- Standard fields and the recipe option each one sets.
local STANDARD = { temperature = "temperature", top_p = "top_p", top_k = "top_k", min_p = "min_p",
                   repetition_penalty = "repetition_penalty" }
-- The value at which a standard field changes nothing (a recipe without the option accepts it).
local NEUTRAL = { top_p = 1, top_k = 0, min_p = 0, repetition_penalty = 1 }

-- The generation settings of a request: recipe (a value), flags (its options, checked),
-- max_tokens, stops, n, seed, logprobs. `kind` is "completions" or "chat".
function R.decoder(body, cfg, kind, context, prompt_len)
  local ext = extension(body)
  local name = isnull(ext.recipe) and nil or ext.recipe
  if name ~= nil and (type(name) ~= "string" or not name:match("^[%w_%-]+$")) then
    bad("'slua.recipe' must be a recipe name", "slua.recipe")
  end
  local temperature = number(body, "temperature", 0, 2)
  local fields = {
    temperature = temperature, top_p = number(body, "top_p", 0, 1, true), top_k = integer(body, "top_k", -1),
    min_p = number(body, "min_p", 0, 1), repetition_penalty = number(body, "repetition_penalty", 0, nil, true),
  }
  if fields.top_k == -1 then fields.top_k = 0 end
  for _, key in ipairs{ "presence_penalty", "frequency_penalty" } do
    local v = number(body, key, -2, 2)
    if v and v ~= 0 then bad(("'%s' is not supported"):format(key), key, "unsupported_parameter") end
  end
  if not isnull(body.logit_bias) and next(body.logit_bias) then bad("'logit_bias' is not supported", "logit_bias", "unsupported_parameter") end
  if not isnull(body.suffix) then bad("'suffix' is not supported", "suffix", "unsupported_parameter") end
  if type(body.response_format) == "table" and body.response_format.type ~= "text" then
    bad("only response_format {\"type\": \"text\"} is supported", "response_format", "unsupported_parameter")
  end
  if type(body.tools) == "table" and #body.tools > 0 then bad("tools are not supported", "tools", "unsupported_parameter") end
  if not name then -- the server's default; greedy's sampling twin when the request samples (OpenAI's default)
    name = cfg.default_recipe
    if name == "greedy" and temperature ~= 0 then name = "sample" end
  end
  if cfg.recipes and not cfg.recipes[name] then bad(("recipe '%s' is not served"):format(name), "slua.recipe") end
  local ok, recipe = pcall(recipe_of.load, name)
  if not ok then bad(("unknown recipe '%s'"):format(name), "slua.recipe") end
  if recipe.spec.input then bad(("recipe '%s' does not generate"):format(name), "slua.recipe") end
  local declared = recipe:declared()
  local flags = {}
  if name == cfg.default_recipe then -- the server's defaults for it, under the request's own
    for k, v in pairs(cfg.recipe_defaults or {}) do flags[k] = v end
  end
  for k, v in pairs(type(ext.options) == "table" and ext.options or {}) do
    if type(k) ~= "string" then bad("'slua.options' must be an object", "slua.options") end
    flags[k] = v
  end
  for field, option in pairs(STANDARD) do
    local v = fields[field]
    if v ~= nil then
      if flags[option] ~= nil and flags[option] ~= v then
        bad(("'%s' and 'slua.options.%s' differ"):format(field, option), field)
      end
      if declared[option] then
        flags[option] = v
      elseif not (NEUTRAL[field] == v or (field == "temperature" and v == 0)) then
        bad(("recipe '%s' has no option %s"):format(name, option), field, "unsupported_parameter")
      end
    end
  end
  if declared.do_sample and flags.do_sample == nil and flags.temperature ~= nil then
    flags.do_sample = flags.temperature > 0
    if flags.temperature == 0 then flags.temperature = nil end
  end
  local max_tokens = integer(body, "max_tokens", 0)
  local mct = integer(body, "max_completion_tokens", 0)
  if max_tokens and mct and max_tokens ~= mct then
    bad("'max_tokens' and 'max_completion_tokens' differ", "max_completion_tokens")
  end
  max_tokens = max_tokens or mct or (kind == "chat" and context - prompt_len or 16)
  if prompt_len > context then
    bad(("the prompt has %d tokens; the context is %d"):format(prompt_len, context), "prompt", "context_length_exceeded")
  end
  if prompt_len + max_tokens > context then
    if cfg.strict_context then
      bad(("%d prompt tokens + max_tokens %d exceed the context of %d"):format(prompt_len, max_tokens, context),
        "max_tokens", "context_length_exceeded")
    end
    max_tokens = context - prompt_len
  end
  flags.max_new_tokens = max_tokens
  flags.format = "json"
  flags.prompt_ids = "0" -- a placeholder for the check; each choice sets its prompt
  local okf, err = pcall(recipe.options, recipe, flags)
  if not okf then
    local msg = type(err) == "table" and err.message or tostring(err)
    local key = msg:match("option %-%-([%w%-]+)")
    local option = key and key:gsub("%-", "_")
    local param = option and (fields[option] ~= nil and option or "slua.options." .. option) or "slua.options"
    bad(msg, param, "invalid_recipe_option")
  end
  local n = integer(body, "n", 1, 16) or 1
  local best_of = integer(body, "best_of", 1, 16)
  if best_of and best_of ~= n then bad("'best_of' must equal 'n'", "best_of", "unsupported_parameter") end
  local logprobs_from = isnull(ext.logprobs_from) and "model" or ext.logprobs_from
  if logprobs_from ~= "model" and logprobs_from ~= "recipe" then
    bad("'slua.logprobs_from' must be \"model\" or \"recipe\"", "slua.logprobs_from")
  end
  return { recipe = recipe, name = name, flags = flags, max_tokens = max_tokens, stops = stops(body), n = n,
           seed = integer(body, "seed"), logprobs_from = logprobs_from,
           scoring = logprobs_from == "recipe" and R.scoring(name, flags, ext, cfg.model) or nil }
end

-- lm_score's options for "logprobs_from": "recipe": the teacher-forced scores of the recipe's
-- method, as `slua eval` computes them (DoLa static with one candidate layer, dynamic with
-- several; the recipe's relative_top; `slua.score` may set relative_top_value and
-- post_softmax, default the official -1000 and true). Recipes that score with the model's own
-- distribution (greedy, sample) take the baseline.
local MODEL_SCORED = { greedy = true, sample = true, repetition_penalty = true, llama_samplers = true }

function R.scoring(name, flags, ext, model)
  local extra = type(ext.score) == "table" and ext.score or {}
  for k in pairs(extra) do
    if k ~= "relative_top_value" and k ~= "post_softmax" then
      bad(("'slua.score.%s' is not a scoring option (relative_top_value, post_softmax)"):format(tostring(k)), "slua.score")
    end
  end
  if MODEL_SCORED[name] then return { mode = "baseline" } end
  if name ~= "dola" then
    bad(("recipe '%s' has no teacher-forced scoring (dola has; greedy and sample score with the model)"):format(name),
      "slua.logprobs_from", "unsupported_parameter")
  end
  local ok, layers = pcall(dola.layers, flags.dola_layers or "high", model)
  if not ok then bad(tostring(layers), "slua.options.dola_layers", "invalid_recipe_option") end
  local mature = (flags.mature_layer or -1) >= 0 and flags.mature_layer or model.n_layer
  local s = { premature = layers, mature_layer = mature, relative_top = flags.relative_top or 0.1,
              relative_top_value = extra.relative_top_value, post_softmax = extra.post_softmax }
  s.mode = #layers == 1 and "dola-static" or "dola"
  if s.relative_top_value ~= nil and type(s.relative_top_value) ~= "number" then
    bad("'slua.score.relative_top_value' must be a number", "slua.score.relative_top_value")
  end
  if s.post_softmax ~= nil and type(s.post_softmax) ~= "boolean" then
    bad("'slua.score.post_softmax' must be true or false", "slua.score.post_softmax")
  end
  return s
end

-- The log-probability request: completions' legacy `logprobs: k` and `echo`, or chat's
-- `logprobs: true` with `top_logprobs: k`. Returns {k, echo} or nil.
function R.logprobs(body, kind, cap)
  if kind == "chat" then
    local on, k = boolean(body, "logprobs"), integer(body, "top_logprobs", 0, cap)
    if k and not on then bad("'top_logprobs' needs 'logprobs': true", "top_logprobs") end
    return on and { k = k or 0 } or nil
  end
  local k = integer(body, "logprobs", 0, cap)
  local echo = boolean(body, "echo") or false
  return k and { k = k, echo = echo } or nil, echo
end

R.boolean = boolean
R.integer = integer
R.options = options

return R
