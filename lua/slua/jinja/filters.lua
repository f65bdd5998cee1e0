-- slua.jinja.filters: Jinja2's built-in filters, plus transformers' tojson (json.dumps with
-- ensure_ascii=False, keys in insertion order). Each filter is f(env, value, args, kwargs, node).
local V = require "slua.jinja.value"

return function(B)
  local F = {}

  local function arg(args, kwargs, i, name, default)
    local v = args[i]
    if v == nil then v = kwargs[name] end
    if v == nil then return default end
    return v
  end

  local function need_string(v, what, nd)
    if type(v) ~= "string" then V.fail(("%s expects a string, got %s"):format(what, V.kind(v)), nd) end
    return v
  end

  -- Jinja2's make_attrgetter: "a.b.0" walks items (integers for digit parts).
  local function attr_getter(attribute, nd)
    if attribute == nil or attribute == V.none then return function(x) return x end end
    local E = require "slua.jinja.eval"
    local parts = {}
    for p in V.str(attribute):gmatch("[^.]+") do parts[#parts + 1] = math.tointeger(tonumber(p)) or p end
    return function(x)
      for _, p in ipairs(parts) do x = E.getitem(x, p, nd) end
      return x
    end
  end

  local function list_of(items) return V.list(items, #items) end
  -- Jinja2's map, select, items, unique, ... return generators: always true, not subscriptable,
  -- without a length; `| list` makes a list of one.
  local function lazy_of(items) local l = V.list(items, #items); l.lazy = true; return l end

  -- select/reject and selectattr/rejectattr: a test by name (with arguments) or truthiness.
  local function select_by(env, value, args, nd, keep, with_attr)
    local get = with_attr and attr_getter(args[1], nd) or function(x) return x end
    local first = with_attr and 2 or 1
    local test_name = args[first]
    local test_args = { table.unpack(args, first + 1, args.n or #args) }
    local test
    if test_name == nil then
      test = function(x) return V.truthy(x) end
    else
      local t = B.tests[test_name]
      if not t then V.fail(("no test named '%s'"):format(V.str(test_name)), nd) end
      test = function(x) return t(env, x, test_args, nd) end
    end
    local out = {}
    for _, x in ipairs(B.iterate(value, nd)) do
      if test(get(x)) == keep then out[#out + 1] = x end
    end
    return lazy_of(out)
  end

  local function sort_key(case_sensitive)
    return function(x)
      if not case_sensitive and type(x) == "string" then return B.lower(x) end
      return x
    end
  end

  local function stable_sort(items, key, reverse, nd)
    local decorated = {}
    for i, x in ipairs(items) do decorated[i] = { k = key(x), i = i, x = x } end
    table.sort(decorated, function(a, b)
      if V.equal(a.k, b.k) then return a.i < b.i end
      if reverse then return V.less(b.k, a.k, nd) end
      return V.less(a.k, b.k, nd)
    end)
    local out = {}
    for i, d in ipairs(decorated) do out[i] = d.x end
    return out
  end

  F.tojson = function(_, v, args, kwargs, nd)
    local sep = kwargs.separators
    local o = { indent = arg(args, kwargs, 1, "indent"), sort_keys = V.truthy(kwargs.sort_keys or false) }
    if sep and sep ~= V.none then o.item_sep, o.key_sep = sep[1], sep[2] end
    return V.to_json(v, o, nd)
  end

  F.safe = function(_, v) return V.str(v) end  -- Markup(value): a string
  F.string = function(_, v) return V.str(v) end
  F.trim = function(_, v, args, kwargs, nd)
    return B.strip(need_string(V.str(v), "trim", nd), arg(args, kwargs, 1, "chars"), true, true)
  end
  F.upper = function(_, v) return B.upper(V.str(v)) end
  F.lower = function(_, v) return B.lower(V.str(v)) end
  F.capitalize = function(_, v) return B.capitalize(V.str(v)) end
  F.title = function(_, v)
    return (V.str(v):gsub("([^%-%s%(%{%[<]+)", function(w) return B.capitalize(w) end))
  end
  F.replace = function(_, v, args, kwargs)
    return B.replace(V.str(v), V.str(args[1]), V.str(args[2]), arg(args, kwargs, 3, "count"))
  end

  F.length = function(_, v, _, _, nd)
    if type(v) == "string" then return V.strlen(v) end
    local mt = getmetatable(v)
    if (mt == V.List and not v.lazy) or mt == V.Dict then return v.n end
    if mt == V.Undef then return 0 end
    V.fail(("object of type '%s' has no len()"):format(V.kind(v)), nd)
  end
  F.count = F.length

  F.list = function(_, v, _, _, nd) return list_of(B.iterate(v, nd)) end

  F.items = function(_, v, _, _, nd)
    if V.is_undef(v) then return V.list() end
    if getmetatable(v) ~= V.Dict then V.fail("items: can only get item pairs from a mapping", nd) end
    local out = {}
    for i, k in ipairs(v.keys) do out[i] = V.tuple({ k, v.vals[k] }, 2) end
    return lazy_of(out)
  end

  F.dictsort = function(_, v, args, kwargs, nd)
    if getmetatable(v) ~= V.Dict then V.fail("dictsort: a mapping is required", nd) end
    local by_value = arg(args, kwargs, 2, "by", "key") == "value"
    local key = sort_key(V.truthy(arg(args, kwargs, 1, "case_sensitive", false)))
    local pairs_ = {}
    for i, k in ipairs(v.keys) do pairs_[i] = V.tuple({ k, v.vals[k] }, 2) end
    return list_of(stable_sort(pairs_, function(p) return key(by_value and p[2] or p[1]) end,
      V.truthy(arg(args, kwargs, 3, "reverse", false)), nd))
  end

  F.join = function(_, v, args, kwargs, nd)
    local get = attr_getter(arg(args, kwargs, 2, "attribute"), nd)
    local parts = {}
    for i, x in ipairs(B.iterate(v, nd)) do parts[i] = V.str(get(x)) end
    return table.concat(parts, V.str(arg(args, kwargs, 1, "d", "")))
  end

  F.first = function(_, v, _, _, nd)
    local items = B.iterate(v, nd)
    if #items == 0 then return V.undefined("no first item, sequence was empty") end
    return items[1]
  end
  F.last = function(_, v, _, _, nd)
    if getmetatable(v) == V.List and v.lazy then V.fail("'generator' object is not reversible", nd) end
    local items = B.iterate(v, nd)
    if #items == 0 then return V.undefined("no last item, sequence was empty") end
    return items[#items]
  end

  F.default = function(_, v, args, kwargs)
    local default = arg(args, kwargs, 1, "default_value", "")
    if V.is_undef(v) or (V.truthy(arg(args, kwargs, 2, "boolean", false)) and not V.truthy(v)) then
      return default
    end
    return v
  end
  F.d = F.default

  F.indent = function(_, v, args, kwargs, nd)
    if type(v) ~= "string" then V.fail(("indent expects a string, got %s"):format(V.kind(v)), nd) end
    local width = arg(args, kwargs, 1, "width", 4)
    local first = V.truthy(arg(args, kwargs, 2, "first", false))
    local blank = V.truthy(arg(args, kwargs, 3, "blank", false))
    local pad = type(width) == "string" and width or string.rep(" ", width)
    local s = V.str(v) .. "\n"
    local lines = {}
    for line in s:gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
    local rv
    if blank then
      rv = table.concat(lines, "\n" .. pad)
    else
      rv = table.remove(lines, 1) or ""
      for _, line in ipairs(lines) do rv = rv .. "\n" .. (line ~= "" and pad .. line or line) end
    end
    if first then rv = pad .. rv end
    return rv
  end

  F.center = function(_, v, args, kwargs)
    local s, width = V.str(v), arg(args, kwargs, 1, "width", 80)
    local n = V.strlen(s)
    if width <= n then return s end
    local total = width - n
    local left = total // 2 + (total & width & 1)
    return string.rep(" ", left) .. s .. string.rep(" ", total - left)
  end

  F.map = function(env, v, args, kwargs, nd)
    local items = B.iterate(v, nd)
    local out = {}
    if kwargs.attribute ~= nil then
      local get = attr_getter(kwargs.attribute, nd)
      for i, x in ipairs(items) do
        local r = get(x)
        if V.is_undef(r) and kwargs.default ~= nil then r = kwargs.default end
        out[i] = r
      end
      return lazy_of(out)
    end
    local f = args[1] and F[args[1]]
    if not f then V.fail(("map: no filter named '%s'"):format(V.str(args[1])), nd) end
    local rest = { table.unpack(args, 2, args.n or #args) }
    rest.n = math.max(0, (args.n or #args) - 1)
    for i, x in ipairs(items) do out[i] = f(env, x, rest, kwargs, nd) end
    return lazy_of(out)
  end

  F.select = function(env, v, args, _, nd) return select_by(env, v, args, nd, true, false) end
  F.reject = function(env, v, args, _, nd) return select_by(env, v, args, nd, false, false) end
  F.selectattr = function(env, v, args, _, nd) return select_by(env, v, args, nd, true, true) end
  F.rejectattr = function(env, v, args, _, nd) return select_by(env, v, args, nd, false, true) end

  F.attr = function(_, v, args, _, nd) return require("slua.jinja.eval").getattr(v, V.str(args[1]), nd) end

  F.sort = function(_, v, args, kwargs, nd)
    local get = attr_getter(arg(args, kwargs, 3, "attribute"), nd)
    local key = sort_key(V.truthy(arg(args, kwargs, 2, "case_sensitive", false)))
    return list_of(stable_sort(B.iterate(v, nd), function(x) return key(get(x)) end,
      V.truthy(arg(args, kwargs, 1, "reverse", false)), nd))
  end

  F.reverse = function(_, v, _, _, nd)
    if getmetatable(v) == V.List and v.lazy then V.fail("'generator' object is not reversible", nd) end
    if type(v) == "string" then
      local cs = V.chars(v)
      local out = {}
      for i = #cs, 1, -1 do out[#out + 1] = cs[i] end
      return table.concat(out)
    end
    local items = B.iterate(v, nd)
    local out = {}
    for i = #items, 1, -1 do out[#out + 1] = items[i] end
    return lazy_of(out)
  end

  F.unique = function(_, v, args, kwargs, nd)
    local get = attr_getter(arg(args, kwargs, 2, "attribute"), nd)
    local key = sort_key(V.truthy(arg(args, kwargs, 1, "case_sensitive", false)))
    local seen, out = {}, {}
    for _, x in ipairs(B.iterate(v, nd)) do
      local k = key(get(x))
      local dup = false
      for _, s in ipairs(seen) do if V.equal(s, k) then dup = true; break end end
      if not dup then seen[#seen + 1] = k; out[#out + 1] = x end
    end
    return lazy_of(out)
  end

  local function extreme(want_max)
    return function(_, v, args, kwargs, nd)
      local get = attr_getter(arg(args, kwargs, 2, "attribute"), nd)
      local key = sort_key(V.truthy(arg(args, kwargs, 1, "case_sensitive", false)))
      local best, best_k
      for _, x in ipairs(B.iterate(v, nd)) do
        local k = key(get(x))
        if best == nil or (want_max and V.less(best_k, k, nd)) or (not want_max and V.less(k, best_k, nd)) then
          best, best_k = x, k
        end
      end
      if best == nil then return V.undefined("no item, sequence was empty") end
      return best
    end
  end
  F.min, F.max = extreme(false), extreme(true)

  F.sum = function(_, v, args, kwargs, nd)
    local E = require "slua.jinja.eval"
    local get = attr_getter(arg(args, kwargs, 1, "attribute"), nd)
    local total = arg(args, kwargs, 2, "start", 0)
    for _, x in ipairs(B.iterate(v, nd)) do total = E.binop("+", total, get(x), nd) end
    return total
  end

  F.abs = function(_, v, _, _, nd)
    if type(v) == "boolean" then return v and 1 or 0 end
    if type(v) ~= "number" then V.fail("abs: a number is required", nd) end
    return math.abs(v)
  end

  F.int = function(_, v, args, kwargs, nd)
    if V.is_undef(v) then V.fail("int: the value is undefined", nd) end
    local default = arg(args, kwargs, 1, "default", 0)
    if type(v) == "boolean" then return v and 1 or 0 end
    if math.type(v) == "integer" then return v end
    if type(v) == "number" then
      if v ~= v or v == math.huge or v == -math.huge then return default end
      return math.tointeger(v >= 0 and math.floor(v) or math.ceil(v))
    end
    if type(v) == "string" then
      local base = arg(args, kwargs, 2, "base", 10)
      local s = v:gsub("^%s+", ""):gsub("%s+$", ""):gsub("_", "")
      local n = (base == 10 and s:match("^[-+]?%d+$")) and math.tointeger(tonumber(s))
        or (base ~= 10 and tonumber(s, base))
      if n then return n end
      local f = tonumber(s)
      if f then return math.tointeger(f >= 0 and math.floor(f) or math.ceil(f)) or default end
    end
    return default
  end

  F.float = function(_, v, args, kwargs, nd)
    if V.is_undef(v) then V.fail("float: the value is undefined", nd) end
    if type(v) == "boolean" then return v and 1.0 or 0.0 end
    if type(v) == "number" then return v + 0.0 end
    if type(v) == "string" then
      local f = tonumber((v:gsub("^%s+", ""):gsub("%s+$", "")))
      if f then return f + 0.0 end
    end
    return arg(args, kwargs, 1, "default", 0.0)
  end

  F.round = function(_, v, args, kwargs, nd)
    if type(v) ~= "number" then V.fail("round: a number is required", nd) end
    local precision = arg(args, kwargs, 1, "precision", 0)
    local method = arg(args, kwargs, 2, "method", "common")
    local m = 10 ^ precision
    local x = v * m
    if method == "ceil" then x = math.ceil(x)
    elseif method == "floor" then x = math.floor(x)
    else  -- Python's round(): halves go to the even neighbour
      local fl = math.floor(x)
      local frac = x - fl
      if frac > 0.5 or (frac == 0.5 and fl % 2 == 1) then x = fl + 1 else x = fl end
    end
    return (x / m) + 0.0
  end

  F.wordcount = function(_, v)
    local n = 0
    for _ in V.str(v):gmatch("[%w_]+") do n = n + 1 end
    return n
  end

  F.escape = function(_, v)
    return (V.str(v):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
      ['"'] = "&#34;", ["'"] = "&#39;" }))
  end
  F.e, F.forceescape = F.escape, F.escape

  F.format = function(_, v, args, _, nd)
    local values = V.tuple({ table.unpack(args, 1, args.n or #args) }, args.n or #args)
    return B.percent_format(need_string(v, "format", nd), values, nd)
  end

  F.batch = function(_, v, args, _, nd)
    local size, fill = args[1], args[2]
    if math.type(size) ~= "integer" or size < 1 then V.fail("batch: a positive size is required", nd) end
    local out, cur = {}, {}
    for _, x in ipairs(B.iterate(v, nd)) do
      cur[#cur + 1] = x
      if #cur == size then out[#out + 1] = list_of(cur); cur = {} end
    end
    if #cur > 0 then
      if fill ~= nil then while #cur < size do cur[#cur + 1] = fill end end
      out[#out + 1] = list_of(cur)
    end
    return lazy_of(out)
  end

  F.pprint = function(_, v) return V.str(v) end
  F.striptags = function(_, v)
    return (V.str(v):gsub("<[^>]*>", ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
  end
  F.truncate = function(_, v, args, kwargs)
    local s = V.str(v)
    local length = arg(args, kwargs, 1, "length", 255)
    local killwords = V.truthy(arg(args, kwargs, 2, "killwords", false))
    local ending = arg(args, kwargs, 3, "end", "...")
    local leeway = arg(args, kwargs, 4, "leeway", 5)
    local cs = V.chars(s)
    if #cs <= length + leeway then return s end
    local cut = table.concat(cs, "", 1, length - V.strlen(ending))
    if killwords then return cut .. ending end
    return (cut:gsub("%s*%S*$", "")) .. ending
  end

  return F
end
