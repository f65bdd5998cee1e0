-- slua.jinja: a Jinja2 engine for chat templates, rendering as transformers does (Jinja2 3.1 in
-- an immutable sandbox with trim_blocks, lstrip_blocks, loop controls and the `generation` tag).
--
--   local jinja = require "slua.jinja"
--   local tpl, err = jinja.compile(source)         -- nil, "line L, column C: ..." on bad syntax
--   local text, err, kind = jinja.render(tpl, vars, {now = epoch_seconds, max_steps = 1e7})
--
-- vars maps names to template values (slua.jinja.value); render returns nil, message, kind with
-- kind "raise" for raise_exception (the message verbatim) or "template" (message names line and
-- column). Neither function raises on any input.
local V = require "slua.jinja.value"
local lexer = require "slua.jinja.lexer"
local parser = require "slua.jinja.parser"
local eval = require "slua.jinja.eval"
local B = require "slua.jinja.builtins"

local M = { value = V }

local function message(e)
  if getmetatable(e) == V.Error then
    if e.kind == "raise" then return e.message, "raise" end
    if e.line then return ("line %d, column %d: %s"):format(e.line, e.col, e.message), "template" end
    return e.message, "template"
  end
  return "internal error: " .. tostring(e), "internal"
end

function M.compile(source)
  if type(source) ~= "string" then return nil, "template must be a string", "template" end
  local ok, tree = pcall(function() return parser.parse(lexer.tokenize(source)) end)
  if not ok then return nil, message(tree) end
  return { tree = tree, source = source }
end

function M.render(tpl, vars, opts)
  opts = opts or {}
  local globals = B.globals(opts.now)
  for k, v in pairs(vars or {}) do globals[k] = v end
  local ok, out = pcall(eval.render, tpl.tree, globals, opts.max_steps)
  if not ok then return nil, message(out) end
  return out
end

return M
