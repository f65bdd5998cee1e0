-- What a new user meets first: slua chat at the end of the context (a cut reply says so, the
-- oldest turns make room), /stats after /reset, one error prefix, stats lines on their own line
-- in piped mode; slua sweep takes the run options; sl.invoke's result for one run.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
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

os.execute("rm -rf " .. T.q(tmp))
T.finish()
