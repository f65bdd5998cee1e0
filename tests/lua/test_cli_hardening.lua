-- What a new user meets first: slua chat at the end of the context (a cut reply says so, the
-- oldest turns make room), /stats after /reset, one error prefix, stats lines on their own line
-- in piped mode; slua sweep takes the run options; sl.invoke's result for one run.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
if slua:sub(1, 1) ~= "/" then slua = os.getenv("PWD") .. "/" .. slua end  -- some cases run elsewhere
local tmp = T.tmpdir()

-- `printf INPUT | slua ARGS 2>&1`: the combined output, as a user piping into it sees it.
local function piped(input, args)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = T.q(a) end
  local f = assert(io.open(tmp .. "/in", "w"))
  f:write(input)
  f:close()
  return T.run(("%s %s < %s"):format(T.q(slua), table.concat(quoted, " "), T.q(tmp .. "/in")))
end

local chat = { "chat", "--chat-template", "chatml", "--threads", "1" }
local function chat_args(extra)
  local a = {}
  for i, v in ipairs(chat) do a[i] = v end
  for _, v in ipairs(extra) do a[#a + 1] = v end
  return a
end

T.case("chat: a reply cut by the context says so; the next turn makes room by dropping the oldest", function()
  local out, ok = piped("Hi\nTell me more.\n", chat_args{ "--max-new-tokens", "60", "--n-ctx", "64" })
  T.truthy(ok, out)
  local _, cuts = out:gsub("%[cut: the context is full%]", "")
  T.eq(cuts, 2, "both replies say they were cut: " .. out)
  T.truthy(out:find("1 oldest turn dropped to make room", 1, true), "the shift is announced: " .. out)
  T.truthy(not out:find("no longer fits", 1, true), "the second turn is answered: " .. out)
end)

T.case("chat: --no-context-shift says the conversation no longer fits, once prefixed", function()
  local out = piped("Hi\nTell me more.\n", chat_args{ "--max-new-tokens", "60", "--n-ctx", "64", "--no-context-shift" })
  T.truthy(out:find("slua: the conversation %(%d+ tokens%) no longer fits the context %(64%)"), out)
  T.truthy(out:find("--context-shift", 1, true), "the remedy is named: " .. out)
end)

T.case("chat: a template error has one prefix", function()
  local bad = tmp .. "/bad.jinja"
  local f = assert(io.open(bad, "w"))
  f:write("{% if %}")
  f:close()
  local out = piped("Hi\n", { "chat", "--chat-template", bad, "--threads", "1", "--max-new-tokens", "4" })
  T.truthy(out:find("slua: chat template: line 1, column", 1, true), out)
  T.truthy(not out:find("chat template: chat template", 1, true), "no doubled prefix: " .. out)
  f = assert(io.open(bad, "w"))
  f:write("{{ raise_exception('no way') }}")
  f:close()
  out = piped("Hi\n", { "chat", "--chat-template", bad, "--threads", "1", "--max-new-tokens", "4" })
  T.truthy(out:find("slua: chat template: no way", 1, true), out)
end)

T.case("chat: /stats after /reset counts from zero; stats lines start their own line", function()
  local out, ok = piped("Hi\n/reset\n/stats\n", chat_args{ "--max-new-tokens", "6", "--stats" })
  T.truthy(ok, out)
  local stats = {}
  for line in out:gmatch("[^\n]+") do
    local s = line:match("%[turns %d+.*%]")
    if s then
      stats[#stats + 1] = s
      T.truthy(line:match("^%[turns") or line:match("^> %[turns"), "a stats line of its own: '" .. line .. "'")
    end
  end
  T.truthy(stats[1]:find("^%[turns 1,"), "after the first reply: " .. stats[1])
  T.truthy(stats[2]:find("^%[turns 0, tokens in cache 0:"), "/stats after /reset: " .. tostring(stats[2]))
end)

T.case("sl.invoke returns a list holding the run's result, as the README says", function()
  local model = sl.check(sl.load())
  local one = sl.invoke("greedy", { prompt = "Once upon a time", max_new_tokens = 4, threads = 1 }, { model = model })
  T.eq(#one, 1, "greedy: one result")
  T.eq(#one[1].new_ids, 4, "the result of the run")
  local two = sl.invoke("beam_search", { prompt = "The cat", max_new_tokens = 4, num_beams = 3,
                                         num_return_sequences = 2, threads = 1 }, { model = model })
  T.eq(#two, 1, "beam search: one result")
  T.eq(#two[1].sequences, 2, "its num_return_sequences beams")
  -- a plain script has no value to invoke: one clear error, naming how it does run
  local script = tmp .. "/twice.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local sl = require "slua"
for _, n in ipairs{ 3, 5 } do
  sl.generate{ recipe = "twice", opt = sl.run_options({ [0] = "twice", "--max-new-tokens", tostring(n) }, {}) }
end]])
  f:close()
  local ok, err = pcall(sl.invoke, script, { threads = 1 }, { model = model })
  T.eq(ok, false, "invoking a plain script fails")
  local msg = type(err) == "table" and err.message or tostring(err)
  T.truthy(msg:find("returns no sl.recipe{...} value", 1, true) and msg:find("slua " .. script, 1, true), msg)
  T.truthy(T.read(SLUA_ROOT .. "/README.md"):find("`sl.invoke(recipe, options [, {model = m}])` returns a\n**list**", 1, true),
    "the README documents the list")
end)

T.case("slua sweep takes --threads for every run, outside the point ids", function()
  local file = SLUA_ROOT .. "/tests/data/sweep/resume_old.lua"
  local _, err, code = T.exec(slua, { "sweep", file, "--out", tmp .. "/thr", "--threads", "2", "--quiet", "--no-report" }, tmp)
  T.eq(code, 0, "--threads 2: " .. err)
  local ids = {}
  for line in T.read(tmp .. "/thr/results.jsonl"):gmatch("[^\n]+") do
    local r = sl.json.decode(line)
    T.eq(r.options.threads, 2, "every run took the thread count")
    ids[r.point] = true
  end
  -- the same sweep with another thread count resumes: nothing to run
  _, err, code = T.exec(slua, { "sweep", file, "--out", tmp .. "/thr", "--threads", "1", "--quiet", "--no-report" }, tmp)
  T.eq(code, 0, "--threads 1: " .. err)
  T.truthy(err:find("0 runs made", 1, true), "the thread count is not a setting: " .. err)
  _, err, code = T.exec(slua, { "sweep", file, "--out", tmp .. "/thr", "--threads", "many" }, tmp)
  T.eq(code, 2, "a bad --threads: exit code")
  T.truthy(err:find("option --threads expects an integer", 1, true), err)
end)

T.case("the committed example reports carry the point ids of a fresh run, from any folder", function()
  local script = tmp .. "/ids.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local spec = require "slua.sweep.spec"
for _, name in ipairs{ "dola_layers", "skiplayer_span", "truthfulqa_layers" } do
  for _, p in ipairs(spec.load(SLUA_ROOT .. "/examples/sweeps/" .. name .. ".lua").points) do print(name, p.id) end
end]])
  f:close()
  local out, ok = T.run(("cd %s && %s %s"):format(T.q(tmp), T.q(slua), T.q(script)))
  T.truthy(ok, out)
  local fresh = {}
  for name, id in out:gmatch("(%S+)\t(%x+)") do fresh[name] = (fresh[name] or "") .. id .. "\n" end
  for name, dir in pairs{ dola_layers = "dola-layers", skiplayer_span = "skiplayer-span",
                          truthfulqa_layers = "truthfulqa-layers" } do
    local committed = {}
    for id in T.read(SLUA_ROOT .. "/examples/sweeps/" .. dir .. "/report.csv"):gmatch("\n(%x+),") do
      committed[#committed + 1] = id
    end
    local want = {}
    for id in (fresh[name] or ""):gmatch("%x+") do want[#want + 1] = id end
    table.sort(want)
    table.sort(committed)
    T.truthy(#want > 0, name .. ": points")
    T.eq(table.concat(committed, " "), table.concat(want, " "), name .. ": point ids of report.csv")
  end
end)

T.case("a results file of an older slua resumes: its lines are re-keyed, nothing runs again", function()
  local dir = tmp .. "/old"
  os.execute("mkdir -p " .. T.q(dir) .. " && cp " .. T.q(SLUA_ROOT .. "/tests/data/sweep/results_0.1.jsonl") .. " "
    .. T.q(dir .. "/results.jsonl"))
  local old = {}
  for line in T.read(dir .. "/results.jsonl"):gmatch("[^\n]+") do old[#old + 1] = sl.json.decode(line) end
  local _, err, code = T.exec(slua, { "sweep", SLUA_ROOT .. "/tests/data/sweep/resume_old.lua", "--out", dir,
                                      "--quiet", "--no-report" }, tmp)
  T.eq(code, 0, "resume: " .. err)
  T.truthy(err:find("4 lines of an older slua re-keyed", 1, true), "the migration is announced: " .. err)
  T.truthy(err:find("0 runs made", 1, true), "nothing ran again: " .. err)
  local i = 0
  for line in T.read(dir .. "/results.jsonl"):gmatch("[^\n]+") do
    i = i + 1
    local r = sl.json.decode(line)
    T.truthy(r.point ~= old[i].point, "line " .. i .. " has this version's id")
    T.eq(sl.json.encode(r.new_ids), sl.json.encode(old[i].new_ids), "line " .. i .. " keeps its results")
  end
  T.eq(i, 4, "every line kept")
end)

T.case("an older results file of a renamed option (--skip-layers, now --skip-blocks) resumes", function()
  local dir = tmp .. "/old-skip"
  os.execute("mkdir -p " .. T.q(dir) .. " && cp " .. T.q(SLUA_ROOT .. "/tests/data/sweep/results_0.1_skip.jsonl") .. " "
    .. T.q(dir .. "/results.jsonl"))
  local _, err, code = T.exec(slua, { "sweep", SLUA_ROOT .. "/tests/data/sweep/resume_old_skip.lua", "--out", dir,
                                      "--quiet", "--no-report" }, tmp)
  T.eq(code, 0, "resume: " .. err)
  T.truthy(err:find("2 lines of an older slua re-keyed", 1, true), "the migration is announced: " .. err)
  T.truthy(err:find("0 runs made", 1, true), "nothing ran again: " .. err)
end)

T.case("the host's idle workers spin briefly, then sleep, unless the user chose a policy", function()
  local script = tmp .. "/policy.lua"
  local f = assert(io.open(script, "w"))
  f:write('print(os.getenv("OMP_WAIT_POLICY"), os.getenv("GOMP_SPINCOUNT"))')
  f:close()
  local out = T.run(("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT %s %s"):format(T.q(slua), T.q(script)))
  T.eq(out, "nil\t1000\n", "no policy given")
  out = T.run(("env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active %s %s"):format(T.q(slua), T.q(script)))
  T.eq(out, "active\tnil\n", "the user's policy")
  out = T.run(("env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=5 %s %s"):format(T.q(slua), T.q(script)))
  T.eq(out, "nil\t5\n", "the user's spin count")
end)

os.execute("rm -rf " .. T.q(tmp))
T.finish()
