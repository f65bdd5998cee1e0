-- slua.chat.options: the chat flags every generation recipe shares, and generation_config.json
-- defaults.
--
--   --chat TEXT [--system TEXT]   one user turn (after an optional system turn) through the
--                                 model's chat template, with the generation prompt
--   --messages FILE.json          a conversation: a list of {role, content, ...} or an object
--                                 {messages, tools, documents, ...other template variables}
--                                 (--chat appends a user turn to it)
--   --chat-template FILE|NAME     a template of the model by name, a file, or a bundled one
--   --no-chat-template            the turns' contents joined by blank lines, encoded as --prompt
local chat = require "slua.chat"
local genconfig = require "slua.chat.genconfig"
local V = require("slua.jinja").value
local sl = require "slua.util"

local M = {}

M.common = {
  chat = { default = "", help = "a user turn, sent through the model's chat template" },
  system = { default = "", help = "a system turn before --chat (needs --chat or --messages)" },
  messages = { default = "", help = "a conversation file: [{role, content}, ...] or {messages, tools, ...}" },
  chat_template = { default = "", help = "a template of the model by name, a .jinja file, or a bundled one" },
  no_chat_template = { default = false, help = "send --chat / --messages as plain text instead" },
}

-- generation_config.json of the --model directory (or the bundled model) as defaults.
function M.apply_generation_config(argv, defaults)
  local dir = genconfig.model_arg(argv)
  if dir == nil or dir == "" then dir = sl.default_model end
  local applied, err = genconfig.apply(dir, defaults)
  if not applied then sl.fail(err) end
  return applied
end

function M.wants_chat(opt)
  return (opt.chat or "") ~= "" or (opt.messages or "") ~= ""
end

function M.check(opt)
  if (opt.system or "") ~= "" and not M.wants_chat(opt) then
    sl.fail("option --system needs --chat TEXT or --messages FILE", 2)
  end
  if M.wants_chat(opt) and opt.prompt_ids and opt.prompt_ids ~= "" then
    sl.fail("options --prompt-ids and --chat/--messages exclude each other", 2)
  end
end

local function message(role, content)
  local d = V.dict()
  V.dict_set(d, "role", role)
  V.dict_set(d, "content", content)
  return d
end

-- The conversation the flags describe: messages (a template list value) and the other template
-- variables of a --messages object (tools, documents, ...).
function M.conversation(opt)
  local messages, extra = V.list(), {}
  if opt.messages ~= "" then
    local text, err = chat.read_file(opt.messages)
    if not text then sl.fail(err or ("option --messages: cannot read '%s'"):format(opt.messages), 2) end
    local v
    v, err = V.from_json(text)
    if v == nil then sl.fail(("%s: %s"):format(opt.messages, err), 2) end
    if getmetatable(v) == V.Dict then
      for _, k in ipairs(v.keys) do if k ~= "messages" then extra[k] = v.vals[k] end end
      v = v.vals.messages
    end
    if getmetatable(v) ~= V.List then
      sl.fail(("%s: expected a list of messages or an object with \"messages\""):format(opt.messages), 2)
    end
    for i = 1, v.n do
      local m = v[i]
      if getmetatable(m) ~= V.Dict or type(m.vals.role) ~= "string" then
        sl.fail(("%s: message %d has no \"role\""):format(opt.messages, i), 2)
      end
      messages.n = messages.n + 1
      messages[messages.n] = m
    end
  end
  if opt.system ~= "" then
    table.insert(messages, 1, message("system", opt.system))
    messages.n = messages.n + 1
  end
  if opt.chat ~= "" then
    messages.n = messages.n + 1
    messages[messages.n] = message("user", opt.chat)
  end
  return messages, extra
end

-- Prompt ids for --chat / --messages (run.prompt_ids calls this when either is given).
function M.prompt_ids(model, opt)
  local tok = model.tokenizer
  if not tok then sl.fail(model.path .. ": no tokenizer.json (chat needs a tokenizer)") end
  local messages, extra = M.conversation(opt)
  if opt.no_chat_template then
    local parts = {}
    for i = 1, messages.n do parts[i] = V.str(messages[i].vals.content or "") end
    return tok:encode(table.concat(parts, "\n\n"), { special = true })
  end
  local add_generation_prompt = true
  if extra.add_generation_prompt ~= nil then add_generation_prompt = V.truthy(extra.add_generation_prompt) end
  local vars = V.dict()
  for k, v in pairs(extra) do
    if k ~= "tools" and k ~= "documents" and k ~= "add_generation_prompt" then V.dict_set(vars, k, v) end
  end
  local text, ids, kind = chat.apply(model, messages, {
    add_generation_prompt = add_generation_prompt, tools = extra.tools, documents = extra.documents,
    template = opt.chat_template ~= "" and opt.chat_template or nil, vars = vars,
  })
  if not text then sl.fail(("%s: chat template: %s"):format(model.path, ids), kind == "raise" and 1 or 2) end
  if #ids == 0 then sl.fail("the chat template renders no tokens") end
  return ids
end

return M
