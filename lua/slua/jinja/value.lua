-- slua.jinja.value: the value model of the template engine, shaped after Python's so that
-- rendered text matches what transformers' Jinja2 produces.
--
--   strings  Lua strings (UTF-8); lengths, indices and slices count code points
--   numbers  Lua integers and floats (Python int and float); booleans are Lua booleans
--   none     V.none;  undefined: V.undefined(hint) (Jinja2's default Undefined)
--   list     V.list{...} (n = length; tuples have tuple = true)
--   dict     V.dict(): ordered keys, because tojson and items show insertion order
--   callables {call = function(args, kwargs) ... end, name = ...}
local V = {}

local List, Dict, Undef, Callable, Namespace = {}, {}, {}, {}, {}
V.List, V.Dict, V.Undef, V.Callable, V.Namespace = List, Dict, Undef, Callable, Namespace

V.none = setmetatable({}, { __name = "none", __tostring = function() return "None" end })

-- An error raised while rendering: kind "raise" (raise_exception: message verbatim) or
-- "template" (syntax or runtime error; line and column appended by the renderer).
local Error = { __tostring = function(e) return e.message end }
V.Error = Error
function V.fail(message, node, kind)
  error(setmetatable({ message = message, line = node and node.line, col = node and node.col,
    kind = kind or "template" }, Error), 0)
end

function V.undefined(hint) return setmetatable({ hint = hint }, Undef) end
function V.list(t, n) t = t or {}; t.n = n or #t; return setmetatable(t, List) end
function V.tuple(t, n) local l = V.list(t, n); l.tuple = true; return l end
function V.dict() return setmetatable({ keys = {}, vals = {}, n = 0 }, Dict) end
function V.callable(name, fn) return setmetatable({ name = name, call = fn }, Callable) end
function V.namespace() return setmetatable({ attrs = V.dict() }, Namespace) end

function V.dict_set(d, k, v)
  if d.vals[k] == nil then d.n = d.n + 1; d.keys[d.n] = k end
  d.vals[k] = v
end

function V.dict_get(d, k) return d.vals[k] end

-- Python's type name, for messages and `is` tests.
function V.kind(v)
  local t = type(v)
  if t == "string" then return "str" end
  if t == "number" then return math.type(v) == "integer" and "int" or "float" end
  if t == "boolean" then return "bool" end
  if v == V.none then return "none" end
  local mt = getmetatable(v)
  if mt == List then return v.lazy and "generator" or v.tuple and "tuple" or "list" end
  if mt == Dict then return "dict" end
  if mt == Undef then return "undefined" end
  if mt == Callable then return "callable" end
  if mt == Namespace then return "namespace" end
  if t == "table" and v.is_loop then return "loop" end
  return "object"
end

function V.is_undef(v) return getmetatable(v) == Undef end

function V.truthy(v)
  local t = type(v)
  if t == "boolean" then return v end
  if t == "string" then return #v > 0 end
  if t == "number" then return v ~= 0 end
  if v == V.none then return false end
  local mt = getmetatable(v)
  if mt == List then return v.lazy or v.n > 0 end
  if mt == Dict then return v.n > 0 end
  if mt == Undef then return false end
  return true
end

---------------------------------------------------------------------------- code points

function V.is_ascii(s) return not s:find("[\128-\255]") end

-- The code points of s as an array of UTF-8 strings (bytes of invalid UTF-8 one by one).
function V.chars(s)
  local out = {}
  if V.is_ascii(s) then
    for i = 1, #s do out[i] = s:sub(i, i) end
    return out
  end
  local i = 1
  while i <= #s do
    local c = s:byte(i)
    local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
    out[#out + 1] = s:sub(i, i + len - 1)
    i = i + len
  end
  return out
end

function V.strlen(s)
  if V.is_ascii(s) then return #s end
  return utf8.len(s) or #V.chars(s)
end

---------------------------------------------------------------------------- numbers

-- Python's repr of a float: the shortest digits that round-trip, fixed notation for exponents in
-- [-4, 16), otherwise scientific with a signed two-digit exponent.
function V.float_repr(x, json)
  if x ~= x then return json and "NaN" or "nan" end
  if x == math.huge then return json and "Infinity" or "inf" end
  if x == -math.huge then return json and "-Infinity" or "-inf" end
  if x == 0 then return (1 / x < 0) and "-0.0" or "0.0" end
  local s
  for p = 1, 17 do
    s = string.format("%." .. (p - 1) .. "e", x)
    if tonumber(s) == x then break end
  end
  local sign, d1, rest, e = s:match("^(%-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits, exp = d1 .. rest, tonumber(e)
  digits = digits:gsub("0+$", "")
  if digits == "" then digits = "0" end
  local n = #digits
  if exp >= -4 and exp < 16 then
    if exp >= 0 then
      if n <= exp + 1 then return sign .. digits .. string.rep("0", exp + 1 - n) .. ".0" end
      return sign .. digits:sub(1, exp + 1) .. "." .. digits:sub(exp + 2)
    end
    return sign .. "0." .. string.rep("0", -exp - 1) .. digits
  end
  local mant = n > 1 and (digits:sub(1, 1) .. "." .. digits:sub(2)) or digits
  return ("%s%se%s%02d"):format(sign, mant, exp < 0 and "-" or "+", math.abs(exp))
end

---------------------------------------------------------------------------- str() and repr()

local function repr_string(s)
  local quote = (s:find("'", 1, true) and not s:find('"', 1, true)) and '"' or "'"
  local out = s:gsub("[%c\\'\"]", function(c)
    if c == "\\" then return "\\\\" end
    if c == quote then return "\\" .. c end
    if c == "'" or c == '"' then return c end
    if c == "\n" then return "\\n" end
    if c == "\r" then return "\\r" end
    if c == "\t" then return "\\t" end
    return ("\\x%02x"):format(c:byte())
  end)
  return quote .. out .. quote
end

local str

-- Python repr(), used inside str() of containers.
function V.repr(v)
  if type(v) == "string" then return repr_string(v) end
  if getmetatable(v) == Undef then return "Undefined" end
  return str(v)
end

str = function(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "True" or "False" end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return V.float_repr(v)
  end
  if v == V.none then return "None" end
  local mt = getmetatable(v)
  if mt == Undef then return "" end
  if mt == List then
    if v.lazy then return "<generator object>" end
    local parts = {}
    for i = 1, v.n do parts[i] = V.repr(v[i]) end
    if v.tuple then
      return "(" .. table.concat(parts, ", ") .. (v.n == 1 and ",)" or ")")
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  if mt == Dict then
    local parts = {}
    for i, k in ipairs(v.keys) do parts[i] = V.repr(k) .. ": " .. V.repr(v.vals[k]) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  if mt == Namespace then return "<Namespace " .. str(v.attrs) .. ">" end
  if mt == Callable then return "<function " .. tostring(v.name) .. ">" end
  if t == "table" and v.is_loop then return "<LoopContext>" end
  return tostring(v)
end
V.str = str

---------------------------------------------------------------------------- equality and order

local function equal(a, b)
  if a == b then return true end
  local ta, tb = type(a), type(b)
  -- Python: True == 1, 1 == 1.0
  if ta == "boolean" then a, ta = (a and 1 or 0), "number" end
  if tb == "boolean" then b, tb = (b and 1 or 0), "number" end
  if ta == "number" and tb == "number" then return a == b end
  if ta ~= "table" or tb ~= "table" then return false end
  local ma, mb = getmetatable(a), getmetatable(b)
  if ma ~= mb then return false end
  if ma == List then
    if a.lazy or b.lazy then return false end
    if a.n ~= b.n or (a.tuple or false) ~= (b.tuple or false) then return false end
    for i = 1, a.n do if not equal(a[i], b[i]) then return false end end
    return true
  end
  if ma == Dict then
    if a.n ~= b.n then return false end
    for _, k in ipairs(a.keys) do
      local bv = b.vals[k]
      if bv == nil or not equal(a.vals[k], bv) then return false end
    end
    return true
  end
  if ma == Undef then return true end
  return false
end
V.equal = equal

-- Python's a < b: numbers with numbers, strings with strings, sequences item by item.
function V.less(a, b, node)
  local ta, tb = type(a), type(b)
  if ta == "boolean" then a, ta = (a and 1 or 0), "number" end
  if tb == "boolean" then b, tb = (b and 1 or 0), "number" end
  if ta == "number" and tb == "number" then return a < b end
  if ta == "string" and tb == "string" then return a < b end
  if getmetatable(a) == List and getmetatable(b) == List then
    for i = 1, math.min(a.n, b.n) do
      if not equal(a[i], b[i]) then return V.less(a[i], b[i], node) end
    end
    return a.n < b.n
  end
  V.fail(("'<' not supported between instances of '%s' and '%s'"):format(V.kind(a), V.kind(b)), node)
end

---------------------------------------------------------------------------- JSON

-- JSON text -> values, keeping key order. Returns value or nil, message.
function V.from_json(text)
  local pos = 1
  local function err(what) error(("JSON: %s at byte %d"):format(what, pos), 0) end
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function utf8_of(cp) return utf8.char(cp) end
  local function string_lit()
    pos = pos + 1
    local parts = {}
    while true do
      local s, e = text:find('["\\]', pos)
      if not s then err("unterminated string") end
      parts[#parts + 1] = text:sub(pos, s - 1)
      if text:sub(s, s) == '"' then pos = s + 1; break end
      local c = text:sub(s + 1, s + 1)
      local simple = ({ b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" })[c]
      if simple then
        parts[#parts + 1] = simple
        pos = s + 2
      elseif c == "u" then
        local cp = tonumber(text:sub(s + 2, s + 5), 16) or err("bad \\u escape")
        pos = s + 6
        if cp >= 0xD800 and cp < 0xDC00 and text:sub(pos, pos + 1) == "\\u" then
          local lo = tonumber(text:sub(pos + 2, pos + 5), 16)
          if lo and lo >= 0xDC00 and lo < 0xE000 then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        parts[#parts + 1] = utf8_of(cp)
      else
        err("bad escape")
      end
    end
    return table.concat(parts)
  end
  value = function()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      local d = V.dict()
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return d end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then err("expected a key") end
        local k = string_lit()
        ws()
        if text:sub(pos, pos) ~= ":" then err("expected ':'") end
        pos = pos + 1
        V.dict_set(d, k, value())
        ws()
        local sep = text:sub(pos, pos)
        pos = pos + 1
        if sep == "}" then return d end
        if sep ~= "," then err("expected ',' or '}'") end
      end
    elseif c == "[" then
      local l = V.list()
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return l end
      while true do
        l.n = l.n + 1
        l[l.n] = value()
        ws()
        local sep = text:sub(pos, pos)
        pos = pos + 1
        if sep == "]" then return l end
        if sep ~= "," then err("expected ',' or ']'") end
      end
    elseif c == '"' then
      return string_lit()
    elseif text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif text:sub(pos, pos + 3) == "null" then pos = pos + 4; return V.none
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" or num == "-" then err("unexpected character") end
    pos = pos + #num
    if num:find("[.eE]") then return tonumber(num) end
    return math.tointeger(tonumber(num)) or tonumber(num)
  end
  local ok, v = pcall(function()
    local r = value()
    ws()
    if pos <= #text then err("trailing characters") end
    return r
  end)
  if not ok then return nil, tostring(v) end
  return v
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    if c == "\r" then return "\\r" end
    if c == "\t" then return "\\t" end
    if c == "\b" then return "\\b" end
    if c == "\f" then return "\\f" end
    if c == "\127" then return c end
    return ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- Python json.dumps(v, ensure_ascii=False, indent=, separators=, sort_keys=).
function V.to_json(v, opts, node)
  opts = opts or {}
  local indent = opts.indent
  if type(indent) == "number" then indent = string.rep(" ", indent) end
  if indent == V.none then indent = nil end
  local item_sep = opts.item_sep or (indent and "," or ", ")
  local key_sep = opts.key_sep or ": "
  local out = {}
  local function emit(x, depth)
    local t = type(x)
    if t == "string" then out[#out + 1] = json_string(x); return end
    if t == "boolean" then out[#out + 1] = x and "true" or "false"; return end
    if t == "number" then
      out[#out + 1] = math.type(x) == "integer" and tostring(x) or V.float_repr(x, true)
      return
    end
    if x == V.none then out[#out + 1] = "null"; return end
    local mt = getmetatable(x)
    local function open(items, n, o, c, each)
      if n == 0 then out[#out + 1] = o .. c; return end
      out[#out + 1] = o
      local nl = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
      for i = 1, n do
        if i > 1 then out[#out + 1] = item_sep end
        out[#out + 1] = nl
        each(items[i])
      end
      if indent then out[#out + 1] = "\n" .. string.rep(indent, depth) end
      out[#out + 1] = c
    end
    if mt == List and x.lazy then
      V.fail("Object of type generator is not JSON serializable", node)
    elseif mt == List then
      open(x, x.n, "[", "]", function(item) emit(item, depth + 1) end)
    elseif mt == Dict or mt == Namespace then
      local d = mt == Namespace and x.attrs or x
      local keys = d.keys
      if opts.sort_keys then
        keys = { table.unpack(d.keys) }
        table.sort(keys, function(a, b) return str(a) < str(b) end)
      end
      open(keys, d.n, "{", "}", function(k)
        local ks = k
        if type(k) ~= "string" then
          if type(k) == "boolean" then ks = k and "true" or "false"
          elseif k == V.none then ks = "null"
          elseif type(k) == "number" then ks = str(k)
          else V.fail("keys must be str, int, float, bool or None, not " .. V.kind(k), node) end
        end
        out[#out + 1] = json_string(ks) .. key_sep
        emit(d.vals[k], depth + 1)
      end)
    else
      V.fail(("Object of type %s is not JSON serializable"):format(
        mt == Undef and "Undefined" or V.kind(x)), node)
    end
  end
  emit(v, 0)
  return table.concat(out)
end

-- A Lua value -> template values: arrays become lists, other tables dicts (keys sorted, since a
-- Lua table has no order), sl.json.null / nil-like sentinels none.
function V.from_lua(x, null)
  if x == V.none or (null ~= nil and x == null) then return V.none end
  local t = type(x)
  if t ~= "table" then return x end
  local mt = getmetatable(x)
  if mt == List or mt == Dict or mt == Undef or mt == Callable or mt == Namespace then return x end
  if next(x) == nil then return V.list() end
  if #x > 0 then
    local l = V.list()
    for i = 1, #x do l[i] = V.from_lua(x[i], null) end
    l.n = #x
    return l
  end
  local keys = {}
  for k in pairs(x) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local d = V.dict()
  for _, k in ipairs(keys) do V.dict_set(d, k, V.from_lua(x[k], null)) end
  return d
end

-- Template values -> plain Lua (lists as arrays, dicts as tables), for callers.
function V.to_lua(x, null)
  local mt = getmetatable(x)
  if x == V.none then return null end
  if mt == List then
    local t = {}
    for i = 1, x.n do t[i] = V.to_lua(x[i], null) end
    return t
  end
  if mt == Dict then
    local t = {}
    for _, k in ipairs(x.keys) do t[k] = V.to_lua(x.vals[k], null) end
    return t
  end
  if mt == Undef then return nil end
  return x
end

return V
