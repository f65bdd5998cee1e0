-- Python string semantics the official evaluation scripts rely on: str.strip(), str.lower() as
-- far as the answer triggers see it, and re.findall(r'-?\d+\.?\d*', s) where \d is any
-- Unicode decimal digit (category Nd, fullwidth digits included).
local core = require "slua.core"

local text = {}

-- Code points str.isspace() accepts (bidi WS/B/S or category Zs).
local space = {
  [0x09] = true, [0x0A] = true, [0x0B] = true, [0x0C] = true, [0x0D] = true, [0x1C] = true, [0x1D] = true,
  [0x1E] = true, [0x1F] = true, [0x20] = true, [0x85] = true, [0xA0] = true, [0x1680] = true,
  [0x2028] = true, [0x2029] = true, [0x202F] = true, [0x205F] = true, [0x3000] = true,
}
for cp = 0x2000, 0x200A do space[cp] = true end

-- The code points of s as {cp, first byte, last byte}; bytes of invalid UTF-8 count as
-- themselves (Python never sees those, a decoded completion is always valid).
local function codepoints(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local ok, cp = pcall(utf8.codepoint, s, i)
    local len = 1
    if ok then
      len = #utf8.char(cp)
    else
      cp = s:byte(i)
    end
    out[#out + 1] = { cp, i, i + len - 1 }
    i = i + len
  end
  return out
end

-- The code point starting at byte i and the byte after it (an invalid byte counts alone).
local function cp_at(s, i)
  local ok, cp = pcall(utf8.codepoint, s, i)
  if not ok then return s:byte(i), i + 1 end
  return cp, i + #utf8.char(cp)
end

-- The code point ending at byte j and its first byte.
local function cp_before(s, j)
  local i = j
  while i > 1 and j - i < 3 and (s:byte(i) & 0xC0) == 0x80 do i = i - 1 end
  local cp, after = cp_at(s, i)
  if after ~= j + 1 then return s:byte(j), j end
  return cp, i
end

-- str.strip()
function text.strip(s)
  local a, b = 1, #s
  while a <= b do
    local cp, after = cp_at(s, a)
    if not space[cp] then break end
    a = after
  end
  while b >= a do
    local cp, first = cp_before(s, b)
    if not space[cp] then break end
    b = first - 1
  end
  return s:sub(a, b)
end

-- str.lower() for the purpose of finding ASCII triggers ("the answer is", "no"): no other
-- character lowercases to an ASCII letter of those words, so ASCII lowering finds the same
-- matches; non-ASCII bytes are kept as they are.
function text.lower(s) return (s:gsub("%u", string.lower)) end

function text.ends_with(s, suffix) return suffix == "" or s:sub(-#suffix) == suffix end

-- s.split(sep) (plain separator), Python's semantics: n separators give n + 1 parts.
function text.split(s, sep)
  local parts, from = {}, 1
  while true do
    local a, b = s:find(sep, from, true)
    if not a then break end
    parts[#parts + 1] = s:sub(from, a - 1)
    from = b + 1
  end
  parts[#parts + 1] = s:sub(from)
  return parts
end

local function is_digit(cp) return (cp >= 48 and cp <= 57) or (cp > 127 and core.is_decimal_digit(cp)) end

-- re.findall(r'-?\d+\.?\d*', s): the matched substrings, left to right, non-overlapping.
function text.find_numbers(s)
  local cps, out, i = codepoints(s), {}, 1
  local n = #cps
  while i <= n do
    local start = i
    if cps[i][1] == 45 and i < n and is_digit(cps[i + 1][1]) then i = i + 1 end
    if is_digit(cps[i][1]) then
      while i <= n and is_digit(cps[i][1]) do i = i + 1 end
      if i <= n and cps[i][1] == 46 then
        i = i + 1
        while i <= n and is_digit(cps[i][1]) do i = i + 1 end
      end
      out[#out + 1] = s:sub(cps[start][2], cps[i - 1][3])
    else
      i = start + 1
    end
  end
  return out
end

-- clean_answer of gsm8k_eval.py (and MgsmEval._clean_answer): the first number after the
-- first "the answer is" (case-insensitive), else the last number; commas removed; one trailing
-- period dropped. nil when there is no number (GSM8K reports "[invalid]").
function text.clean_answer(pred)
  local parts = text.split(text.lower(pred), "the answer is")
  local flag = #parts > 1
  local s = (flag and parts[2] or parts[#parts]):gsub(",", "")
  local nums = text.find_numbers(s)
  if #nums == 0 then return nil end
  local x = flag and nums[1] or nums[#nums]
  if x:sub(-1) == "." then x = x:sub(1, -2) end
  return x
end

return text
