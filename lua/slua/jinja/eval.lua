-- slua.jinja.eval: runs a syntax tree against a context, with Jinja2's scoping (a for-loop
-- iteration and a macro call open a scope; `set` inside them does not leak out; namespace()
-- objects carry state across), its default Undefined and Python's operator semantics.
local V = require "slua.jinja.value"
local B = require "slua.jinja.builtins"

local E = {}

local Frame = {}
Frame.__index = Frame

local function frame(parent) return setmetatable({ vars = {}, parent = parent }, Frame) end

function Frame:lookup(name)
  local f = self
  while f do
    local v = f.vars[name]
    if v ~= nil then return v end
    f = f.parent
  end
  return nil
end

local Env = {}
Env.__index = Env

local BREAK, CONTINUE = {}, {}
-- Statements and loop iterations a render may take (render's max_steps), so none runs forever.
E.MAX_STEPS = 10000000

local eval

---------------------------------------------------------------------------- attribute and item access

-- Jinja2's environment.getattr: the attribute (a method, a namespace or loop field) first, then
-- the item; missing -> undefined. Undefined objects raise.
local function getattr(obj, name, nd)
  local mt = getmetatable(obj)
  if mt == V.Undef then
    V.fail(("'%s' has no attribute '%s'"):format(obj.hint or "undefined value", name), nd)
  end
  local m = B.method(obj, name, nd)
  if m then return m end
  if mt == V.Dict then
    local v = obj.vals[name]
    if v ~= nil then return v end
  elseif mt == V.Namespace then
    local v = obj.attrs.vals[name]
    if v ~= nil then return v end
  elseif type(obj) == "table" and obj.is_loop then
    local v = B.loop_field(obj, name)
    if v ~= nil then return v end
  end
  return V.undefined(("'%s object' has no attribute '%s'"):format(V.kind(obj), name))
end
E.getattr = getattr

local function index_of(n, i)
  if math.type(i) ~= "integer" then return nil end
  if i < 0 then i = n + i end
  if i < 0 or i >= n then return nil end
  return i + 1
end

-- Jinja2's environment.getitem: the item first, then (for string keys) the attribute.
local function getitem(obj, key, nd)
  local mt = getmetatable(obj)
  if mt == V.Undef then
    V.fail(("'%s' has no item %s"):format(obj.hint or "undefined value", V.repr(key)), nd)
  end
  if type(key) == "boolean" then key = key and 1 or 0 end
  if mt == V.List and obj.lazy then V.fail("'generator' object is not subscriptable", nd) end
  if mt == V.List then
    local i = index_of(obj.n, key)
    if i then return obj[i] end
  elseif mt == V.Dict then
    local k = key
    if type(k) == "number" and math.type(k) == "float" and k == math.floor(k) then k = math.tointeger(k) end
    local v = obj.vals[k]
    if v ~= nil then return v end
  elseif type(obj) == "string" then
    local chars = V.chars(obj)
    local i = index_of(#chars, key)
    if i then return chars[i] end
  end
  if type(key) == "string" then return getattr(obj, key, nd) end
  return V.undefined(("'%s object' has no item %s"):format(V.kind(obj), V.repr(key)))
end
E.getitem = getitem

-- Python slice semantics on lists and strings (code points).
local function slice(obj, start, stop, step, nd)
  local items, is_str
  if type(obj) == "string" then items, is_str = V.chars(obj), true
  elseif getmetatable(obj) == V.List and not obj.lazy then items = obj
  else V.fail(("'%s' object is not subscriptable"):format(V.kind(obj)), nd) end
  local n = is_str and #items or obj.n
  local function int_or_nil(x, what)
    if x == nil or x == V.none then return nil end
    if math.type(x) ~= "integer" then V.fail("slice " .. what .. " must be an integer", nd) end
    return x
  end
  step = int_or_nil(step, "step") or 1
  if step == 0 then V.fail("slice step cannot be zero", nd) end
  start, stop = int_or_nil(start, "start"), int_or_nil(stop, "stop")
  local function clamp(x, lo, hi)
    if x < 0 then x = x + n end
    if x < lo then return lo end
    if x > hi then return hi end
    return x
  end
  local out = {}
  if step > 0 then
    local a = start and clamp(start, 0, n) or 0
    local b = stop and clamp(stop, 0, n) or n
    for i = a, b - 1, step do out[#out + 1] = items[i + 1] end
  else
    local a = start and clamp(start, -1, n - 1) or n - 1
    local b = stop and clamp(stop, -1, n - 1) or -1
    for i = a, b + 1, step do out[#out + 1] = items[i + 1] end
  end
  if is_str then return table.concat(out) end
  local l = V.list(out, #out)
  l.tuple = obj.tuple
  return l
end

---------------------------------------------------------------------------- operators

local function is_num(x) return type(x) == "number" or type(x) == "boolean" end
local function num(x) if type(x) == "boolean" then return x and 1 or 0 end return x end

local function type_error(op, a, b, nd)
  if V.is_undef(a) or V.is_undef(b) then
    local u = V.is_undef(a) and a or b
    V.fail(u.hint and (u.hint:match("^'") and u.hint or ("'" .. u.hint .. "' is undefined"))
      or "undefined value in an expression", nd)
  end
  V.fail(("unsupported operand type(s) for %s: '%s' and '%s'"):format(op, V.kind(a), V.kind(b)), nd)
end

-- Sizes past which a template is refused rather than allowed to exhaust memory.
local MAX_STRING, MAX_LIST, MAX_OUTPUT = 1 << 26, 1 << 22, 1 << 28

local function concat_lists(a, b, nd)
  if a.n + b.n > MAX_LIST then V.fail("list too large for a template", nd) end
  local out = {}
  for i = 1, a.n do out[i] = a[i] end
  for i = 1, b.n do out[a.n + i] = b[i] end
  local l = V.list(out, a.n + b.n)
  l.tuple = a.tuple
  return l
end

local function floordiv(a, b, nd)
  if b == 0 then V.fail("integer division or modulo by zero", nd) end
  return a // b
end

local function binop(op, a, b, nd)
  if op == "~" then
    local x, y = B.str(a), B.str(b)
    if #x + #y > MAX_STRING then V.fail("string too large for a template", nd) end
    return x .. y
  end
  if op == "+" then
    if is_num(a) and is_num(b) then return num(a) + num(b) end
    if type(a) == "string" and type(b) == "string" then
      if #a + #b > MAX_STRING then V.fail("string too large for a template", nd) end
      return a .. b
    end
    if getmetatable(a) == V.List and getmetatable(b) == V.List and (a.tuple or false) == (b.tuple or false)
        and not a.lazy and not b.lazy then
      return concat_lists(a, b, nd)
    end
    type_error("+", a, b, nd)
  elseif op == "-" then
    if is_num(a) and is_num(b) then return num(a) - num(b) end
    type_error("-", a, b, nd)
  elseif op == "*" then
    if is_num(a) and is_num(b) then return num(a) * num(b) end
    local s, n = a, b
    if is_num(a) then s, n = b, a end
    if math.type(num(n)) == "integer" then
      if type(s) == "string" then
        if #s * num(n) > MAX_STRING then V.fail("string repetition too large for a template", nd) end
        return num(n) > 0 and s:rep(num(n)) or ""
      end
      if getmetatable(s) == V.List and not s.lazy then
        local out = V.list()
        out.tuple = s.tuple
        if s.n * num(n) > MAX_LIST then V.fail("list repetition too large for a template", nd) end
        for r = 0, num(n) - 1 do
          for i = 1, s.n do out[r * s.n + i] = s[i] end
        end
        out.n = math.max(0, num(n)) * s.n
        return out
      end
    end
    type_error("*", a, b, nd)
  elseif op == "/" then
    if is_num(a) and is_num(b) then
      if num(b) == 0 then V.fail("division by zero", nd) end
      return num(a) / num(b)
    end
    type_error("/", a, b, nd)
  elseif op == "//" then
    if is_num(a) and is_num(b) then return floordiv(num(a), num(b), nd) end
    type_error("//", a, b, nd)
  elseif op == "%" then
    if type(a) == "string" then return B.percent_format(a, b, nd) end
    if is_num(a) and is_num(b) then
      if num(b) == 0 then V.fail("integer division or modulo by zero", nd) end
      return num(a) % num(b)  -- Lua's % takes the divisor's sign, as Python's does
    end
    type_error("%", a, b, nd)
  elseif op == "**" then
    if is_num(a) and is_num(b) then
      local x, y = num(a), num(b)
      if math.type(x) == "integer" and math.type(y) == "integer" and y >= 0 then
        local r = 1
        for _ = 1, y do r = r * x end
        return r
      end
      return x ^ y
    end
    type_error("**", a, b, nd)
  end
  V.fail("unknown operator " .. op, nd)
end
E.binop = binop

local function contains(container, item, nd)
  local mt = getmetatable(container)
  if type(container) == "string" then
    if type(item) ~= "string" then
      V.fail(("'in <string>' requires string as left operand, not %s"):format(V.kind(item)), nd)
    end
    return container:find(item, 1, true) ~= nil
  elseif mt == V.List then
    for i = 1, container.n do if V.equal(container[i], item) then return true end end
    return false
  elseif mt == V.Dict then
    for _, k in ipairs(container.keys) do if V.equal(k, item) then return true end end
    return false
  elseif mt == V.Undef then
    return false
  end
  V.fail(("argument of type '%s' is not iterable"):format(V.kind(container)), nd)
end
E.contains = contains

local function compare(op, a, b, nd)
  if op == "eq" then return V.equal(a, b) end
  if op == "ne" then return not V.equal(a, b) end
  if op == "in" then return contains(b, a, nd) end
  if op == "notin" then return not contains(b, a, nd) end
  if V.is_undef(a) or V.is_undef(b) then type_error("comparison", a, b, nd) end
  if op == "lt" then return V.less(a, b, nd) end
  if op == "gt" then return V.less(b, a, nd) end
  if op == "le" then return V.less(a, b, nd) or V.equal(a, b) end
  if op == "ge" then return V.less(b, a, nd) or V.equal(a, b) end
end
E.compare = compare

---------------------------------------------------------------------------- expressions

local function eval_args(env, fr, nd)
  local args, kwargs, order = {}, {}, {}
  for i, a in ipairs(nd.args) do args[i] = eval(env, fr, a) end
  for i, kw in ipairs(nd.kwargs) do kwargs[kw.name] = eval(env, fr, kw.value); order[i] = kw.name end
  args.n = #nd.args
  return args, kwargs, order
end

local function call_value(fn, args, kwargs, nd, order)
  if type(fn) == "table" and fn.is_loop and fn.recurse then fn = fn.recurse end
  if getmetatable(fn) ~= V.Callable then
    if V.is_undef(fn) then
      V.fail((fn.hint and (fn.hint:match("^'") and fn.hint or ("'" .. fn.hint .. "' is undefined")))
        or "undefined value is not callable", nd)
    end
    V.fail(("'%s' object is not callable"):format(V.kind(fn)), nd)
  end
  return fn.call(args, kwargs, nd, order)
end

local EVAL = {}

function EVAL.const(_, _, nd) return nd.value end

function EVAL.name(env, fr, nd)
  local v = fr:lookup(nd.name)
  if v ~= nil then return v end
  v = env.globals[nd.name]
  if v ~= nil then return v end
  return V.undefined(nd.name)
end

function EVAL.list(env, fr, nd)
  local out = {}
  for i, e in ipairs(nd.items) do out[i] = eval(env, fr, e) end
  return V.list(out, #nd.items)
end

function EVAL.tuple(env, fr, nd)
  local l = EVAL.list(env, fr, nd)
  l.tuple = true
  return l
end

function EVAL.dict(env, fr, nd)
  local d = V.dict()
  for i, k in ipairs(nd.keys) do V.dict_set(d, eval(env, fr, k), eval(env, fr, nd.vals[i])) end
  return d
end

function EVAL.getattr(env, fr, nd) return getattr(eval(env, fr, nd.obj), nd.name, nd) end
function EVAL.getitem(env, fr, nd) return getitem(eval(env, fr, nd.obj), eval(env, fr, nd.key), nd) end

function EVAL.slice(env, fr, nd)
  local obj = eval(env, fr, nd.obj)
  local function opt(e) return e and eval(env, fr, e) or nil end
  return slice(obj, opt(nd.start), opt(nd.stop), opt(nd.step), nd)
end

function EVAL.condexpr(env, fr, nd)
  if V.truthy(eval(env, fr, nd.test)) then return eval(env, fr, nd.yes) end
  if nd.no then return eval(env, fr, nd.no) end
  return V.undefined("the inline if expression has no else branch")
end

function EVAL.And(env, fr, nd)
  local a = eval(env, fr, nd.a)
  if not V.truthy(a) then return a end
  return eval(env, fr, nd.b)
end
EVAL["and"] = EVAL.And

EVAL["or"] = function(env, fr, nd)
  local a = eval(env, fr, nd.a)
  if V.truthy(a) then return a end
  return eval(env, fr, nd.b)
end

EVAL["not"] = function(env, fr, nd) return not V.truthy(eval(env, fr, nd.a)) end

function EVAL.neg(env, fr, nd)
  local a = eval(env, fr, nd.a)
  if not is_num(a) then V.fail(("bad operand type for unary -: '%s'"):format(V.kind(a)), nd) end
  return -num(a)
end

function EVAL.pos(env, fr, nd)
  local a = eval(env, fr, nd.a)
  if not is_num(a) then V.fail(("bad operand type for unary +: '%s'"):format(V.kind(a)), nd) end
  return num(a)
end

function EVAL.binop(env, fr, nd) return binop(nd.op, eval(env, fr, nd.a), eval(env, fr, nd.b), nd) end

function EVAL.compare(env, fr, nd)
  local a = eval(env, fr, nd.a)
  for _, o in ipairs(nd.ops) do
    local b = eval(env, fr, o.b)
    if not compare(o.op, a, b, o.tok) then return false end
    a = b
  end
  return true
end

function EVAL.call(env, fr, nd)
  local fn = eval(env, fr, nd.fn)
  local args, kwargs, order = eval_args(env, fr, nd)
  return call_value(fn, args, kwargs, nd, order)
end

function EVAL.filter(env, fr, nd, value)
  if value == nil then value = eval(env, fr, nd.a) end
  local f = B.filters[nd.name]
  if not f then V.fail(("no filter named '%s'"):format(nd.name), nd) end
  local args, kwargs = eval_args(env, fr, nd)
  return f(env, value, args, kwargs, nd)
end

function EVAL.test(env, fr, nd)
  local t = B.tests[nd.name]
  if not t then V.fail(("no test named '%s'"):format(nd.name), nd) end
  local value = eval(env, fr, nd.a)
  local args = eval_args(env, fr, nd)
  local r = t(env, value, args, nd)
  if nd.negated then return not r end
  return r
end

eval = function(env, fr, nd)
  local f = EVAL[nd.k]
  if not f then V.fail("cannot evaluate a '" .. nd.k .. "' here", nd) end
  return f(env, fr, nd)
end
E.eval = eval

---------------------------------------------------------------------------- statements

local exec_body

local function assign(fr, target, value, nd)
  if target.k == "name" then
    fr.vars[target.name] = value
  elseif target.k == "tuple" then
    local items = B.iterate(value, nd)
    if #items ~= #target.items then
      V.fail(("cannot unpack %d values into %d names"):format(#items, #target.items), nd)
    end
    for i, t in ipairs(target.items) do assign(fr, t, items[i], nd) end
  elseif target.k == "nsattr" then
    local ns = fr:lookup(target.name)
    if getmetatable(ns) ~= V.Namespace then
      V.fail(("cannot assign attribute on non-namespace object '%s'"):format(target.name), nd)
    end
    V.dict_set(ns.attrs, target.attr, value)
  end
end

local EXEC = {}

local function emit(env, nd, out, s)
  env.bytes = env.bytes + #s
  if env.bytes > MAX_OUTPUT then V.fail("output too large for a template", nd) end
  out[#out + 1] = s
end

function EXEC.data(env, _, nd, out) emit(env, nd, out, nd.text) end

function EXEC.output(env, fr, nd, out) emit(env, nd, out, B.str(eval(env, fr, nd.e))) end

EXEC["if"] = function(env, fr, nd, out)
  for _, br in ipairs(nd.branches) do
    if V.truthy(eval(env, fr, br.test)) then return exec_body(env, fr, br.body, out) end
  end
  if nd.else_ then return exec_body(env, fr, nd.else_, out) end
end

local function run_loop(env, fr, nd, out, iterable, depth)
  local items = B.iterate(iterable, nd)
  if nd.filter then
    local kept = {}
    for _, item in ipairs(items) do
      local probe = frame(fr)
      assign(probe, nd.target, item, nd)
      if V.truthy(eval(env, probe, nd.filter)) then kept[#kept + 1] = item end
    end
    items = kept
  end
  -- As Jinja2 compiles it, `else` runs unless an iteration reached the end of the body (one
  -- that ended in break or continue does not count).
  local completed = false
  if #items == 0 then
    if nd.else_ then return exec_body(env, fr, nd.else_, out) end
    return
  end
  local loop = { is_loop = true, items = items, length = #items, index0 = 0, depth0 = depth }
  if nd.recursive then
    loop.recurse = V.callable("loop", function(args, _, cnd)
      local sub = {}
      run_loop(env, fr, nd, sub, args[1], depth + 1)
      return table.concat(sub)
    end)
  end
  for i, item in ipairs(items) do
    env.steps = env.steps + 1
    if env.steps > env.max_steps then V.fail(("template runs too long (over %d steps)"):format(env.max_steps), nd) end
    loop.index0 = i - 1
    local inner = frame(fr)
    inner.vars.loop = loop
    assign(inner, nd.target, item, nd)
    local signal = exec_body(env, inner, nd.body, out)
    if signal == BREAK then break end
    if signal and signal ~= CONTINUE then return signal end
    if not signal then completed = true end
  end
  if nd.else_ and not completed then return exec_body(env, fr, nd.else_, out) end
end

EXEC["for"] = function(env, fr, nd, out)
  return run_loop(env, fr, nd, out, eval(env, fr, nd.iter), 0)
end

EXEC["break"] = function() return BREAK end
EXEC["continue"] = function() return CONTINUE end

function EXEC.set(env, fr, nd) assign(fr, nd.target, eval(env, fr, nd.e), nd) end

function EXEC.setblock(env, fr, nd)
  local buf = {}
  exec_body(env, frame(fr), nd.body, buf)
  local v = table.concat(buf)
  for _, f in ipairs(nd.filters) do v = EVAL.filter(env, fr, f, v) end
  assign(fr, nd.target, v, nd)
end

function EXEC.scope(env, fr, nd, out) return exec_body(env, fr, nd.body, out) end

function EXEC.filterblock(env, fr, nd, out)
  local buf = {}
  exec_body(env, frame(fr), nd.body, buf)
  local v = table.concat(buf)
  for _, f in ipairs(nd.filters) do v = EVAL.filter(env, fr, f, v) end
  out[#out + 1] = B.str(v)
end

function EXEC.with(env, fr, nd, out)
  local inner = frame(fr)
  for i, t in ipairs(nd.targets) do assign(inner, t, eval(env, fr, nd.values[i]), nd) end
  return exec_body(env, inner, nd.body, out)
end

EXEC["do"] = function(env, fr, nd) eval(env, fr, nd.e) end

-- A macro: positional and keyword arguments bound to parameters (defaults evaluated at call
-- time), extras in `varargs` / `kwargs`, `caller` when called from a call block.
local function make_macro(env, fr, name, params, body)
  local m
  m = V.callable(name, function(args, kwargs, cnd)
    env.depth = env.depth + 1
    if env.depth > 200 then V.fail("maximum macro recursion depth exceeded", cnd) end
    local inner = frame(fr)
    inner.vars[name] = m
    local used = {}
    for i, p in ipairs(params) do
      local v = args[i]
      if i > (args.n or #args) then v = nil end
      if v == nil and kwargs[p.name] ~= nil then v = kwargs[p.name]; used[p.name] = true end
      if v == nil and p.default then v = eval(env, inner, p.default) end
      if v == nil then v = V.undefined(("parameter '%s' was not provided"):format(p.name)) end
      inner.vars[p.name] = v
    end
    local extra = V.list()
    for i = #params + 1, (args.n or #args) do extra.n = extra.n + 1; extra[extra.n] = args[i] end
    inner.vars.varargs = extra
    local kw = V.dict()
    local names = {}
    for k in pairs(kwargs) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local is_param = false
      for _, p in ipairs(params) do if p.name == k then is_param = true end end
      if k == "caller" then inner.vars.caller = kwargs[k]
      elseif not is_param then V.dict_set(kw, k, kwargs[k]) end
    end
    inner.vars.kwargs = kw
    local buf = {}
    exec_body(env, inner, body, buf)
    env.depth = env.depth - 1
    return table.concat(buf)
  end)
  return m
end

function EXEC.macro(env, fr, nd) fr.vars[nd.name] = make_macro(env, fr, nd.name, nd.params, nd.body) end

function EXEC.callblock(env, fr, nd, out)
  local caller = make_macro(env, fr, "caller", nd.params, nd.body)
  local fn = eval(env, fr, nd.call.fn)
  local args, kwargs = eval_args(env, fr, nd.call)
  kwargs.caller = caller
  out[#out + 1] = B.str(call_value(fn, args, kwargs, nd))
end

exec_body = function(env, fr, body, out)
  env.steps = env.steps + #body
  if env.steps > env.max_steps then
    V.fail(("template runs too long (over %d steps)"):format(env.max_steps), body[1])
  end
  for _, nd in ipairs(body) do
    local f = EXEC[nd.k]
    local signal = f(env, fr, nd, out)
    if signal then return signal end
  end
end

-- Renders a parsed template. globals: name -> value (template values).
function E.render(tree, globals, max_steps)
  local env = setmetatable({ globals = globals, depth = 0, steps = 0, bytes = 0,
    max_steps = max_steps or E.MAX_STEPS }, Env)
  local out = {}
  local signal = exec_body(env, frame(nil), tree.body, out)
  if signal then V.fail("'break' or 'continue' outside a loop", tree) end
  return table.concat(out)
end

return E
