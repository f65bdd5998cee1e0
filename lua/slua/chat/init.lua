-- slua.chat: chat templates as transformers applies them.
--
--   local chat = require "slua.chat"
--   local text, err = chat.render(template, context, {now = "2025-07-10T12:00:00Z"})
--   local text, ids = model:apply_chat_template(messages, {add_generation_prompt = true})
--
-- context is a JSON text of the template variables (key order kept: it shows in tojson and
-- items) or a Lua table (arrays become lists, other tables dicts with sorted keys; sl.json.null
-- is None). On failure render returns nil, message, kind: kind "raise" when the template called
-- raise_exception (message verbatim), "template" for syntax and runtime errors (the message
-- names line and column), "context" for a bad context. opts.max_steps bounds the statements and
-- loop iterations a render may take (default 10 million).
local util = require "slua.util"
local jinja = require "slua.jinja"
local V = jinja.value

local chat = {}

local compiled = setmetatable({}, { __mode = "v" })

local function compile(template)
  local tpl = compiled[template]
  if tpl then return tpl end
  local err, kind
  tpl, err, kind = jinja.compile(template)
  if not tpl then return nil, err, kind end
  compiled[template] = tpl
  return tpl
end
chat.compile = compile

-- "2025-07-10T12:00:00Z" (or with an offset, or a date alone) -> epoch seconds.
function chat.parse_time(iso)
  if type(iso) == "number" then return iso end
  local y, mo, d, rest = tostring(iso):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, s, tz = rest:match("^[T ](%d%d):(%d%d):?(%d*)%.?%d*(.*)$")
  h, mi, s = tonumber(h) or 0, tonumber(mi) or 0, tonumber(s) or 0
  local offset = 0
  if tz and tz ~= "" and tz ~= "Z" then
    local sign, oh, om = tz:match("^([-+])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  -- days from civil (proleptic Gregorian)
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + h * 3600 + mi * 60 + s - offset
end

-- Context (JSON text or Lua table) -> name -> template value.
function chat.context(context)
  local null = (package.loaded["slua.core"] or {}).null
  local root
  if type(context) == "string" then
    local err
    root, err = V.from_json(context)
    if root == nil then return nil, "context: " .. err end
  elseif type(context) == "table" then
    root = V.from_lua(context, null)
  elseif context == nil then
    root = V.dict()
  else
    return nil, "context must be a JSON text or a table"
  end
  if getmetatable(root) == V.List and root.n == 0 then root = V.dict() end
  if getmetatable(root) ~= V.Dict then return nil, "context: not a JSON object" end
  local vars = {}
  for _, k in ipairs(root.keys) do vars[k] = root.vals[k] end
  return vars
end

function chat.render(template, context, opts)
  opts = opts or {}
  local tpl, err, kind = compile(template)
  if not tpl then return nil, err, kind end
  local vars, cerr = chat.context(context)
  if not vars then return nil, cerr, "context" end
  local now
  if opts.now ~= nil then
    now = chat.parse_time(opts.now)
    if not now then return nil, ("opts.now: '%s' is not an ISO-8601 time"):format(tostring(opts.now)), "context" end
  end
  return jinja.render(tpl, vars, { now = now, max_steps = opts.max_steps })
end

---------------------------------------------------------------------------- model directories

-- A whole file, or nil when there is none; a file that exists but cannot be read as a regular
-- file (a FIFO, a directory) is an error: nil, message.
local function read_file(path)
  local fs = (package.loaded["slua.core"] or {}).fs
  if fs and fs.read then
    local text, err = fs.read(path)
    if text then return text end
    if err and err:find(": not a regular file", 1, true) then return nil, err end
    return nil
  end
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
chat.read_file = read_file

local function json_file(path)
  local text, err = read_file(path)
  if err then return nil, err end
  if not text then return nil end
  local v, err = V.from_json(text)
  if v == nil then return nil, ("%s: %s"):format(path, err) end
  return v
end

-- A special token: a string, or an AddedToken object {"content": ...}; nil when absent or null.
local function token_text(v)
  if type(v) == "string" then return v end
  if getmetatable(v) == V.Dict and type(v.vals.content) == "string" then return v.vals.content end
  return nil
end

local SPECIAL_KEYS = { "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token" }

-- What a model directory says about chatting: the chat templates (tokenizer_config.json's
-- chat_template, a string or a list of {name, template}; else chat_template.jinja or
-- chat_template.json), the special tokens (tokenizer_config.json, then special_tokens_map.json)
-- and add_bos_token. Returns {templates = {name -> text}, special = {name -> text}, add_bos_token}
-- or nil, message.
function chat.config(dir)
  local cfg = { templates = {}, special = {}, special_order = {} }
  local tc, err = json_file(dir .. "/tokenizer_config.json")
  if err then return nil, err end
  local stm, err2 = json_file(dir .. "/special_tokens_map.json")
  if err2 then return nil, err2 end
  local function templates_from(v, where)
    if type(v) == "string" then
      cfg.templates.default = v
    elseif getmetatable(v) == V.List then
      for i = 1, v.n do
        local e = v[i]
        local name = getmetatable(e) == V.Dict and e.vals.name
        local text = getmetatable(e) == V.Dict and e.vals.template
        if type(name) ~= "string" or type(text) ~= "string" then
          return nil, ("%s: chat_template[%d] must be {\"name\": ..., \"template\": ...}"):format(where, i)
        end
        cfg.templates[name] = text
      end
    elseif v ~= nil and v ~= V.none then
      return nil, ("%s: chat_template must be a string or a list of named templates"):format(where)
    end
    return true
  end
  if tc then
    local ok, terr = templates_from(tc.vals.chat_template, dir .. "/tokenizer_config.json")
    if not ok then return nil, terr end
    if type(tc.vals.add_bos_token) == "boolean" then cfg.add_bos_token = tc.vals.add_bos_token end
  end
  if next(cfg.templates) == nil then
    local jinja_text, jerr = read_file(dir .. "/chat_template.jinja")
    if jerr then return nil, jerr end
    if jinja_text then
      cfg.templates.default = jinja_text
    else
      local ct, cerr = json_file(dir .. "/chat_template.json")
      if cerr then return nil, cerr end
      if ct then
        local ok, terr = templates_from(ct.vals.chat_template, dir .. "/chat_template.json")
        if not ok then return nil, terr end
      end
    end
  end
  for _, src in ipairs({ tc, stm }) do
    for _, key in ipairs(SPECIAL_KEYS) do
      local text = src and token_text(src.vals[key])
      if text and cfg.special[key] == nil then
        cfg.special[key] = text
        cfg.special_order[#cfg.special_order + 1] = key
      end
    end
    local extra = src and src.vals.additional_special_tokens
    if getmetatable(extra) == V.List and cfg.special.additional_special_tokens == nil then
      local l = V.list()
      for i = 1, extra.n do l.n = l.n + 1; l[l.n] = token_text(extra[i]) or "" end
      cfg.special.additional_special_tokens = l
      cfg.special_order[#cfg.special_order + 1] = "additional_special_tokens"
    end
  end
  return cfg
end

-- Bundled templates for checkpoints that ship none (models/chat_templates/NAME.jinja).
function chat.bundled_template(name)
  local root = util.root
  if not name:match("^[%w_%.%-]+$") then return nil end
  return read_file(("%s/models/chat_templates/%s.jinja"):format(root, name))
end

-- transformers' choice of template: `which` (a name in the config, a file, or a bundled
-- template), else "tool_use" when tools are given and the config has one, else "default".
function chat.select_template(cfg, which, has_tools)
  if which and which ~= "" then
    if cfg.templates[which] then return cfg.templates[which] end
    local text = read_file(which) or chat.bundled_template(which)
    if text then return text end
    return nil, ("'%s' is not a template of the model, a readable file or a bundled template"):format(which)
  end
  if has_tools and cfg.templates.tool_use then return cfg.templates.tool_use end
  if cfg.templates.default then return cfg.templates.default end
  local names = {}
  for k in pairs(cfg.templates) do names[#names + 1] = k end
  table.sort(names)
  if #names > 0 then
    return nil, ("the model has chat templates %s but none is 'default': choose one with --chat-template"):format(
      table.concat(names, ", "))
  end
  return nil, "the model has no chat template (tokenizer_config.json has no chat_template): give one with --chat-template FILE|NAME"
end

local function as_value(x)
  if x == nil then return V.none end
  return V.from_lua(x, (package.loaded["slua.core"] or {}).null)
end

-- The variables transformers passes, in its order: messages, tools, documents,
-- add_generation_prompt, the special tokens, then extra variables (opts.vars).
function chat.variables(cfg, messages, opts)
  local ctx = V.dict()
  V.dict_set(ctx, "messages", as_value(messages))
  V.dict_set(ctx, "tools", as_value(opts.tools))
  V.dict_set(ctx, "documents", as_value(opts.documents))
  V.dict_set(ctx, "add_generation_prompt", opts.add_generation_prompt and true or false)
  for _, key in ipairs(cfg.special_order) do V.dict_set(ctx, key, cfg.special[key]) end
  local extra = as_value(opts.vars)
  if getmetatable(extra) == V.Dict then
    for _, k in ipairs(extra.keys) do V.dict_set(ctx, k, extra.vals[k]) end
  end
  local vars = {}
  for _, k in ipairs(ctx.keys) do vars[k] = ctx.vals[k] end
  return vars
end

-- model:apply_chat_template(messages, opts) -> text, ids | nil, message
-- messages: a Lua array of {role =, content =} (or template values); opts: add_generation_prompt,
-- tools, documents, template (a name, file or template text with "{"), vars (extra variables),
-- now (ISO-8601 time for strftime_now). The ids are the text's encoding with special-token
-- text recognised and nothing added (transformers encodes with add_special_tokens=False), so a
-- template that writes bos_token yields exactly one BOS.
function chat.apply(model, messages, opts)
  opts = opts or {}
  local cfg, err = chat.config(model.path)
  if not cfg then return nil, err end
  local template = opts.template
  local has_tools = opts.tools ~= nil and opts.tools ~= V.none
  if not (template and template:find("{", 1, true)) then
    template, err = chat.select_template(cfg, template, has_tools)
    if not template then return nil, err end
  end
  local tpl, cerr = compile(template)
  if not tpl then return nil, "chat template: " .. cerr end
  local now
  if opts.now then now = chat.parse_time(opts.now) end
  local text, rerr, kind = jinja.render(tpl, chat.variables(cfg, messages, opts), { now = now })
  if not text then return nil, rerr, kind end
  local tok = model.tokenizer
  if not tok then return text, nil end
  return text, tok:encode(text, { special = false })
end

return chat
