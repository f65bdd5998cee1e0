-- slua.jinja.parser: tokens -> syntax tree, following Jinja2's grammar and operator precedence
-- (inline if < or < and < not < comparisons < + - < ~ < * / // % < ** < unary - < postfix, with
-- filters and `is` tests binding to the unary expression on their left).
--
-- Nodes are tables {k = kind, line, col, ...}; statement bodies are arrays of nodes.
local V = require "slua.jinja.value"

local P = {}

local Parser = {}
Parser.__index = Parser

local function describe(tok)
  if tok.type == "eof" then return "end of template" end
  if tok.type == "block_end" then return "end of statement block" end
  if tok.type == "var_end" then return "end of print statement" end
  if tok.type == "block_begin" or tok.type == "var_begin" then return "begin of a tag" end
  if tok.type == "data" then return "template data" end
  return "'" .. tostring(tok.value) .. "'"
end

function Parser:peek(k) return self.tokens[self.i + (k or 0)] end
function Parser:next() local t = self.tokens[self.i]; self.i = self.i + 1; return t end
function Parser:fail(msg, tok) V.fail(msg, tok or self:peek()) end

function Parser:is_op(v, k) local t = self:peek(k); return t.type == "op" and t.value == v end
function Parser:is_name(v, k) local t = self:peek(k); return t.type == "name" and t.value == v end

function Parser:skip_op(v) if self:is_op(v) then return self:next() end end
function Parser:skip_name(v) if self:is_name(v) then return self:next() end end

function Parser:expect_op(v)
  if not self:is_op(v) then self:fail(("expected '%s', got %s"):format(v, describe(self:peek()))) end
  return self:next()
end

function Parser:expect_name(v)
  local t = self:peek()
  if t.type ~= "name" or (v and t.value ~= v) then
    self:fail(("expected %s, got %s"):format(v and ("'" .. v .. "'") or "a name", describe(t)))
  end
  return self:next()
end

function Parser:expect(type_)
  local t = self:peek()
  if t.type ~= type_ then
    self:fail(("expected %s, got %s"):format(describe({ type = type_ }), describe(t)))
  end
  return self:next()
end

local function node(k, tok, fields)
  fields = fields or {}
  fields.k, fields.line, fields.col = k, tok.line, tok.col
  return fields
end

---------------------------------------------------------------------------- expressions

-- Nesting deeper than this is refused (Python's own parser stops near 1000 levels).
local MAX_DEPTH = 400

function Parser:enter()
  self.depth = self.depth + 1
  if self.depth > MAX_DEPTH then self:fail(("nested more than %d levels deep"):format(MAX_DEPTH)) end
end

function Parser:expression(no_condexpr)
  self:enter()
  local e = self:expression_inner(no_condexpr)
  self.depth = self.depth - 1
  return e
end

function Parser:expression_inner(no_condexpr)
  if no_condexpr then return self:or_expr() end
  local start = self:peek()
  local e = self:or_expr()
  while self:skip_name("if") do
    local cond = self:or_expr()
    local else_
    if self:skip_name("else") then else_ = self:expression() end
    e = node("condexpr", start, { test = cond, yes = e, no = else_ })
  end
  return e
end

function Parser:or_expr()
  local e = self:and_expr()
  while self:is_name("or") do
    local t = self:next()
    e = node("or", t, { a = e, b = self:and_expr() })
  end
  return e
end

function Parser:and_expr()
  local e = self:not_expr()
  while self:is_name("and") do
    local t = self:next()
    e = node("and", t, { a = e, b = self:not_expr() })
  end
  return e
end

function Parser:not_expr()
  if self:is_name("not") then
    local t = self:next()
    self:enter()
    local e = node("not", t, { a = self:not_expr() })
    self.depth = self.depth - 1
    return e
  end
  return self:compare()
end

local COMPARE = { ["=="] = "eq", ["!="] = "ne", ["<"] = "lt", ["<="] = "le", [">"] = "gt", [">="] = "ge" }

function Parser:compare()
  local e = self:math1()
  local ops = {}
  while true do
    local t = self:peek()
    if t.type == "op" and COMPARE[t.value] then
      self:next()
      ops[#ops + 1] = { op = COMPARE[t.value], b = self:math1(), tok = t }
    elseif self:is_name("in") then
      self:next()
      ops[#ops + 1] = { op = "in", b = self:math1(), tok = t }
    elseif self:is_name("not") and self:is_name("in", 1) then
      self:next(); self:next()
      ops[#ops + 1] = { op = "notin", b = self:math1(), tok = t }
    else
      break
    end
  end
  if #ops == 0 then return e end
  return node("compare", ops[1].tok, { a = e, ops = ops })
end

function Parser:binary(next_level, ops)
  local e = next_level(self)
  while true do
    local t = self:peek()
    if t.type == "op" and ops[t.value] then
      self:next()
      e = node("binop", t, { op = t.value, a = e, b = next_level(self) })
    else
      return e
    end
  end
end

function Parser:math1() return self:binary(Parser.concat, { ["+"] = true, ["-"] = true }) end
function Parser:concat() return self:binary(Parser.math2, { ["~"] = true }) end
function Parser:math2()
  return self:binary(Parser.pow, { ["*"] = true, ["/"] = true, ["//"] = true, ["%"] = true })
end
function Parser:pow() return self:binary(function(p) return p:unary() end, { ["**"] = true }) end

function Parser:unary(no_filter)
  local t = self:peek()
  local e
  if self:is_op("-") or self:is_op("+") then
    self:next()
    self:enter()
    e = node(t.value == "-" and "neg" or "pos", t, { a = self:unary(true) })
    self.depth = self.depth - 1
  else
    e = self:primary()
  end
  e = self:postfix(e)
  if not no_filter then e = self:filter_expr(e) end
  return e
end

function Parser:primary()
  local t = self:peek()
  if t.type == "name" then
    self:next()
    local v = t.value
    if v == "true" or v == "True" then return node("const", t, { value = true }) end
    if v == "false" or v == "False" then return node("const", t, { value = false }) end
    if v == "none" or v == "None" then return node("const", t, { value = V.none }) end
    return node("name", t, { name = v })
  elseif t.type == "string" then
    self:next()
    local parts = { t.value }
    while self:peek().type == "string" do parts[#parts + 1] = self:next().value end
    return node("const", t, { value = table.concat(parts) })
  elseif t.type == "int" or t.type == "float" then
    self:next()
    return node("const", t, { value = t.value })
  elseif self:is_op("(") then
    self:next()
    if self:skip_op(")") then return node("tuple", t, { items = {} }) end
    local e = self:tuple_expr(false, true)
    self:expect_op(")")
    return e
  elseif self:is_op("[") then
    self:next()
    local items = {}
    while not self:is_op("]") do
      if #items > 0 then self:expect_op(","); if self:is_op("]") then break end end
      items[#items + 1] = self:expression()
    end
    self:expect_op("]")
    return node("list", t, { items = items })
  elseif self:is_op("{") then
    self:next()
    local keys, vals = {}, {}
    while not self:is_op("}") do
      if #keys > 0 then self:expect_op(","); if self:is_op("}") then break end end
      keys[#keys + 1] = self:expression()
      self:expect_op(":")
      vals[#vals + 1] = self:expression()
    end
    self:expect_op("}")
    return node("dict", t, { keys = keys, vals = vals })
  end
  self:fail("unexpected " .. describe(t))
end

-- a, b, c (a tuple when a comma appears); `parens` allows the trailing-comma tuple `(a,)`.
function Parser:tuple_expr(no_condexpr, parens, names_only)
  local start = self:peek()
  local items, comma = {}, false
  while true do
    if #items > 0 then
      if not self:skip_op(",") then break end
      comma = true
      local t = self:peek()
      if t.type == "block_end" or t.type == "var_end" or self:is_op(")") or self:is_name("in") then break end
    end
    if names_only then
      local n = self:expect_name()
      items[#items + 1] = node("name", n, { name = n.value })
    else
      items[#items + 1] = self:expression(no_condexpr)
    end
  end
  if not comma then return items[1] end
  return node("tuple", start, { items = items })
end

function Parser:call_args()
  local args, kwargs = {}, {}
  self:expect_op("(")
  while not self:is_op(")") do
    if #args > 0 or #kwargs > 0 then self:expect_op(","); if self:is_op(")") then break end end
    if self:peek().type == "name" and self:is_op("=", 1) then
      local name = self:next().value
      self:next()
      kwargs[#kwargs + 1] = { name = name, value = self:expression() }
    else
      if self:is_op("*") or self:is_op("**") then self:fail("*args and **kwargs are not supported") end
      if #kwargs > 0 then self:fail("positional argument follows keyword argument") end
      args[#args + 1] = self:expression()
    end
  end
  self:expect_op(")")
  return args, kwargs
end

function Parser:subscript(e, t)
  -- [a], [a:b], [a:b:c], with any part omitted
  local parts, colons = { false, false, false }, 0
  local idx = 1
  while not self:is_op("]") do
    if self:skip_op(":") then
      colons = colons + 1
      idx = idx + 1
      if idx > 3 then self:fail("too many ':' in a slice") end
    else
      if parts[idx] then self:fail("expected ':' or ']'") end
      parts[idx] = self:expression()
    end
  end
  self:expect_op("]")
  if colons == 0 then
    if not parts[1] then self:fail("expected an index", t) end
    return node("getitem", t, { obj = e, key = parts[1] })
  end
  return node("slice", t, { obj = e, start = parts[1] or nil, stop = parts[2] or nil, step = parts[3] or nil })
end

function Parser:postfix(e)
  while true do
    local t = self:peek()
    if self:is_op(".") then
      self:next()
      local n = self:peek()
      if n.type == "name" then
        self:next()
        e = node("getattr", n, { obj = e, name = n.value })
      elseif n.type == "int" then
        self:next()
        e = node("getitem", n, { obj = e, key = node("const", n, { value = n.value }) })
      else
        self:fail("expected a name after '.'")
      end
    elseif self:is_op("[") then
      self:next()
      e = self:subscript(e, t)
    elseif self:is_op("(") then
      local args, kwargs = self:call_args()
      e = node("call", t, { fn = e, args = args, kwargs = kwargs })
    else
      return e
    end
  end
end

function Parser:dotted_name()
  local n = self:expect_name()
  local name = n.value
  while self:is_op(".") and self:peek(1).type == "name" do
    self:next()
    name = name .. "." .. self:next().value
  end
  return name, n
end

function Parser:filter_expr(e)
  while true do
    local t = self:peek()
    if self:is_op("|") then
      self:next()
      local name = self:dotted_name()
      local args, kwargs = {}, {}
      if self:is_op("(") then args, kwargs = self:call_args() end
      e = node("filter", t, { name = name, a = e, args = args, kwargs = kwargs })
    elseif self:is_name("is") then
      self:next()
      local negated = self:skip_name("not") and true or false
      local name = self:dotted_name()
      local args, kwargs = {}, {}
      local n = self:peek()
      if self:is_op("(") then
        args, kwargs = self:call_args()
      elseif (n.type == "name" or n.type == "string" or n.type == "int" or n.type == "float"
          or self:is_op("[") or self:is_op("{") or self:is_op("-"))
          and not (n.type == "name" and (n.value == "else" or n.value == "or" or n.value == "and"
            or n.value == "if" or n.value == "in" or n.value == "is" or n.value == "not")) then
        local arg = self:unary(true)
        args = { self:postfix(arg) }
      end
      e = node("test", t, { name = name, a = e, args = args, kwargs = kwargs, negated = negated })
    elseif self:is_op("(") then
      local args, kwargs = self:call_args()
      e = node("call", t, { fn = e, args = args, kwargs = kwargs })
    else
      return e
    end
  end
end

---------------------------------------------------------------------------- statements

-- Parses statements until a block tag whose name is in `ends`; returns body, end tag name.
function Parser:body(ends)
  local out = {}
  while true do
    local t = self:peek()
    if t.type == "eof" then
      if ends then
        self:fail(("unexpected end of template, expected '%s'"):format(table.concat(ends, "' or '")), t)
      end
      return out
    elseif t.type == "data" then
      self:next()
      out[#out + 1] = node("data", t, { text = t.value })
    elseif t.type == "var_begin" then
      self:next()
      local e = self:tuple_expr()
      self:expect("var_end")
      out[#out + 1] = node("output", t, { e = e })
    elseif t.type == "block_begin" then
      local name = self:peek(1)
      if name.type ~= "name" then self:fail("expected a statement name", name) end
      if ends then
        for _, e in ipairs(ends) do
          if name.value == e then self:next(); self:next(); return out, e end
        end
      end
      self:next()
      out[#out + 1] = self:statement()
    else
      self:fail("unexpected " .. describe(t), t)
    end
  end
end

local ENDS = { endfor = true, endif = true, endmacro = true, endset = true, endcall = true,
  endfilter = true, elif = true, ["else"] = true, endgeneration = true, endraw = true }

function Parser:statement()
  self:enter()
  local st = self:statement_inner()
  self.depth = self.depth - 1
  return st
end

function Parser:statement_inner()
  local t = self:next()
  local kw = t.value
  local f = self["stmt_" .. kw]
  if not f then
    if ENDS[kw] then self:fail(("unexpected '%s'"):format(kw), t) end
    self:fail(("unknown tag '%s'"):format(kw), t)
  end
  return f(self, t)
end

function Parser:stmt_if(t)
  local branches, else_ = {}, nil
  local cond = self:tuple_expr()
  self:expect("block_end")
  while true do
    local body, ended = self:body({ "elif", "else", "endif" })
    branches[#branches + 1] = { test = cond, body = body }
    if ended == "elif" then
      cond = self:tuple_expr()
      self:expect("block_end")
    elseif ended == "else" then
      self:expect("block_end")
      else_ = self:body({ "endif" })
      self:expect("block_end")
      break
    else
      self:expect("block_end")
      break
    end
  end
  return node("if", t, { branches = branches, else_ = else_ })
end

function Parser:stmt_for(t)
  local target = self:tuple_expr(true, false, true)
  self:expect_name("in")
  local iter = self:tuple_expr(true)
  local filter
  if self:skip_name("if") then filter = self:expression() end
  local recursive = self:skip_name("recursive") and true or false
  self:expect("block_end")
  local body, ended = self:body({ "endfor", "else" })
  local else_
  if ended == "else" then
    self:expect("block_end")
    else_ = self:body({ "endfor" })
  end
  self:expect("block_end")
  return node("for", t, { target = target, iter = iter, filter = filter, body = body, else_ = else_,
    recursive = recursive })
end

function Parser:assign_target()
  local start = self:peek()
  local n = self:expect_name()
  if self:is_op(".") then
    self:next()
    local attr = self:expect_name()
    return node("nsattr", start, { name = n.value, attr = attr.value })
  end
  if self:is_op(",") then
    local items = { node("name", n, { name = n.value }) }
    while self:skip_op(",") do
      local m = self:expect_name()
      items[#items + 1] = node("name", m, { name = m.value })
    end
    return node("tuple", start, { items = items })
  end
  return node("name", n, { name = n.value })
end

function Parser:stmt_set(t)
  local target = self:assign_target()
  if self:skip_op("=") then
    local e = self:tuple_expr()
    self:expect("block_end")
    return node("set", t, { target = target, e = e })
  end
  -- block set: {% set x %}...{% endset %}, optionally {% set x | filter %}
  local filters = {}
  while self:is_op("|") do
    local ft = self:next()
    local name = self:dotted_name()
    local args, kwargs = {}, {}
    if self:is_op("(") then args, kwargs = self:call_args() end
    filters[#filters + 1] = node("filter", ft, { name = name, args = args, kwargs = kwargs })
  end
  self:expect("block_end")
  local body = self:body({ "endset" })
  self:expect("block_end")
  return node("setblock", t, { target = target, body = body, filters = filters })
end

function Parser:macro_params()
  local params = {}
  self:expect_op("(")
  while not self:is_op(")") do
    if #params > 0 then self:expect_op(","); if self:is_op(")") then break end end
    local n = self:expect_name()
    local default
    if self:skip_op("=") then default = self:expression() end
    params[#params + 1] = { name = n.value, default = default }
  end
  self:expect_op(")")
  return params
end

function Parser:stmt_macro(t)
  local name = self:expect_name().value
  local params = self:macro_params()
  self:expect("block_end")
  local body = self:body({ "endmacro" })
  self:skip_name(name)
  self:expect("block_end")
  return node("macro", t, { name = name, params = params, body = body })
end

function Parser:stmt_call(t)
  local params = {}
  if self:is_op("(") then params = self:macro_params() end
  local call = self:expression()
  if call.k ~= "call" then self:fail("expected a call after 'call'", t) end
  self:expect("block_end")
  local body = self:body({ "endcall" })
  self:expect("block_end")
  return node("callblock", t, { call = call, params = params, body = body })
end

function Parser:stmt_filter(t)
  local filters = {}
  repeat
    local ft = self:peek()
    local name = self:dotted_name()
    local args, kwargs = {}, {}
    if self:is_op("(") then args, kwargs = self:call_args() end
    filters[#filters + 1] = node("filter", ft, { name = name, args = args, kwargs = kwargs })
  until not self:skip_op("|")
  self:expect("block_end")
  local body = self:body({ "endfilter" })
  self:expect("block_end")
  return node("filterblock", t, { filters = filters, body = body })
end

function Parser:stmt_generation(t)
  self:expect("block_end")
  local body = self:body({ "endgeneration" })
  self:expect("block_end")
  return node("scope", t, { body = body })
end

function Parser:stmt_break(t) self:expect("block_end"); return node("break", t) end
function Parser:stmt_continue(t) self:expect("block_end"); return node("continue", t) end

function Parser:stmt_do(t)
  local e = self:tuple_expr()
  self:expect("block_end")
  return node("do", t, { e = e })
end

function Parser:stmt_with(t)
  local targets, values = {}, {}
  while not (self:peek().type == "block_end") do
    if #targets > 0 then self:expect_op(",") end
    targets[#targets + 1] = self:assign_target()
    self:expect_op("=")
    values[#values + 1] = self:expression()
  end
  self:expect("block_end")
  local body = self:body({ "endwith" })
  self:expect("block_end")
  return node("with", t, { targets = targets, values = values, body = body })
end

function P.parse(tokens)
  local p = setmetatable({ tokens = tokens, i = 1, depth = 0 }, Parser)
  local body = p:body(nil)
  return node("template", tokens[1], { body = body })
end

return P
