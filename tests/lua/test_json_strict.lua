-- Every recipe's JSON output is strict RFC 8259 JSON, checked by Python's parser with NaN and
-- Infinity rejected and UTF-8 decoded strictly (tests/support/strict_json.py): normal runs with
-- a prompt holding invalid UTF-8, masked (-inf) scores, NaN logits, usage and load errors
-- (nothing on stdout) and Ctrl-C.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local q, read = T.q, T.read

local files = {}

-- Runs slua with args, stdout into tmp/<name>; returns the exit status. With sigint_after_step
-- = N, SIGINT goes once the run has announced its N-th step (SLUA_PROGRESS), not after a delay.
local function run_to(name, args, sigint_after_step)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = q(a) end
  local path = tmp .. "/" .. name
  files[#files + 1] = path
  local cmd = ("%s %s >%s 2>%s.stderr"):format(q(slua), table.concat(quoted, " "), q(path), q(path))
  if sigint_after_step then
    os.remove(path .. ".stderr")   -- the wait below must not see the step lines of an earlier run
    cmd = ("SLUA_PROGRESS=1 %s & pid=$!; for i in $(seq 1200); do grep -qx 'slua: step %d' %s.stderr && break; sleep 0.05; done; "
      .. "kill -INT $pid; wait $pid; echo $? >%s.status"):format(cmd, sigint_after_step, q(path), q(path))
    os.execute(cmd)
    return tonumber(read(path .. ".status"))
  end
  local _, _, code = os.execute(cmd)
  return code
end

local recipes = {}
for line in io.popen("ls " .. q(SLUA_ROOT .. "/recipes")):lines() do
  local name = line:match("^(.+)%.lua$")
  if name then recipes[#recipes + 1] = name end
end

-- invalid UTF-8 (a lone continuation byte, a truncated sequence), CJK (byte-fallback tokens)
local prompt = "Once upon a time \x80 \xe4\xb8 \xe4\xb8\xad\xe5\x9b\xbd"

-- What some recipes cannot run without: heads, a directions file, an emphasised span, a
-- corrupted prompt of the same length (the prompt's ids with one changed).
local required = {
  decore = { "--retrieval-heads", "2:0,2:3" },
  iti = { "--directions", SLUA_ROOT .. "/tests/data/iti/stories260K.safetensors" },
  pasta = { "--span", "1:3" },
}
do
  local m <close> = sl.check(sl.load())
  local ids = m.tokenizer:encode(prompt, { special = true })
  ids[2] = ids[2] + 1
  required.patching = { "--corrupted-ids", table.concat(ids, ",") }
end

T.case("every recipe writes strict JSON, or nothing on stdout when it fails", function()
  T.truthy(#recipes >= 11, "found the recipes")
  for _, name in ipairs(recipes) do
    local help = io.popen(("%s %s --help"):format(q(slua), name)):read("a")
    local args = { name, "--format", "json", "--prompt", prompt }
    if help:find("--max-new-tokens", 1, true) then
      args[#args + 1], args[#args + 2] = "--max-new-tokens", "6"
    end
    if name == "logit_lens" then args[#args + 1], args[#args + 2] = "--max-new-tokens", "2" end
    for _, a in ipairs(required[name] or {}) do args[#args + 1] = a end
    T.eq(run_to(name .. ".json", args), 0, name .. ": " .. read(tmp .. "/" .. name .. ".json.stderr"))
    local r = assert(sl.json.decode(read(tmp .. "/" .. name .. ".json")))
    if r.options then
      -- one U+FFFD per maximal ill-formed subpart: the truncated "\xe4\xb8" is one
      T.eq(r.options.prompt, "Once upon a time \u{FFFD} \u{FFFD} \u{4E2D}\u{56FD}", name .. ": invalid bytes become U+FFFD")
    end
    T.eq(run_to(name .. ".usage.err", { name, "--format", "json", "--threads", "-1" }), 2, name .. " usage error")
    T.eq(run_to(name .. ".load.err", { name, "--format", "json", "--model", tmp .. "/none" }), 1, name .. " load error")
  end
end)

T.case("DoLa's top lists only the tokens that survived the relative-top filter", function()
  T.eq(run_to("dola_masked.json", { "dola", "--format", "json", "--max-new-tokens", "8" }), 0, "dola")
  local text = read(tmp .. "/dola_masked.json")
  T.truthy(not text:find(",null]", 1, true), "no masked token is listed")
  T.truthy(not text:find("Infinity", 1, true) and not text:find("NaN", 1, true), "no non-standard constants")
  local cut = false
  for i, step in ipairs(sl.json.decode(text).steps) do
    T.eq(#step.top, math.min(8, step.relative_top_kept), ("step %d: top holds the survivors, at most 8"):format(i))
    for k, pair in ipairs(step.top) do
      T.eq(math.type(pair[1]), "integer", ("step %d top %d id"):format(i, k))
      T.eq(type(pair[2]), "number", ("step %d top %d: a score"):format(i, k))
    end
    cut = cut or step.relative_top_kept < 8
  end
  T.truthy(cut, "some step's filter kept fewer than 8 tokens (the case being tested)")
end)

T.case("NaN logits: the dump writes null, generation fails with nothing on stdout", function()
  local dir = tmp .. "/nan"
  assert(os.execute(("cp -r %s %s"):format(q(SLUA_ROOT .. "/models/stories260K"), q(dir))))
  local f = assert(io.open(dir .. "/model.safetensors", "r+b"))
  local n = string.unpack("<I8", f:read(8))
  local header = assert(sl.json.decode(f:read(n)))
  f:seek("set", 8 + n + header["model.norm.weight"].data_offsets[1])
  f:write(string.pack("<I4", 0x7fc00000))
  f:close()
  T.eq(run_to("logits_nan.json", { "logits", "--model", dir, "--format", "json", "--layers", "2" }), 0, "logits dump")
  T.truthy(read(tmp .. "/logits_nan.json"):find("[null,null", 1, true), "NaN written as null")
  T.eq(run_to("greedy_nan.err", { "greedy", "--model", dir, "--format", "json" }), 1, "greedy fails")
end)

T.case("Ctrl-C in JSON mode prints a complete object", function()
  local code = run_to("interrupted.json", { SLUA_ROOT .. "/tests/data/recipes/slow_greedy.lua", "--format", "json",
    "--max-new-tokens", "500", "--prompt", prompt }, 3)
  T.eq(code, 130, "exit status")
  local r = assert(sl.json.decode(read(tmp .. "/interrupted.json")))
  T.eq(r.stop_reason, "interrupted", "stop reason")
  T.truthy(#r.new_ids >= 3 and #r.new_ids < 500, "the steps announced before the signal: " .. #r.new_ids)
end)

T.case("Python's strict parser accepts every output", function()
  local python = io.popen("command -v python3"):read("l")
  T.truthy(python, "python3 is installed (scripts/install-deps.sh)")
  local quoted = {}
  for i, p in ipairs(files) do quoted[i] = q(p) end
  local p = io.popen(("%s %s/tests/support/strict_json.py %s 2>&1"):format(python, SLUA_ROOT, table.concat(quoted, " ")))
  local report = p:read("a")
  T.truthy(p:close(), "strict JSON:\n" .. report)
  T.eq(select(2, report:gsub("\nok ", "")) + (report:find("^ok ") and 1 or 0), #files, "every file was checked")
end)

os.execute("rm -rf " .. q(tmp))
T.finish()
