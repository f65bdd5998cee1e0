-- slua.jinja.builtins: Python methods on strings, dicts and lists, loop variables, Jinja2's
-- tests, and the global functions transformers adds (raise_exception, strftime_now) next to
-- Jinja2's own (namespace, range, dict). Filters live in slua.jinja.filters.
local V = require "slua.jinja.value"

local B = {}
B.str = V.str

-- The items a for-loop or a filter walks: list items, dict keys, string code points; undefined
-- is empty.
function B.iterate(v, nd)
  local mt = getmetatable(v)
  if mt == V.List then
    local out = {}
    for i = 1, v.n do out[i] = v[i] end
    return out
  end
  if mt == V.Dict then return { table.unpack(v.keys) } end
  if type(v) == "string" then return V.chars(v) end
  if mt == V.Undef then return {} end
  V.fail(("'%s' object is not iterable"):format(V.kind(v)), nd)
end

---------------------------------------------------------------------------- Python string helpers

-- Python's str.isspace() set (ASCII and the Unicode spaces templates meet).
local SPACES = {
  [" "] = true, ["\t"] = true, ["\n"] = true, ["\r"] = true, ["\v"] = true, ["\f"] = true,
  ["\28"] = true, ["\29"] = true, ["\30"] = true, ["\31"] = true,
  ["\u{85}"] = true, ["\u{a0}"] = true, ["\u{1680}"] = true, ["\u{2028}"] = true, ["\u{2029}"] = true,
  ["\u{202f}"] = true, ["\u{205f}"] = true, ["\u{3000}"] = true,
}
for cp = 0x2000, 0x200A do SPACES[utf8.char(cp)] = true end
B.SPACES = SPACES

local function char_set(chars, nd)
  if chars == nil or chars == V.none then return SPACES end
  if type(chars) ~= "string" then V.fail("strip arg must be None or str", nd) end
  local set = {}
  for _, c in ipairs(V.chars(chars)) do set[c] = true end
  return set
end

function B.strip(s, chars, left, right, nd)
  local set = char_set(chars, nd)
  local cs = V.chars(s)
  local a, b = 1, #cs
  if left then while a <= b and set[cs[a]] do a = a + 1 end end
  if right then while b >= a and set[cs[b]] do b = b - 1 end end
  return table.concat(cs, "", a, b)
end

function B.split(s, sep, maxsplit)
  maxsplit = (maxsplit == nil or maxsplit == V.none) and -1 or maxsplit
  local out = V.list()
  local function add(x) out.n = out.n + 1; out[out.n] = x end
  if sep == nil or sep == V.none then
    local cs = V.chars(s)
    local i, n = 1, #cs
    while true do
      while i <= n and SPACES[cs[i]] do i = i + 1 end
      if i > n then break end
      if maxsplit >= 0 and out.n >= maxsplit then
        local rest = table.concat(cs, "", i, n)
        add((B.strip(rest, nil, false, true)))
        break
      end
      local j = i
      while j <= n and not SPACES[cs[j]] do j = j + 1 end
      add(table.concat(cs, "", i, j - 1))
      i = j
    end
    return out
  end
  if type(sep) ~= "string" then V.fail("must be str or None, not " .. type(sep)) end
  if sep == "" then V.fail("empty separator") end
  local pos = 1
  while true do
    if maxsplit >= 0 and out.n >= maxsplit then break end
    local a, b = s:find(sep, pos, true)
    if not a then break end
    add(s:sub(pos, a - 1))
    pos = b + 1
  end
  add(s:sub(pos))
  return out
end

function B.replace(s, old, new, count)
  count = (count == nil or count == V.none) and -1 or count
  if old == "" then
    local cs = V.chars(s)
    local out, done = {}, 0
    for i = 1, #cs + 1 do
      if count < 0 or done < count then out[#out + 1] = new; done = done + 1 end
      out[#out + 1] = cs[i]
    end
    return table.concat(out)
  end
  local out, pos, done = {}, 1, 0
  while count < 0 or done < count do
    local a, b = s:find(old, pos, true)
    if not a then break end
    out[#out + 1] = s:sub(pos, a - 1)
    out[#out + 1] = new
    pos = b + 1
    done = done + 1
  end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

local function affix_test(s, affix, at_end, nd)
  local list = getmetatable(affix) == V.List and affix or { affix, n = 1 }
  for i = 1, list.n do
    local a = list[i]
    if type(a) ~= "string" then V.fail("startswith/endswith expects a string or a tuple of strings", nd) end
    if at_end then
      if a == "" or s:sub(-#a) == a then return true end
    elseif s:sub(1, #a) == a then
      return true
    end
  end
  return false
end

-- Case mapping of the alphabets chat content meets (ASCII, Latin-1, Latin Extended-A, Greek,
-- Cyrillic); other code points are left as they are, and ß upper-cases to SS as in Python.
local GREEK_TONOS_UPPER = { [0x3AC] = 0x386, [0x3AD] = 0x388, [0x3AE] = 0x389, [0x3AF] = 0x38A,
  [0x3CC] = 0x38C, [0x3CD] = 0x38E, [0x3CE] = 0x38F }
local GREEK_TONOS_LOWER = {}
for lower, upper in pairs(GREEK_TONOS_UPPER) do GREEK_TONOS_LOWER[upper] = lower end

local function upper_cp(cp)
  if cp < 0x80 then return (cp >= 0x61 and cp <= 0x7A) and cp - 32 or cp end
  if (cp >= 0xE0 and cp <= 0xFE and cp ~= 0xF7) or (cp >= 0x3B1 and cp <= 0x3C9 and cp ~= 0x3C2)
      or (cp >= 0x430 and cp <= 0x44F) then return cp - 32 end
  if cp == 0x3C2 then return 0x3A3 end
  if GREEK_TONOS_UPPER[cp] then return GREEK_TONOS_UPPER[cp] end
  if cp >= 0x450 and cp <= 0x45F then return cp - 80 end
  if cp >= 0x100 and cp <= 0x17F and cp ~= 0x130 and cp ~= 0x131 and cp ~= 0x138 and cp ~= 0x149 then
    local odd = (cp >= 0x139 and cp <= 0x148) or (cp >= 0x179 and cp <= 0x17E)
    if odd then return cp % 2 == 0 and cp - 1 or cp end
    return cp % 2 == 1 and cp - 1 or cp
  end
  if cp == 0xFF then return 0x178 end
  return cp
end

local function lower_cp(cp)
  if cp < 0x80 then return (cp >= 0x41 and cp <= 0x5A) and cp + 32 or cp end
  if (cp >= 0xC0 and cp <= 0xDE and cp ~= 0xD7) or (cp >= 0x391 and cp <= 0x3A9 and cp ~= 0x3A2)
      or (cp >= 0x410 and cp <= 0x42F) then return cp + 32 end
  if cp >= 0x400 and cp <= 0x40F then return cp + 80 end
  if GREEK_TONOS_LOWER[cp] then return GREEK_TONOS_LOWER[cp] end
  if cp >= 0x100 and cp <= 0x17F and cp ~= 0x130 and cp ~= 0x131 and cp ~= 0x138 and cp ~= 0x149 then
    local odd = (cp >= 0x139 and cp <= 0x148) or (cp >= 0x179 and cp <= 0x17E)
    if odd then return cp % 2 == 1 and cp + 1 or cp end
    return cp % 2 == 0 and cp + 1 or cp
  end
  if cp == 0x178 then return 0xFF end
  return cp
end

-- The code point of one character from V.chars, or nil for a stray byte (not UTF-8).
local function codepoint(c)
  return utf8.len(c, 1, -1, true) and utf8.codepoint(c, 1, 1, true) or nil
end

local function map_case(s, f, sharp_s)
  if V.is_ascii(s) then return f == upper_cp and s:upper() or s:lower() end
  local out = {}
  for _, c in ipairs(V.chars(s)) do
    local cp = codepoint(c)
    if sharp_s and cp == 0xDF then out[#out + 1] = "SS"
    else out[#out + 1] = cp and utf8.char(f(cp)) or c end
  end
  return table.concat(out)
end

function B.upper(s) return map_case(s, upper_cp, true) end
function B.lower(s) return map_case(s, lower_cp, false) end

-- Cased: has an upper- or lower-case form different from itself.
local function is_cased(c)
  local cp = codepoint(c)
  return cp ~= nil and (upper_cp(cp) ~= cp or lower_cp(cp) ~= cp or cp == 0xDF)
end
local function is_upper_char(c) return is_cased(c) and B.lower(c) ~= c end
local function is_lower_char(c) return is_cased(c) and not is_upper_char(c) end

-- Python's str.islower() / str.isupper(): some cased character, none of the other case.
function B.islower(s)
  local any = false
  for _, c in ipairs(V.chars(s)) do
    if is_upper_char(c) then return false end
    any = any or is_lower_char(c)
  end
  return any
end
function B.isupper(s)
  local any = false
  for _, c in ipairs(V.chars(s)) do
    if is_lower_char(c) then return false end
    any = any or is_upper_char(c)
  end
  return any
end

function B.capitalize(s)
  local cs = V.chars(s)
  if #cs == 0 then return "" end
  return B.upper(cs[1]) .. B.lower(table.concat(cs, "", 2))
end

-- Python's str.title(): a cased letter after an uncased character starts a word.
function B.title(s)
  local prev_cased = false
  local out = {}
  for i, c in ipairs(V.chars(s)) do
    local cased = is_cased(c)
    out[i] = cased and (prev_cased and B.lower(c) or B.upper(c)) or c
    prev_cased = cased
  end
  return table.concat(out)
end

-- Python's str.format with {}, {0}, {name} and {{ }}; format specs are not interpreted.
function B.format(s, args, kwargs, nd)
  local auto = 0
  local out = s:gsub("{{", "\1"):gsub("}}", "\2"):gsub("{([^{}]*)}", function(field)
    local key = field:match("^([^:!]*)")
    local v
    if key == "" then auto = auto + 1; v = args[auto]
    elseif key:match("^%d+$") then v = args[tonumber(key) + 1]
    else v = kwargs[key] end
    if v == nil then V.fail(("format: no value for field '{%s}'"):format(field), nd) end
    return V.str(v)
  end)
  return (out:gsub("\1", "{"):gsub("\2", "}"))
end

-- Python's printf-style `'%s' % value`: %s %r %d %i %f %g %e %x %c and %%, with flags, width,
-- precision and %(name)s keys into a mapping.
function B.percent_format(fmt, values, nd)
  local list
  if getmetatable(values) == V.List and values.tuple then list = values else list = { values, n = 1 } end
  local out, i, pos = {}, 0, 1
  while true do
    local p = fmt:find("%", pos, true)
    if not p then out[#out + 1] = fmt:sub(pos); break end
    out[#out + 1] = fmt:sub(pos, p - 1)
    local key, q = nil, p + 1
    if fmt:sub(q, q) == "(" then
      local close = fmt:find(")", q, true)
      if not close then V.fail("incomplete format key", nd) end
      key, q = fmt:sub(q + 1, close - 1), close + 1
    end
    local flags = fmt:match("^[-+ #0]*%d*%.?%d*", q)
    q = q + #flags
    local conv = fmt:sub(q, q)
    pos = q + 1
    if conv == "%" then
      out[#out + 1] = "%"
    else
      if not conv:match("[sdirfgeExXoc]") then V.fail("unsupported format character " .. V.repr(conv), nd) end
      local v
      if key then
        v = getmetatable(values) == V.Dict and values.vals[key] or nil
      else
        i = i + 1
        v = list[i]
      end
      if v == nil then V.fail("not enough arguments for format string", nd) end
      if conv == "s" then out[#out + 1] = ("%" .. flags .. "s"):format(V.str(v))
      elseif conv == "r" then out[#out + 1] = ("%" .. flags .. "s"):format(V.repr(v))
      else
        if type(v) == "boolean" then v = v and 1 or 0 end
        if type(v) ~= "number" then V.fail(("%%%s format: a number is required, not %s"):format(conv, V.kind(v)), nd) end
        if conv == "d" or conv == "i" then
          out[#out + 1] = ("%" .. flags .. "d"):format(math.tointeger(v) or math.tointeger(v >= 0 and math.floor(v) or math.ceil(v)) or 0)
        elseif conv == "c" then
          local cp = math.tointeger(v) or 0
          if cp < 0 or cp > 0x10FFFF then V.fail("%c arg not in range(0x110000)", nd) end
          out[#out + 1] = utf8.char(cp)
        elseif conv == "x" or conv == "X" or conv == "o" then
          out[#out + 1] = ("%" .. flags .. conv):format(math.tointeger(v) or 0)
        else out[#out + 1] = ("%" .. flags .. conv):format(v) end
      end
    end
  end
  -- Python: leftovers of a tuple, or an unused plain value, are an error; a list or mapping
  -- argument without specifiers is not (it may be a mapping for %(name)s).
  local mt = getmetatable(values)
  if i < list.n and ((mt == V.List and values.tuple) or (mt ~= V.Dict and mt ~= V.List)) then
    V.fail("not all arguments converted during string formatting", nd)
  end
  return table.concat(out)
end

---------------------------------------------------------------------------- methods

local function bound(name, fn) return V.callable(name, fn) end

local function opt(v) if v == nil or v == V.none then return nil end return v end

local STRING_METHODS = {
  strip = function(s, a, _, nd) return B.strip(s, a[1], true, true, nd) end,
  lstrip = function(s, a, _, nd) return B.strip(s, a[1], true, false, nd) end,
  rstrip = function(s, a, _, nd) return B.strip(s, a[1], false, true, nd) end,
  split = function(s, a, kw) return B.split(s, a[1] or kw.sep, a[2] or kw.maxsplit) end,
  startswith = function(s, a, _, nd) return affix_test(s, a[1], false, nd) end,
  endswith = function(s, a, _, nd) return affix_test(s, a[1], true, nd) end,
  replace = function(s, a) return B.replace(s, a[1], a[2], a[3]) end,
  upper = function(s) return B.upper(s) end,
  lower = function(s) return B.lower(s) end,
  title = function(s) return B.title(s) end,
  capitalize = function(s) return B.capitalize(s) end,
  format = function(s, a, kw, nd) return B.format(s, a, kw, nd) end,
  join = function(s, a, _, nd)
    local parts = {}
    for i, x in ipairs(B.iterate(a[1], nd)) do
      if type(x) ~= "string" then V.fail("join: sequence item " .. (i - 1) .. ": expected str", nd) end
      parts[i] = x
    end
    return table.concat(parts, s)
  end,
  find = function(s, a)
    local p = s:find(a[1], 1, true)
    return p and V.strlen(s:sub(1, p - 1)) or -1
  end,
  count = function(s, a)
    local n, pos = 0, 1
    if a[1] == "" then return V.strlen(s) + 1 end
    while true do
      local x, y = s:find(a[1], pos, true)
      if not x then return n end
      n, pos = n + 1, y + 1
    end
  end,
  splitlines = function(s)
    local out, pos = V.list(), 1
    while pos <= #s do
      local a, b = s:find("\r?\n", pos)
      if not a then a, b = s:find("\r", pos) end
      if not a then out.n = out.n + 1; out[out.n] = s:sub(pos); break end
      out.n = out.n + 1
      out[out.n] = s:sub(pos, a - 1)
      pos = b + 1
    end
    return out
  end,
  isdigit = function(s) return s ~= "" and not s:find("%D") end,
  isalpha = function(s) return s ~= "" and not s:find("%A") end,
  isalnum = function(s) return s ~= "" and not s:find("%W") end,
  isspace = function(s) return s ~= "" and B.strip(s, nil, true, true) == "" end,
  islower = function(s) return B.islower(s) end,
  isupper = function(s) return B.isupper(s) end,
}

local DICT_METHODS = {
  items = function(d)
    local out = V.list()
    for i, k in ipairs(d.keys) do out[i] = V.tuple({ k, d.vals[k] }, 2) end
    out.n = d.n
    return out
  end,
  keys = function(d) return V.list({ table.unpack(d.keys) }, d.n) end,
  values = function(d)
    local out = V.list()
    for i, k in ipairs(d.keys) do out[i] = d.vals[k] end
    out.n = d.n
    return out
  end,
  get = function(d, a)
    local v = d.vals[a[1]]
    if v == nil then return a[2] == nil and V.none or a[2] end
    return v
  end,
}

local LIST_METHODS = {
  index = function(l, a, _, nd)
    for i = 1, l.n do if V.equal(l[i], a[1]) then return i - 1 end end
    V.fail(V.repr(a[1]) .. " is not in list", nd)
  end,
  count = function(l, a)
    local n = 0
    for i = 1, l.n do if V.equal(l[i], a[1]) then n = n + 1 end end
    return n
  end,
}

-- The sandbox transformers renders in refuses methods that modify a value in place.
local UNSAFE = { append = true, extend = true, insert = true, pop = true, remove = true, clear = true,
  update = true, setdefault = true, popitem = true, sort = true, reverse = true }

function B.method(obj, name, nd)
  local t, mt = type(obj), getmetatable(obj)
  local m
  if t == "string" then m = STRING_METHODS[name]
  elseif mt == V.Dict then m = DICT_METHODS[name]
  elseif mt == V.List then m = LIST_METHODS[name] end
  if m then
    return bound(name, function(args, kwargs, cnd) return m(obj, args, kwargs, cnd or nd) end)
  end
  if (mt == V.Dict or mt == V.List) and UNSAFE[name] then
    return bound(name, function(_, _, cnd)
      V.fail(("access to attribute '%s' of '%s' object is unsafe"):format(name, V.kind(obj)), cnd or nd)
    end)
  end
  return nil
end

---------------------------------------------------------------------------- loop variables

function B.loop_field(loop, name)
  local i, n = loop.index0, loop.length
  if name == "index0" then return i end
  if name == "index" then return i + 1 end
  if name == "revindex" then return n - i end
  if name == "revindex0" then return n - i - 1 end
  if name == "first" then return i == 0 end
  if name == "last" then return i == n - 1 end
  if name == "length" then return n end
  if name == "depth" then return loop.depth0 + 1 end
  if name == "depth0" then return loop.depth0 end
  if name == "previtem" then
    if i == 0 then return V.undefined("there is no previous item") end
    return loop.items[i]
  end
  if name == "nextitem" then
    if i == n - 1 then return V.undefined("there is no next item") end
    return loop.items[i + 2]
  end
  if name == "cycle" then
    return bound("cycle", function(args, _, nd)
      if #args == 0 then V.fail("no items for cycling given", nd) end
      return args[i % #args + 1]
    end)
  end
  if name == "changed" then
    return bound("changed", function(args)
      local v = V.list({ table.unpack(args) }, #args)
      if loop.last_changed and V.equal(loop.last_changed, v) then return false end
      loop.last_changed = v
      return true
    end)
  end
  return nil
end

---------------------------------------------------------------------------- tests

local function is_int(v) return math.type(v) == "integer" end

local function number_of(v, what, nd)
  if type(v) == "boolean" then return v and 1 or 0 end
  if type(v) ~= "number" then V.fail(("%s: a number is required, not %s"):format(what, V.kind(v)), nd) end
  return v
end

B.tests = {
  defined = function(_, v) return not V.is_undef(v) end,
  undefined = function(_, v) return V.is_undef(v) end,
  none = function(_, v) return v == V.none end,
  boolean = function(_, v) return type(v) == "boolean" end,
  ["false"] = function(_, v) return v == false end,
  ["true"] = function(_, v) return v == true end,
  integer = function(_, v) return is_int(v) end,
  float = function(_, v) return math.type(v) == "float" end,
  number = function(_, v) return type(v) == "number" or type(v) == "boolean" end,
  string = function(_, v) return type(v) == "string" end,
  mapping = function(_, v) return getmetatable(v) == V.Dict end,
  iterable = function(_, v)
    local mt = getmetatable(v)
    return type(v) == "string" or mt == V.List or mt == V.Dict or mt == V.Undef
  end,
  sequence = function(_, v)
    local mt = getmetatable(v)
    return type(v) == "string" or mt == V.List or mt == V.Dict or mt == V.Undef
  end,
  callable = function(_, v) return getmetatable(v) == V.Callable or V.is_undef(v) end,  -- Undefined has __call__
  sameas = function(_, v, a) return rawequal(v, a[1]) or (type(v) ~= "table" and v == a[1]) end,
  escaped = function() return false end,
  odd = function(_, v, _, nd) return number_of(v, "odd", nd) % 2 == 1 end,
  even = function(_, v, _, nd) return number_of(v, "even", nd) % 2 == 0 end,
  divisibleby = function(_, v, a, nd)
    local x, d = number_of(v, "divisibleby", nd), number_of(a[1], "divisibleby", nd)
    if d == 0 then V.fail("integer division or modulo by zero", nd) end
    return x % d == 0
  end,
  -- Jinja2: str(value).islower() / .isupper()
  lower = function(_, v) return B.islower(V.str(v)) end,
  upper = function(_, v) return B.isupper(V.str(v)) end,
  ["in"] = function(_, v, a, nd) return require("slua.jinja.eval").contains(a[1], v, nd) end,
  filter = function(_, v) return B.filters[v] ~= nil end,
  test = function(_, v) return B.tests[v] ~= nil end,
}

local function comparison(op)
  return function(_, v, a, nd) return require("slua.jinja.eval").compare(op, v, a[1], nd) end
end
for names, op in pairs({ eq = { "eq", "equalto", "==" }, ne = { "ne", "!=" }, lt = { "lt", "lessthan", "<" },
  le = { "le", "<=" }, gt = { "gt", "greaterthan", ">" }, ge = { "ge", ">=" } }) do
  for _, name in ipairs(op) do B.tests[name] = comparison(names) end
end

---------------------------------------------------------------------------- globals

-- Keyword names in call order when the caller knows it (Python keeps that order).
local function order_of(kwargs, order)
  if order then return order end
  local names = {}
  for k in pairs(kwargs) do names[#names + 1] = k end
  table.sort(names)
  return names
end

-- The functions every template sees; now: epoch seconds strftime_now reads (nil = the clock).
function B.globals(now)
  local g = {}
  g.raise_exception = V.callable("raise_exception", function(args, _, nd)
    V.fail(V.str(args[1] == nil and "" or args[1]), nd, "raise")
  end)
  g.strftime_now = V.callable("strftime_now", function(args, _, nd)
    if type(args[1]) ~= "string" then V.fail("strftime_now expects a format string", nd) end
    local ok, s = pcall(os.date, "!" .. args[1], now or os.time())
    if not ok then V.fail("strftime_now: bad format " .. V.repr(args[1]), nd) end
    return s
  end)
  g.namespace = V.callable("namespace", function(args, kwargs, _, order)
    local ns = V.namespace()
    if getmetatable(args[1]) == V.Dict then
      for _, k in ipairs(args[1].keys) do V.dict_set(ns.attrs, k, args[1].vals[k]) end
    end
    local names = order_of(kwargs, order)
    for _, k in ipairs(names) do V.dict_set(ns.attrs, k, kwargs[k]) end
    return ns
  end)
  g.dict = V.callable("dict", function(_, kwargs, _, order)
    local d = V.dict()
    local names = order_of(kwargs, order)
    for _, k in ipairs(names) do V.dict_set(d, k, kwargs[k]) end
    return d
  end)
  g.range = V.callable("range", function(args, _, nd)
    local a, b, step = 0, args[1], 1
    if #args >= 2 then a, b = args[1], args[2] end
    if #args >= 3 then step = args[3] end
    for _, x in ipairs({ a, b, step }) do
      if not is_int(x) then V.fail("range() expects integers", nd) end
    end
    if step == 0 then V.fail("range() arg 3 must not be zero", nd) end
    local count = step > 0 and math.max(0, (b - a + step - 1) // step) or math.max(0, (a - b - step - 1) // -step)
    if count > 100000 then V.fail("range() too large for a template (more than 100000 items)", nd) end
    local out = V.list()
    for i = 0, count - 1 do out[i + 1] = a + i * step end
    out.n = count
    return out
  end)
  return g
end

B.filters = require("slua.jinja.filters")(B)

return B
