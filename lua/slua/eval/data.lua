-- Data files of the evaluations: CSV (pandas.read_csv / Python csv semantics: quoted fields
-- with "" escapes and embedded newlines), TSV, JSON and JSON Lines, read plain or from .xz
-- (the bundled copies under data/ are compressed).
local sl = require "slua"

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

-- Rows of a delimited file as arrays of strings.
function data.parse_delimited(text, delim, path)
  delim = delim or ","
  local rows, row, field = {}, {}, {}
  local i, n = 1, #text
  local quoted, line = false, 1
  while i <= n do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' then
        if text:sub(i + 1, i + 1) == '"' then
          field[#field + 1] = '"'
          i = i + 1
        else
          quoted = false
        end
      else
        if c == "\n" then line = line + 1 end
        field[#field + 1] = c
      end
    elseif c == '"' and #field == 0 then
      quoted = true
    elseif c == delim then
      row[#row + 1] = table.concat(field)
      field = {}
    elseif c == "\n" or c == "\r" then
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      row[#row + 1] = table.concat(field)
      rows[#rows + 1] = row
      row, field = {}, {}
      line = line + 1
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  if quoted then sl.fail(("%s: unterminated quoted field (line %d)"):format(path or "data", line)) end
  if #field > 0 or #row > 0 then
    row[#row + 1] = table.concat(field)
    rows[#rows + 1] = row
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
