-- slua serve: an OpenAI-compatible HTTP server where every request may pick its decoder
-- (docs/spec/serve.md; README, "Serving: lm-evaluation-harness and the OpenAI SDK").
--
-- Usage: slua serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--api-key KEY[,KEY2]]
--          [--api-key-file F] [--served-model-name NAME[,ALIAS]] [--parallel 8] [--max-queue 256]
--          [--max-connections 64] [--max-body 8388608] [--header-timeout 10] [--body-timeout 60]
--          [--keepalive-timeout 60] [--shutdown-grace 30] [--chat-template FILE|NAME]
--          [--default-recipe greedy] [--recipes all|a,b] [--max-logprobs 20] [--metrics]
--          [--no-slots] [--strict-context] [--n-ctx N] [--intervene SPEC] [--threads N]
--          [the default recipe's options, as its defaults]
-- --batch, --recipe and --drain-seconds are other names of --parallel, --default-recipe and
-- --shutdown-grace. Flags that are not the server's are the default recipe's options (checked
-- by it at start): they apply to requests that choose no recipe, under their own fields.
-- Listens on 127.0.0.1 unless --host says otherwise, and prints "slua: listening on
-- http://HOST:PORT" on stderr once it answers. Every flag has an environment twin
-- (SLUA_SERVE_API_KEY, ...); the flag wins. SIGINT / SIGTERM stop accepting, let running
-- requests finish for --shutdown-grace seconds, and exit 0; a second signal exits at once.
local sl = require "slua"
local core = require "slua.core"
local chat = require "slua.chat"
local serve = require "slua.serve"

local declared = {
  model = { default = "", help = 'model directory ("" = the bundled stories260K)' },
  host = { default = "127.0.0.1", help = "address to listen on (0.0.0.0 for every interface)" },
  port = { default = 8080, min = 0, max = 65535, help = "port (0 = any free one)" },
  api_key = { default = "", help = "accepted Bearer keys, comma-separated (none: no authentication)" },
  api_key_file = { default = "", help = "a file of accepted keys, one per line" },
  served_model_name = { default = "", help = "the model's name and aliases, comma-separated (default: the folder name)" },
  parallel = { default = 8, min = 1, max = 256, help = "sequences decoded together (continuous batching)" },
  max_queue = { default = 256, min = 1, help = "sequences that may wait for a slot; beyond it requests get 429" },
  max_connections = { default = 64, min = 1, max = 1000, help = "open connections at most" },
  max_body = { default = 8388608, min = 1024, help = "request body limit in bytes (413 beyond it)" },
  header_timeout = { default = 10.0, gt = 0, help = "seconds a new connection has to send its request" },
  body_timeout = { default = 60.0, gt = 0, help = "seconds a request has to send its body" },
  keepalive_timeout = { default = 60.0, gt = 0, help = "seconds an idle connection is kept" },
  shutdown_grace = { default = 30.0, min = 0, help = "seconds running requests get after SIGTERM" },
  chat_template = { default = "", help = "chat template (a file or a bundled name) instead of the model's" },
  default_recipe = { default = "greedy", help = "the decoder of requests that name none" },
  recipes = { default = "all", help = "recipes requests may choose: all, or a comma-separated list" },
  max_logprobs = { default = 20, min = 0, max = 1000, help = "the largest logprobs / top_logprobs a request may ask" },
  metrics = { default = false, help = "serve GET /metrics (Prometheus text)" },
  no_slots = { default = false, help = "do not serve GET /slots" },
  strict_context = { default = false, help = "a request past the context is a 400 instead of being clamped" },
  n_ctx = { default = 0, min = 0, help = "context of each sequence (0 = max_position_embeddings)" },
  intervene = { default = "", help = "activation interventions every request runs with (a JSON spec)" },
  threads = 0,
  weights = { default = "stored", choices = { "stored", "q8_0" }, help = "q8_0: 8-bit weights (lossy, not HF-exact)" },
  compute = { default = "exact", choices = { "exact", "bf16" },
              help = "bf16: the matrix products' inputs rounded to BF16 (lossy, not HF-exact)" },
}

-- Environment twins: SLUA_SERVE_<FLAG> before the command line's flags; then the command
-- line, split into the server's flags and the default recipe's.
local RENAMED = { batch = "parallel", recipe = "default_recipe", drain_seconds = "shutdown_grace" }
local argv, recipe_argv = { [0] = arg[0] }, { [0] = arg[0] }
for name, spec in pairs(declared) do
  local v = os.getenv("SLUA_SERVE_" .. name:upper())
  if v and v ~= "" then
    local flag = "--" .. name:gsub("_", "-")
    local default = spec
    if type(spec) == "table" then default = spec.default end
    if type(default) == "boolean" then
      if v == "1" or v == "true" then argv[#argv + 1] = flag end
    else
      argv[#argv + 1], argv[#argv + 2] = flag, v
    end
  end
end
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local key, value = a:match("^%-%-([%w_%-]+)=(.*)$")
    key = (key or a:match("^%-%-([%w_%-]+)$") or ""):gsub("%-", "_")
    key = RENAMED[key] or key
    local spec = declared[key]
    local mine = spec ~= nil or key == "help" or key == "config"
    local list = mine and argv or recipe_argv
    local flag = "--" .. key:gsub("_", "-")
    local default = spec
    if type(spec) == "table" then default = spec.default end
    local boolean = type(default) == "boolean"
    if value then
      list[#list + 1] = flag .. "=" .. value
    elseif key ~= "" and not boolean and key ~= "help" and arg[i + 1] and not (mine == false and arg[i + 1]:match("^%-%-")) then
      list[#list + 1], list[#list + 2] = flag, arg[i + 1]
      i = i + 1
    else
      list[#list + 1] = key ~= "" and flag or a
    end
    i = i + 1
  end
end
local opt = sl.options(argv, declared)
sl.set_threads(opt.threads)

local keys = {}
for k in opt.api_key:gmatch("[^,%s]+") do keys[#keys + 1] = k end
if opt.api_key_file ~= "" then
  local text, err = core.fs.read(opt.api_key_file)
  if not text then sl.fail(err or (opt.api_key_file .. ": cannot read"), 2) end
  for line in text:gmatch("[^\n]+") do
    local k = line:match("^%s*(.-)%s*$")
    if k ~= "" and not k:match("^#") then keys[#keys + 1] = k end
  end
end

local model = sl.check(sl.load(opt.model ~= "" and opt.model or nil, sl.load_options(opt)))
local names = {}
for n in opt.served_model_name:gmatch("[^,]+") do names[#names + 1] = n end
if #names == 0 then names[1] = model.path:gsub("/+$", ""):match("[^/]+$") end

local template, template_text = nil, nil
if opt.chat_template ~= "" then
  local cfg = chat.config(model.path) or { templates = {} }
  template_text = chat.select_template(cfg, opt.chat_template, false)
  if not template_text then sl.fail(("option --chat-template: '%s' is not a file or a bundled template"):format(opt.chat_template), 2) end
  template = template_text
else
  local cfg = chat.config(model.path)
  template_text = cfg and cfg.templates and cfg.templates.default or nil
end

local allowed = nil
if opt.recipes ~= "all" then
  allowed = {}
  for n in opt.recipes:gmatch("[^,%s]+") do allowed[n] = true end
  allowed[opt.default_recipe] = true
end
local default_recipe = sl.try_option(sl.recipe.load, opt.default_recipe)
-- the default recipe's options given here: checked now, kept as given
local recipe_defaults = {}
if #recipe_argv > 0 then
  recipe_argv[0] = "slua serve (options of recipe " .. opt.default_recipe .. ")"
  local ok, parsed = pcall(default_recipe.options, default_recipe, recipe_argv)
  if not ok then
    local msg = type(parsed) == "table" and parsed.message or tostring(parsed)
    local flag = msg:match("^unknown option (%-%-[%w_%-]+)")
    if flag then
      msg = ("unknown option %s (neither slua serve's nor recipe %s's; see slua serve --help)"):format(flag,
        opt.default_recipe)
    end
    sl.fail(msg, 2)
  end
  for i = 1, #recipe_argv do
    local k = recipe_argv[i]:match("^%-%-([%w_%-]+)")
    if k then k = k:gsub("%-", "_"); recipe_defaults[k] = parsed[k] end
  end
end

local intervention = nil
if opt.intervene ~= "" then intervention = sl.intervene.load(model, opt.intervene) end

local server = serve.new{
  model = model, names = names, api_keys = keys, parallel = opt.parallel, max_queue = opt.max_queue,
  chat_template = template, chat_template_text = template_text, default_recipe = opt.default_recipe,
  recipes = allowed, max_logprobs = opt.max_logprobs, metrics = opt.metrics, slots = not opt.no_slots,
  strict_context = opt.strict_context, context = opt.n_ctx > 0 and opt.n_ctx or model.config.max_position,
  intervention = intervention, intervene_file = opt.intervene ~= "" and opt.intervene or nil,
  recipe_defaults = recipe_defaults,
}

local http, err = core.http_server{
  host = opt.host, port = opt.port, max_body = opt.max_body, max_connections = opt.max_connections,
  header_timeout = opt.header_timeout, body_timeout = opt.body_timeout, idle_timeout = opt.keepalive_timeout,
}
if not http then sl.fail("serve: " .. err, err:find("^%-%-host") and 2 or 1) end -- a bad --host is a usage error
local loopback = opt.host == "127.0.0.1" or opt.host == "localhost" or opt.host == "::1"
if not loopback and #keys == 0 then
  io.stderr:write(("slua: warning: listening on %s without --api-key: anyone who reaches it can use it\n"):format(opt.host))
end
core.fs.trap_interrupt(true, true)
io.stderr:write(("slua: listening on http://%s:%d\n"):format(opt.host:find(":", 1, true) and "[" .. opt.host .. "]" or opt.host,
  http:port()))
io.stderr:flush()

local deadline
while true do
  local reqs = http:poll(server:idle() and 0.05 or 0)
  for _, req in ipairs(reqs) do server:handle(req) end
  server:step()
  if core.fs.interrupted() and not server.draining then
    server.draining = true
    http:quiesce()
    deadline = core.clock() + opt.shutdown_grace
  end
  if server.draining and (server:idle() or core.clock() > deadline) then break end
end
-- the answers already given reach their clients before the connections close
while http:busy() > 0 and core.clock() <= deadline do
  for _, req in ipairs(http:poll(0.02)) do server:handle(req) end
end
http:close()
