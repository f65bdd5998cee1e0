-- The README's code blocks run as written on the bundled model. The rule (also in the README's
-- Tests section): a fenced `sh` block runs in bash (set -e) from the repository root, with a
-- command `slua` and the path ./build/slua meaning the binary under test; a `lua` block marked
-- by the line `<!-- readme-test: run as a recipe -->` before it runs as a recipe file with no
-- flags; a block is skipped only when the line before it is `<!-- readme-test: skip (why) -->`.
-- Any other block fails, so a new example cannot be left unchecked by accident; so does an
-- unmarked block that runs make or cmake (the test suite must not build itself).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"

local slua = arg[1] or "build/slua"
if not slua:match("^/") then slua = SLUA_ROOT .. "/" .. slua end
local tmp = T.tmpdir()
local q, read = T.q, T.read

local write = T.write

-- The fenced blocks of a Markdown file: { lang, code, line, marker } (marker: the
-- readme-test comment on the line before the fence, if any).
local function blocks(path)
  local out, current, previous, n = {}, nil, "", 0
  for line in io.lines(path) do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        out[#out + 1] = current
        current = nil
      else
        current.code = current.code .. line .. "\n"
      end
    else
      local lang = line:match("^```(%S*)")
      if lang then
        current = { lang = lang, code = "", line = n, marker = previous:match("^<!%-%- readme%-test: (.-) %-%->$") }
      elseif line:match("%S") then
        previous = line
      end
    end
  end
  assert(not current, "unterminated code block at line " .. (current and current.line or 0))
  return out
end

-- Runs a command; returns its exit status, stdout and stderr.
local function exec(cmd)
  local _, _, code = os.execute(("%s >%s/out 2>%s/err"):format(cmd, tmp, tmp))
  return code, read(tmp .. "/out"), read(tmp .. "/err")
end

local all = blocks(SLUA_ROOT .. "/README.md")
local ran = 0

T.case("the README has runnable blocks", function()
  T.truthy(#all >= 6, "found the blocks: " .. #all)
end)

for i, b in ipairs(all) do
  local name = ("block %d (README.md line %d, %s)"):format(i, b.line, b.lang)
  T.case(name, function()
    if b.marker and b.marker:match("^skip %(.+%)$") then return end
    if b.lang == "sh" then
      -- a build inside the test suite would recurse into it
      T.truthy(not b.code:match("%f[%w]c?make%f[%W]"), name .. " builds the project: mark it skip")
      local script = ("set -e\ncd %s\nslua() { %s \"$@\"; }\n%s"):format(q(SLUA_ROOT), q(slua),
        (b.code:gsub("%./build/slua", q(slua))))
      write(tmp .. "/block.sh", script)
      local code, out, err = exec("bash " .. q(tmp .. "/block.sh"))
      T.eq(code, 0, name .. " exit status; stderr:\n" .. err)
      T.truthy(#out > 0, name .. " prints something")
      T.truthy(not err:find("traceback", 1, true), name .. " has no traceback:\n" .. err)
    elseif b.lang == "lua" and b.marker == "run as a recipe" then
      write(tmp .. "/block.lua", b.code)
      local code, out, err = exec(("cd %s && %s %s"):format(q(SLUA_ROOT), q(slua), q(tmp .. "/block.lua")))
      T.eq(code, 0, name .. " exit status; stderr:\n" .. err)
      T.truthy(#out > 0, name .. " prints something")
    else
      error(name .. ": neither runnable nor marked <!-- readme-test: skip (why) -->")
    end
    ran = ran + 1
  end)
end

T.case("most blocks ran", function() T.truthy(ran >= 5, "blocks run: " .. ran) end)

os.execute("rm -rf " .. q(tmp))
T.finish()
