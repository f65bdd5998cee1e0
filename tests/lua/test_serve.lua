-- slua serve end to end, over loopback: the official `openai` npm client (pinned in
-- tests/serve/package.json, installed from the npm registry into the build folder) and the raw
-- requests of lm-evaluation-harness (tests/serve/openai_client.mjs), load and shutdown
-- (tests/serve/load.mjs). Expected values come from the CLI and lm_score on the same model.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local core = require "slua.core"

local slua = arg[1] or "build/slua"
local build = slua:gsub("[^/]+$", "")
local npm_dir = build .. "serve-npm"
local tmp = T.tmpdir()
local KEY = "sk-test-" .. tostring(core.fs.pid())

-- the client, once per build folder
if not T.read_file(npm_dir .. "/node_modules/openai/package.json") then
  local src = SLUA_ROOT .. "/tests/serve/"
  local out, ok = T.run(("mkdir -p %s && cp %spackage.json %spackage-lock.json %s/ && cd %s && npm ci --no-audit --no-fund")
    :format(T.q(npm_dir), src, src, T.q(npm_dir), T.q(npm_dir)))
  if not ok then error("npm ci of the openai client failed (the npm registry must be reachable):\n" .. out) end
end
for _, f in ipairs{ "openai_client.mjs", "load.mjs" } do
  T.write(npm_dir .. "/" .. f, T.read(SLUA_ROOT .. "/tests/serve/" .. f))
end

-- what the answers must be: the CLI's tokens and lm_score's sums on the same model
local function cli_json(args)
  local out, ok = T.run(("{ %s %s --format json 2>/dev/null; }"):format(slua, args))
  if not ok then error(args .. " failed:\n" .. out) end
  return sl.json.decode(out)
end
local P, P2 = { 1, 403, 407, 261, 378 }, { 1, 346, 306, 414, 263, 304, 341 }
local ids = table.concat(P, ",")
local model = sl.check(sl.load())
local expect = {
  prompt_ids = P, prompt_ids_2 = P2, prompt_text = "Once upon a time", seed = 7,
  prompt_decoded = model.tokenizer:decode(P, { skip_special = true }),
  greedy_text = cli_json("recipes/greedy.lua --prompt-ids " .. ids .. " --max-new-tokens 12").text,
  sample_text = cli_json("recipes/sample.lua --prompt-ids " .. ids .. " --max-new-tokens 12 --temperature 0.8 --seed 7").text,
  dola_text = cli_json("recipes/dola.lua --prompt-ids " .. ids .. " --max-new-tokens 8 --dola-layers high").text,
  sld_text = cli_json("recipes/skiplayer_sld.lua --prompt-ids " .. ids .. " --max-new-tokens 8").text,
  roundtrip = { "Once upon a time, there was a dog.", "Hello world!", "a  b\tc\n\nd" },
  loglik = {},
}
local s = model:session{ n_ctx = 512 }
for _, case in ipairs{ { P, 4 }, { P2, 3 }, { { 1, 403, 407, 261, 378, 11, 612 % 512 }, 5 } } do
  local r = core.lm_score(s, case[1], case[2], { reuse_prefix = false })
  expect.loglik[#expect.loglik + 1] = { ids = case[1], ctxlen = case[2], lm_score = r.log_prob }
end
-- DoLa-scored, as `slua eval` scores with --early-exit-layers (dynamic DoLa, the "high" layers)
local layers = require("slua.decoders.dola").layers("high", model)
local r = core.lm_score(s, P2, 3, { mode = #layers == 1 and "dola-static" or "dola", premature = layers,
                                     mature_layer = model.n_layer, relative_top = 0.1, reuse_prefix = false })
expect.loglik_dola = { ids = P2, ctxlen = 3, lm_score = r.log_prob }
T.write(tmp .. "/expect.json", sl.json.encode(expect))

-- a server in the background: its pid, once it says it listens
local function start(args)
  local err = tmp .. "/serve.err"
  os.remove(err)
  local p = io.popen(("%s serve --port 0 --api-key %s %s 2>%s >/dev/null & echo $!"):format(slua, KEY, args, err))
  local pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 600 do
    local text = T.read_file(err) or ""
    local port = text:match("listening on http://127%.0%.0%.1:(%d+)")
    if port then return pid, "http://127.0.0.1:" .. port, err end
    if text:find("slua:", 1, true) and not port and text:find("\n", 1, true) then error("serve failed: " .. text) end
    core.sleep(0.05)
  end
  error("serve did not start: " .. (T.read_file(err) or ""))
end

local function wait_exit(pid)
  local out = T.run(("while kill -0 %d 2>/dev/null; do sleep 0.05; done; echo gone"):format(pid))
  return out
end

local function node(script, env)
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = ("%s=%s"):format(k, T.q(v)) end
  return T.run(("cd %s && %s node %s"):format(T.q(npm_dir), table.concat(vars, " "), script))
end

T.case("the openai npm client and lm-eval's requests", function()
  local pid, base = start("--chat-template chatml --metrics --header-timeout 2 --parallel 8")
  local out, ok = node("openai_client.mjs", { SLUA_BASE = base, SLUA_KEY = KEY, SLUA_EXPECT = tmp .. "/expect.json" })
  io.write(out)
  os.execute("kill -TERM " .. pid)
  wait_exit(pid)
  T.truthy(ok, "every client case passed")
end)

T.case("200 requests against --max-queue 8: 200s and 429s, none lost or doubled", function()
  local pid, base = start("--max-queue 8 --parallel 2 --max-connections 256")
  local out, ok = node("load.mjs", { SLUA_BASE = base, SLUA_KEY = KEY, SLUA_MODE = "flood" })
  io.write(out)
  os.execute("kill -TERM " .. pid)
  wait_exit(pid)
  T.truthy(ok, out)
end)

T.case("SIGTERM under load: running requests finish, then the server exits 0", function()
  local err = tmp .. "/drain.err"
  local status = tmp .. "/drain.status"
  local pidfile = tmp .. "/drain.pid"
  os.execute(("(%s serve --port 0 --api-key %s --metrics 2>%s >/dev/null & echo $! >%s; wait $!; echo $? >%s) "
    .. ">/dev/null 2>&1 &"):format(slua, KEY, err, pidfile, status))
  local base
  for _ = 1, 600 do
    local port = (T.read_file(err) or ""):match("listening on http://127%.0%.0%.1:(%d+)")
    if port then base = "http://127.0.0.1:" .. port; break end
    core.sleep(0.05)
  end
  T.truthy(base, "started")
  local pid = tonumber((T.read_file(pidfile) or ""):match("%d+"))
  local out, ok = node("load.mjs", { SLUA_BASE = base, SLUA_KEY = KEY, SLUA_MODE = "drain", SLUA_PID = tostring(pid) })
  io.write(out)
  T.truthy(ok, out)
  for _ = 1, 600 do
    if T.read_file(status) then break end
    core.sleep(0.05)
  end
  T.eq((T.read_file(status) or ""):match("%d+"), "0", "exit status")
end)

T.finish()
