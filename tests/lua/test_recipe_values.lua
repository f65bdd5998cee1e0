-- A recipe is a value: every file of recipes/ returns sl.recipe{...}, loadable with require and
-- sl.recipe.load; its declared options are exactly what `slua RECIPE --help` lists; run on a
-- prompt it returns the object `--format json` prints; one value serves many runs at once
-- (sl.generate_many); sl.recipe checks its fields; a plain script still runs as a script.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local function exec(args) return T.exec(slua, args, tmp) end

local names = {}
for line in io.popen("ls " .. T.q(SLUA_ROOT .. "/recipes")):lines() do
  local name = line:match("^(.+)%.lua$")
  if name then names[#names + 1] = name end
end
T.truthy(#names >= 15, "the bundled recipes: " .. #names)

local function flag(key) return "--" .. key:gsub("_", "-") end

-- The flags --help lists: {flag = the rest of its line}.
local function help_flags(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local f, rest = line:match("^  (%-%-[%w%-]+)%s+(.*)$")
    if f then out[f] = rest end
  end
  return out
end

T.case("every recipe returns a value, 20 to 60 lines with its header; --help lists exactly its declared options", function()
  for _, name in ipairs(names) do
    local path = ("%s/recipes/%s.lua"):format(SLUA_ROOT, name)
    local r = require("recipes." .. name)
    T.truthy(sl.recipe.is(r), name .. " returns an sl.recipe value")
    T.eq(r.name, name, name .. ": its name is its file's")
    T.eq(sl.recipe.load(name).name, name, name .. ": sl.recipe.load")
    local n, first = 0, nil
    for line in io.lines(path) do n = n + 1; first = first or line end
    T.truthy(n >= 20 and n <= 60, ("%s: %d lines"):format(name, n))
    T.truthy(first:match("^%-%- %S"), name .. ": starts with its header comment")

    local out, err, code = exec{ name, "--help" }
    T.eq(code, 0, name .. " --help exit status: " .. err)
    T.eq(out, sl.recipe.load(name):help(), name .. ": recipe:help() is what --help prints")
    T.truthy(out:find(first:sub(4), 1, true), name .. ": --help starts from the header")
    local listed = help_flags(out)
    local declared = r:declared()
    local opt = r:options{}   -- defaults as the command line has them (generation_config.json included)
    for key, entry in pairs(declared) do
      local rest = listed[flag(key)]
      T.truthy(rest, ("%s: --help lists %s"):format(name, flag(key)))
      if type(entry) == "table" and entry.alias then
        T.truthy(rest:find("older name of " .. flag(entry.alias), 1, true), name .. ": the alias is noted: " .. rest)
        T.eq(opt[key], nil, name .. ": no option under the alias " .. key)
      else
        local v = opt[key]
        T.truthy(v ~= nil, name .. ": option " .. key)
        local shown = v == "" and '""' or math.type(v) == "float" and ("%.14g"):format(v) or tostring(v):gsub("\n", "\\n")
        T.eq(rest:sub(1, #shown + 1), shown .. " ", ("%s: %s's default"):format(name, flag(key)))
      end
    end
    for f in pairs(listed) do
      if f ~= "--config" and f ~= "--help" then
        T.truthy(declared[f:sub(3):gsub("%-", "_")] ~= nil, ("%s: --help lists %s, which it declares"):format(name, f))
      end
    end
  end
end)

T.case("a recipe value run on a prompt returns the object --format json prints", function()
  local model <close> = sl.check(sl.load())
  for _, case in ipairs{
    { "greedy", { "--max-new-tokens", "6", "--prompt", "The cat" } },
    { "dola", { "--max-new-tokens", "5", "--dola-layers", "low" } },
    { "skiplayer_slh", { "--max-new-tokens", "4", "--skip-blocks", "1:3" } },
    { "beam_search", { "--max-new-tokens", "4", "--num-beams", "3" } },
    { "logits", { "--layers", "2", "--prompt", "Once" } },
  } do
    local name, flags = case[1], case[2]
    local args = { name, "--format", "json" }
    for _, a in ipairs(flags) do args[#args + 1] = a end
    local out, err, code = exec(args)
    T.eq(code, 0, name .. ": " .. err)
    local cli = assert(sl.json.decode(out), out)
    local r = require("recipes." .. name)
    flags[#flags + 1] = "--format"
    flags[#flags + 1] = "json"
    local got = r:run(flags, { model = model })
    T.eq(T.untimed_json(got), T.untimed_json(cli), name .. ": run = the command line's JSON")
    T.eq(T.untimed_json(r(flags, { model = model })), T.untimed_json(cli), name .. ": calling the value runs it")
  end
  -- flags as a table of options, and the model loaded by the run itself
  local r = require("recipes.dola"):run{ prompt = "Once upon a time", max_new_tokens = 4, dola_layers = "low" }
  T.eq(r.recipe, "dola", "recipe")
  T.eq(#r.new_ids, 4, "four tokens")
  T.eq(r.options.dola_layers, "low", "options as given")
  T.raises(function() require("recipes.greedy"):run{ top_k = 3 } end, "unknown option --top-k", "a bad option reaches the caller")
end)

T.case("one value, many runs at once: sl.generate_many equals each run alone", function()
  local model <close> = sl.check(sl.load())
  local dola = require "recipes.dola"
  local runs = {}
  for i, p in ipairs{ "Once upon a time", "The cat", "Tom had a red ball" } do
    runs[i] = { prompt = p, max_new_tokens = 3 + 2 * i }
  end
  local results = sl.generate_many{ recipe = dola, runs = runs, model = model, batch = 3,
                                    options = { dola_layers = "high" } }
  for i, run in ipairs(runs) do
    local alone = dola:run({ prompt = run.prompt, max_new_tokens = run.max_new_tokens, dola_layers = "high",
                             format = "json" }, { model = model })
    T.eq(table.concat(results[i].new_ids, ","), table.concat(alone.new_ids, ","), "run " .. i .. " tokens")
    T.eq(sl.json.encode(results[i].steps[1].candidate_layers), sl.json.encode(alone.steps[1].candidate_layers),
      "run " .. i .. " keeps its own per-run state")
  end
end)

T.case("sl.recipe checks its fields; a plain script is no recipe value but still runs", function()
  T.raises(function() sl.recipe{ name = "x", scorez = function() end } end, "unknown field 'scorez'")
  T.raises(function() sl.recipe{ scores = function() end } end, "field 'name'")
  T.raises(function() sl.recipe{ name = "x", scores = 3 } end, "field 'scores' must be a function")
  T.raises(function() sl.recipe{ name = "x", input = true } end, "an input recipe needs a run function")
  local r = sl.recipe{ name = "inline", sample = false }
  T.truthy(sl.recipe.is(r) and r.file and r.file:find("test_recipe_values.lua", 1, true), "file of an inline value: " .. tostring(r.file))
  local script = SLUA_ROOT .. "/tests/data/recipes/bad_scores.lua"
  T.raises(function() sl.recipe.load(script) end, "returns no sl.recipe{...} value", "a plain script is no value")
  local out, err, code = exec{ script, "--mode", "p_nil", "--max-new-tokens", "3", "--format", "json" }
  T.eq(code, 0, "the plain script runs: " .. err)
  T.eq(#assert(sl.json.decode(out)).new_ids, 3, "as before")
  T.raises(function() sl.recipe.load("no_such_recipe") end, "unknown recipe 'no_such_recipe'")
end)

T.case("no module of lua/slua writes a global or another module's fields, loading or running", function()
  local script = tmp .. "/guard.lua"
  local f = assert(io.open(script, "w"))
  f:write([=[
local written = {}
setmetatable(_G, { __newindex = function(t, k, v) written[#written + 1] = tostring(k); rawset(t, k, v) end })
local modules = {}
for path in io.popen("cd " .. SLUA_ROOT .. "/lua && find slua -name '*.lua' ! -path 'slua/cmd/*' | sort"):lines() do
  local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  modules[#modules + 1] = name
  require(name)
end
-- every field of every loaded module, by identity
local function snapshot()
  local snap = {}
  for name, mod in pairs(package.loaded) do
    if type(mod) == "table" and (name == "slua" or name:match("^slua%.") or name:match("^recipes%.")) then
      for k, v in pairs(mod) do snap[name .. "." .. tostring(k)] = v end
    end
  end
  return snap
end
local sl = require "slua"
local model = sl.check(sl.load())
for _, name in ipairs{ "greedy", "dola", "skiplayer_slh", "beam_search", "speculative", "logit_lens" } do require("recipes." .. name) end
local before = snapshot()
for _, name in ipairs{ "greedy", "dola", "skiplayer_slh", "beam_search", "speculative", "logit_lens" } do
  require("recipes." .. name):run({ max_new_tokens = 2, format = "json" }, { model = model })
end
sl.generate_many{ recipe = "dola", runs = { { prompt = "A" }, { prompt = "B" } }, model = model, options = { max_new_tokens = 2 } }
require("slua.eval").generate(model, "Q: 1+1?\nA:", { recipe = "dola", max_new_tokens = 2 }, { "\n" })
local conv = require("slua.chat.conversation").new(model, sl.recipe.load("dola"),
  sl.recipe.load("dola"):options{ max_new_tokens = 2 }, { template = "chatml" })
conv:add("user", "Hi")
conv:reply()
local after, changed = snapshot(), {}
for k, v in pairs(before) do if after[k] ~= v then changed[#changed + 1] = k end end
for k in pairs(after) do if before[k] == nil then changed[#changed + 1] = k end end
table.sort(changed)
io.write(#modules, " modules; globals written: ", table.concat(written, ","), "; fields changed: ", table.concat(changed, ","), "\n")
]=])
  f:close()
  local out, err, code = exec{ script }
  T.eq(code, 0, "guard script: " .. err)
  local n = tonumber(out:match("^(%d+) modules"))
  T.truthy(n and n >= 45, "every module loaded: " .. out)
  T.truthy(out:find("globals written: ; fields changed: \n", 1, true), out)
end)

os.execute("rm -rf " .. T.q(tmp))
T.finish()
