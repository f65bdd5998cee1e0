-- slua.jinja.lexer: template source -> tokens, with Jinja2's whitespace rules as transformers
-- configures them: trim_blocks (drop the newline after a block or comment tag), lstrip_blocks
-- (drop the indentation before one), `-` markers that strip all whitespace on their side, `+`
-- markers that turn the two options off, line endings normalized to \n and a single trailing
-- newline dropped (keep_trailing_newline is off).
--
-- Tokens: {type, value, line, col} with type one of data, block_begin, block_end, var_begin,
-- var_end, name, string, int, float, op, eof.
local V = require "slua.jinja.value"

local L = {}

local OPERATORS = {
  "//", "**", "==", "!=", ">=", "<=",
  "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
}

local SIMPLE_ESCAPES = {
  n = "\n", t = "\t", r = "\r", ["\\"] = "\\", ["'"] = "'", ['"'] = '"',
  a = "\a", b = "\b", f = "\f", v = "\v", ["\n"] = "",
}

-- Python's unicode-escape decoding of a string literal's body; unknown escapes stay as written.
local function unescape(body)
  return (body:gsub("\\(U%x%x%x%x%x%x%x%x)", function(h)
      local cp = tonumber(h:sub(2), 16)
      return cp <= 0x10FFFF and utf8.char(cp) or nil -- beyond Unicode: left as written
    end)
    :gsub("\\(u%x%x%x%x)", function(h) return utf8.char(tonumber(h:sub(2), 16)) end)
    :gsub("\\(x%x%x)", function(h) return utf8.char(tonumber(h:sub(2), 16)) end)
    :gsub("\\([0-7][0-7]?[0-7]?)", function(o) return utf8.char(tonumber(o, 8)) end)
    :gsub("\\(.)", function(c) return SIMPLE_ESCAPES[c] or ("\\" .. c) end))
end

function L.tokenize(source)
  local src = source:gsub("\r\n", "\n"):gsub("\r", "\n")
  if src:sub(-1) == "\n" then src = src:sub(1, -2) end

  -- line starts, for positions -> line/column
  local starts = { 1 }
  for p in src:gmatch("()\n") do starts[#starts + 1] = p + 1 end
  local function where(pos)
    local lo, hi = 1, #starts
    while lo < hi do
      local mid = (lo + hi + 1) // 2
      if starts[mid] <= pos then lo = mid else hi = mid - 1 end
    end
    return lo, pos - starts[lo] + 1
  end
  local tokens = {}
  local function push(type_, value, pos)
    local line, col = where(pos)
    tokens[#tokens + 1] = { type = type_, value = value, line = line, col = col }
  end
  local function fail(msg, pos)
    local line, col = where(pos)
    V.fail(msg, { line = line, col = col })
  end

  local pos, n = 1, #src
  local strip_next = false      -- a `-` close marker: strip leading whitespace of the next data
  local trim_next = false       -- trim_blocks: drop one newline at the start of the next data

  local function emit_data(text, data_start, tag_kind, tag_modifier)
    if strip_next then text = text:gsub("^%s+", "") end
    if trim_next and text:sub(1, 1) == "\n" then text = text:sub(2); data_start = data_start + 1 end
    strip_next, trim_next = false, false
    if tag_modifier == "-" then
      text = text:gsub("%s+$", "")
    elseif tag_modifier ~= "+" and (tag_kind == "block" or tag_kind == "comment") then
      -- lstrip_blocks: only whitespace between the line start and the tag
      local last_nl = text:match(".*()\n")
      local line_start = last_nl and last_nl + 1 or 1
      local at_line_start = last_nl ~= nil or data_start == 1 or src:sub(data_start - 1, data_start - 1) == "\n"
      if at_line_start and text:sub(line_start):match("^[ \t]*$") then
        text = text:sub(1, line_start - 1)
      end
    end
    if text ~= "" then push("data", text, data_start) end
  end

  -- Close marker handling for `%}` / `#}` / `}}` preceded by an optional - or +.
  local function after_close(kind, modifier)
    if modifier == "-" then strip_next = true
    elseif modifier ~= "+" and (kind == "block" or kind == "comment") then trim_next = true end
  end

  while pos <= n do
    local s = src:find("{[{%%#]", pos)
    local data_end = s and s - 1 or n
    local open = s and src:sub(s, s + 1)
    local kind = open == "{{" and "var" or open == "{%" and "block" or open == "{#" and "comment"
    local modifier = s and src:sub(s + 2, s + 2)
    if modifier ~= "-" and modifier ~= "+" then modifier = nil end
    if kind == "var" and modifier == "+" then modifier = nil end
    emit_data(src:sub(pos, data_end), pos, kind, modifier)
    if not s then break end
    pos = s + 2 + (modifier and 1 or 0)

    if kind == "comment" then
      local e = src:find("#}", pos, true)
      if not e then fail("unterminated comment", s) end
      local m = src:sub(e - 1, e - 1)
      after_close("comment", (m == "-" or m == "+") and e - 1 >= pos and m or nil)
      pos = e + 2
    else
      -- raw blocks: {% raw %} ... {% endraw %} is data as written (Jinja2 trims no newline after
      -- the opening tag; the closing tag strips and trims as any block tag)
      local close_mod, body_start = nil, nil
      if kind == "block" then close_mod, body_start = src:match("^%s*raw%s*([-+]?)%%}()", pos) end
      if body_start then
        local rs, re_, endmod_open, endmod_close = src:find("{%%([-+]?)%s*endraw%s*([-+]?)%%}", body_start)
        if not rs then fail("missing endraw", s) end
        local body = src:sub(body_start, rs - 1)
        if close_mod == "-" then body = body:gsub("^%s+", "") end
        if endmod_open == "-" then body = body:gsub("%s+$", "")
        elseif endmod_open ~= "+" then
          local last_nl = body:match(".*()\n")
          if last_nl and body:sub(last_nl + 1):match("^[ \t]*$") then body = body:sub(1, last_nl) end
        end
        if body ~= "" then push("data", body, body_start) end
        after_close("block", endmod_close ~= "" and endmod_close or nil)
        pos = re_ + 1
      else
        push(kind == "var" and "var_begin" or "block_begin", nil, s)
        local closer = kind == "var" and "}}" or "%}"
        local depth = 0
        while true do
          local ws_end = src:find("[^ \t\n]", pos)
          if not ws_end then fail(("unexpected end of template, expected '%s'"):format(closer), s) end
          pos = ws_end
          local c = src:sub(pos, pos)
          if depth == 0 and (src:sub(pos, pos + 1) == closer
              or ((c == "-" or (c == "+" and kind == "block")) and src:sub(pos + 1, pos + 2) == closer)) then
            local m = (c == "-" or c == "+") and c or nil
            push(kind == "var" and "var_end" or "block_end", nil, pos)
            pos = pos + 2 + (m and 1 or 0)
            after_close(kind, m)
            break
          end
          if c == "'" or c == '"' then
            local e = pos + 1
            while true do
              local q = src:find("[\\" .. c .. "]", e)
              if not q then fail("unterminated string", pos) end
              if src:sub(q, q) == "\\" then e = q + 2 else e = q; break end
            end
            push("string", unescape(src:sub(pos + 1, e - 1)), pos)
            pos = e + 1
          elseif c:match("[%a_]") then
            local name = src:match("^[%w_]+", pos)
            push("name", name, pos)
            pos = pos + #name
          elseif c:match("%d") then
            local num = src:match("^%d[%d_]*%.%d[%d_]*[eE][-+]?%d+", pos)
              or src:match("^%d[%d_]*%.%d[%d_]*", pos) or src:match("^%d[%d_]*[eE][-+]?%d+", pos)
            if num then
              push("float", tonumber((num:gsub("_", ""))) + 0.0, pos)
            else
              num = src:match("^0[xX]%x+", pos) or src:match("^0[oO][0-7]+", pos)
                or src:match("^0[bB][01]+", pos) or src:match("^%d[%d_]*", pos)
              local clean = num:gsub("_", "")
              local v
              if clean:match("^0[oO]") then v = tonumber(clean:sub(3), 8)
              elseif clean:match("^0[bB]") then v = tonumber(clean:sub(3), 2)
              else v = math.tointeger(tonumber(clean)) or tonumber(clean) end
              push("int", v, pos)
            end
            pos = pos + #num
          else
            local op
            for _, o in ipairs(OPERATORS) do
              if src:sub(pos, pos + #o - 1) == o then op = o; break end
            end
            if not op then fail(("unexpected character '%s'"):format(c), pos) end
            if op == "(" or op == "[" or op == "{" then depth = depth + 1
            elseif op == ")" or op == "]" or op == "}" then
              if depth == 0 then fail(("unexpected '%s'"):format(op), pos) end
              depth = depth - 1
            end
            push("op", op, pos)
            pos = pos + #op
          end
        end
      end
    end
  end
  push("eof", nil, n + 1)
  return tokens
end

return L
