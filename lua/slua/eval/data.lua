-- Data files of the evaluations: CSV (pandas.read_csv / Python csv semantics: quoted fields
-- with "" escapes and embedded newlines), TSV, JSON and JSON Lines, read plain or from .xz
-- (the bundled copies under data/ are compressed).
local sl = require "slua.util"

local data = {}

-- The bundled data directory.
data.root = sl.root .. "/data"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The whole file as a string; PATH.xz is read through `xz -dc` when PATH itself is absent.
function data.read(path)
  if not exists(path) and exists(path .. ".xz") then path = path .. ".xz" end
  if path:match("%.xz$") then
    local p = io.popen(("xz -dc '%s' 2>/dev/null"):format(path:gsub("'", "'\\''")), "r")
    local text = p and p:read("a")
    local ok = p and p:close()
    if not ok or not text or text == "" then
      sl.fail(("%s: cannot decompress (is xz installed?)"):format(path))
    end
    return text
  end
  local f, err = io.open(path, "rb")
  if not f then sl.fail(("%s: cannot open (%s)"):format(path, err or "?")) end
  local text = f:read("a")
  f:close()
  return text
end

-- Rows of a delimited file as arrays of strings. A field that starts with '"' is quoted ('""'
-- inside is one quote, delimiters and newlines are data); \r\n ends a row like \n.
function data.parse_delimited(text, delim, path)
  delim = delim or ","
  local special = "[" .. (delim == "\t" and "\t" or "%" .. delim) .. "\"\r\n]"
  local rows, row = {}, {}
  local i, n = 1, #text
  while i <= n do
    local field
    if text:sub(i, i) == '"' then
      local parts, j = {}, i + 1
      while true do
        local q = text:find('"', j, true)
        if not q then sl.fail(("%s: unterminated quoted field (row %d)"):format(path or "data", #rows + 1)) end
        parts[#parts + 1] = text:sub(j, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      -- characters after the closing quote up to the delimiter belong to the field (csv module)
      local k = text:find(special, i) or n + 1
      while k <= n and text:sub(k, k) == '"' do k = text:find(special, k + 1) or n + 1 end
      parts[#parts + 1] = text:sub(i, k - 1)
      field, i = table.concat(parts), k
    else
      local k = text:find(special, i) or n + 1
      while k <= n and text:sub(k, k) == '"' do k = text:find(special, k + 1) or n + 1 end
      field, i = text:sub(i, k - 1), k
    end
    row[#row + 1] = field
    local c = text:sub(i, i)
    if c == delim then
      i = i + 1
      if i > n then row[#row + 1] = "" end
    else -- end of row (or of text)
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      rows[#rows + 1] = row
      row = {}
      i = i + 1
    end
  end
  return rows
end

-- A CSV file with a header row -> list of {column = value} (every value a string).
function data.csv_records(path)
  local rows = data.parse_delimited(data.read(path), ",", path)
  local header = rows[1] or sl.fail(path .. ": empty CSV file")
  local out = {}
  for r = 2, #rows do
    local rec = {}
    for j, name in ipairs(header) do rec[name] = rows[r][j] end
    out[#out + 1] = rec
  end
  return out, header
end

function data.json(path)
  local v, err = sl.json.decode(data.read(path))
  if v == nil then sl.fail(("%s: invalid JSON (%s)"):format(path, err or "?")) end
  return v
end

function data.jsonl(path)
  local out, lineno = {}, 0
  for line in (data.read(path) .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if line:match("%S") then
      local v, err = sl.json.decode(line)
      if type(v) ~= "table" then sl.fail(("%s:%d: invalid JSON line (%s)"):format(path, lineno, err or "not an object")) end
      out[#out + 1] = v
    end
  end
  return out
end

-- A column that must exist.
function data.need(rec, column, path)
  local v = rec[column]
  if v == nil then sl.fail(("%s: no column '%s'"):format(path, column)) end
  return v
end

return data
