-- slua.chat: chat templates as transformers applies them.
--
--   local chat = require "slua.chat"
--   local text, err = chat.render(template, context, {now = "2025-07-10T12:00:00Z"})
--
-- context is a JSON text of the template variables (key order kept: it shows in tojson and
-- items) or a Lua table (arrays become lists, other tables dicts with sorted keys; sl.json.null
-- is None). On failure render returns nil, message, kind: kind "raise" when the template called
-- raise_exception (message verbatim), "template" for syntax and runtime errors (the message
-- names line and column), "context" for a bad context.
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
  return jinja.render(tpl, vars, { now = now })
end

return chat
