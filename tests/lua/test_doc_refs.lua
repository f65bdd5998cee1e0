-- Every "§" citation in the code, recipes, tests and docs names a document of docs/spec/ (on its
-- line or the line before), and every section it cites is a heading of that document.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"

local SPEC = SLUA_ROOT .. "/docs/spec/"
local SELF = "tests/lua/test_doc_refs.lua"

-- The section numbers of a document: "3" for "## 3. ...", "3.5" for "### 3.5 ...".
local headings = {}
local function sections(doc)
  if headings[doc] == nil then
    local text = T.read(SPEC .. doc)
    local set = false
    if text ~= "" then
      set = {}
      for num in text:gmatch("\n#+ (%d+[%.%d]*)") do set[(num:gsub("%.$", ""))] = true end
    end
    headings[doc] = set
  end
  return headings[doc]
end

local function files()
  local list = {}
  local cmd = ("cd %s && find src lua recipes tests docs bench examples tools README.md -type f "
    .. "\\( -name '*.c' -o -name '*.h' -o -name '*.lua' -o -name '*.md' -o -name '*.sh' \\) "
    .. "-not -path 'docs/spec/*' -not -path 'tests/data/*' -not -path 'tests/fuzz/corpus/*' 2>/dev/null"):format(T.q(SLUA_ROOT))
  local p = assert(io.popen(cmd))
  for line in p:lines() do
    if line ~= SELF then list[#list + 1] = line end
  end
  p:close()
  table.sort(list)
  return list
end

-- The citations of root/path: {line = n, doc = "decoding.md" or nil, section = "3.3"}.
local function citations(root, path)
  local out, prev = {}, ""
  local n = 0
  for line in (T.read(root .. "/" .. path) .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find("§", 1, true) then
      local doc
      for name in (prev .. " " .. line):gmatch("([%w_%-]+%.md)") do doc = name end
      for num in line:gmatch("§(%d+[%.%d]*)") do
        out[#out + 1] = { line = n, doc = doc, section = (num:gsub("%.$", "")) }
      end
      for num in line:gmatch("§%d+[%.%d]*%-(%d+[%.%d]*)") do -- the end of a range "§3.5-3.6"
        out[#out + 1] = { line = n, doc = doc, section = (num:gsub("%.$", "")) }
      end
    end
    prev = line
  end
  return out
end

T.case("the spec documents are in the tree", function()
  T.truthy(sections("decoding.md") and sections("decoding.md")["3.3"], "docs/spec/decoding.md has §3.3")
  T.truthy(sections("evals.md") and sections("evals.md")["2.5"], "docs/spec/evals.md has §2.5")
end)

T.case("every § citation names an in-tree document and one of its sections", function()
  local checked, bad = 0, {}
  for _, path in ipairs(files()) do
    for _, c in ipairs(citations(SLUA_ROOT, path)) do
      checked = checked + 1
      local where = ("%s:%d"):format(path, c.line)
      if not c.doc then
        bad[#bad + 1] = where .. ": cites §" .. c.section .. " of no document"
      elseif not sections(c.doc) then
        bad[#bad + 1] = where .. ": " .. c.doc .. " is not in docs/spec/"
      elseif not sections(c.doc)[c.section] then
        bad[#bad + 1] = where .. ": " .. c.doc .. " has no §" .. c.section
      end
    end
  end
  T.truthy(checked >= 8, ("found %d citations (the tree cites decoding.md and evals.md)"):format(checked))
  T.eq(table.concat(bad, "\n"), "", "citations")
end)

T.case("the checker sees a citation it cannot resolve", function()
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/x.c", "w"))
  f:write("/* spec §3.3 */\n/* decoding.md §99 */\n")
  f:close()
  local got = citations(dir, "x.c")
  os.remove(dir .. "/x.c")
  os.remove(dir)
  T.eq(#got, 2, "two citations")
  T.eq(got[1].doc, nil, "the first names no document")
  T.eq(got[2].doc, "decoding.md", "the second names decoding.md")
  T.eq(sections("decoding.md")[got[2].section], nil, "decoding.md has no §99")
end)

T.finish()
