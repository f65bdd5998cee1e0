-- slua.serve: an OpenAI-compatible server (docs/spec/serve.md) over core.http_server. HTTP
-- lives in C threads; this module runs on the Lua thread: it routes each request, answers the
-- small ones at once, and turns each generation choice into a job of one continuous batch
-- (slua.batch.scheduler), so every running choice shares each pass over the weights.
--
--   local server = serve.new{ model = m, names = {"stories260K"}, parallel = 8, ... }
--   server:handle(req)  -- a request from http_server:poll()
--   server:step()       -- one pass of the running generations
local core = require "slua.core"
local util = require "slua.util"
local batch = require "slua.batch"
local chat = require "slua.chat"
local errors = require "slua.serve.errors"
local request = require "slua.serve.request"
local output = require "slua.serve.output"

local S = {}
local Server = {}
Server.__index = Server
local json, null = util.json, util.json.null

local ROUTES = {
  ["/v1/completions"] = { POST = "completions" }, ["/v1/chat/completions"] = { POST = "chat" },
  ["/v1/models"] = { GET = "models" }, ["/models"] = { GET = "models" },
  ["/tokenize"] = { POST = "tokenize" }, ["/v1/tokenize"] = { POST = "tokenize" },
  ["/detokenize"] = { POST = "detokenize" }, ["/v1/detokenize"] = { POST = "detokenize" },
  ["/tokenizer_info"] = { GET = "tokenizer_info" }, ["/v1/tokenizer_info"] = { GET = "tokenizer_info" },
  ["/health"] = { GET = "health" }, ["/v1/health"] = { GET = "health" },
  ["/metrics"] = { GET = "metrics" }, ["/slots"] = { GET = "slots" },
}

-- cfg: model, names (served names), api_keys (list), parallel, max_queue, chat_template,
-- default_recipe, recipes (set or nil = all), max_logprobs, metrics, slots, strict_context,
-- context (n_ctx of every sequence), intervention (the server's default --intervene).
function S.new(cfg)
  local self = setmetatable({ cfg = cfg, model = cfg.model, sched = batch.scheduler(cfg.parallel), queued = 0,
                              started = os.time(), draining = false, active = {}, n_active = 0 }, Server)
  self.stats = { requests = {}, prompt_tokens = 0, predicted = 0, cancelled = 0, rejected = 0, passes = 0,
                 busy_slots = 0, recipes = {}, prompt_seconds = 0, predict_seconds = 0 }
  return self
end

---------------------------------------------------------------------------- answers

local function request_id(req) return ("req-%d"):format(req:id()) end

function Server:count(endpoint, status)
  local key = ('endpoint="%s",status="%d"'):format(endpoint or "other", status)
  self.stats.requests[key] = (self.stats.requests[key] or 0) + 1
end

function Server:reply(req, status, body, headers, endpoint)
  headers = headers or {}
  headers["Content-Type"] = headers["Content-Type"] or "application/json"
  headers["x-request-id"] = request_id(req)
  self:count(endpoint, status)
  return req:respond(status, headers, type(body) == "string" and body or json.encode(body))
end

function Server:reply_error(req, e, endpoint)
  local headers = {}
  for k, v in pairs(e.headers or {}) do headers[k] = v end
  if e.status == 401 then headers["WWW-Authenticate"] = "Bearer" end
  if e.status == 429 then headers["Retry-After"], headers["retry-after-ms"] = "1", "1000" end
  if e.status == 503 then headers["Retry-After"] = "5" end
  if e.status == 413 then headers["Connection"] = "close" end
  return self:reply(req, e.status, errors.body(e, null), headers, endpoint)
end

---------------------------------------------------------------------------- routing

function Server:authorized(req)
  local keys = self.cfg.api_keys
  if not keys or #keys == 0 then return true end
  local given = (req:header("authorization") or ""):match("^[Bb]earer%s+(.-)%s*$") or ""
  local ok = false
  for _, k in ipairs(keys) do ok = core.const_eq(given, k) or ok end -- every key compared
  return ok
end

function Server:handle(req)
  local route = ROUTES[req:path()]
  local endpoint = route and (route.POST or route.GET) or nil
  local ok, err = pcall(function()
    if not route then errors.fail(404, ("no route %s %s"):format(req:method(), req:path()), nil, "unknown_route") end
    local handler = route[req:method()]
    if not handler then
      local allow = {}
      for m in pairs(route) do allow[#allow + 1] = m end
      errors.fail(405, ("%s %s is not allowed"):format(req:method(), req:path()), nil, "method_not_allowed",
        { Allow = table.concat(allow, ", ") })
    end
    if self.draining then errors.fail(503, "the server is shutting down", nil, "shutting_down") end
    if handler ~= "health" and not self:authorized(req) then
      errors.fail(401, "Incorrect API key provided.", nil, "invalid_api_key")
    end
    if handler == "metrics" and not self.cfg.metrics then errors.fail(404, "metrics are off (--metrics)", nil, "unknown_route") end
    local body
    if req:method() == "POST" then
      local text = req:body()
      local v, jerr = core.json_decode(text)
      if type(v) ~= "table" or text:match("^%s*%[") then
        errors.bad(v == nil and ("the body is not valid JSON (%s)"):format(tostring(jerr)) or "the body must be a JSON object",
          nil, "invalid_json")
      end
      body = v
    end
    return self[handler](self, req, body)
  end)
  if not ok then
    if errors.is(err) then
      self:reply_error(req, err, endpoint)
    else
      io.stderr:write(("slua serve: %s: %s\n"):format(req:path(), tostring(err)))
      self:reply_error(req, errors.new(500, "internal error", nil, "internal_error"), endpoint)
    end
  end
end

function Server:check_model(body)
  local m = body.model
  if m == nil or m == null or m == "" then return end
  for _, n in ipairs(self.cfg.names) do if m == n then return end end
  errors.fail(404, ("The model '%s' does not exist; this server serves '%s'."):format(tostring(m), self.cfg.names[1]),
    "model", "model_not_found")
end

---------------------------------------------------------------------------- small endpoints

function Server:health(req)
  self:reply(req, 200, { status = "ok" }, nil, "health")
end

function Server:models(req)
  local data = {}
  for _, n in ipairs(self.cfg.names) do
    data[#data + 1] = { id = n, object = "model", created = self.started, owned_by = "slua",
                        max_model_len = self.cfg.context }
  end
  self:reply(req, 200, { object = "list", data = data }, nil, "models")
end

local function tokenizer_of(self)
  return self.model.tokenizer or errors.fail(400, "this model has no tokenizer.json", nil, "no_tokenizer")
end

function Server:tokenize(req, body)
  local tok = tokenizer_of(self)
  local ids
  if type(body.messages) == "table" then
    ids = request.chat_prompt(body, self.model, self.cfg.chat_template).ids
  else
    local text = body.prompt ~= nil and body.prompt or body.content
    if type(text) ~= "string" then errors.bad("'prompt' (or 'content') must be a string", "prompt") end
    local add = body.add_special_tokens
    if add == nil or add == null then add = body.add_special end
    ids = tok:encode(text, { special = add == true })
  end
  local out = { tokens = ids, count = #ids, max_model_len = self.cfg.context, token_strs = null }
  if body.return_token_strs == true or body.with_pieces == true then
    local strs = output.token_strings(tok, ids)
    if body.with_pieces == true then
      local pieces = {}
      for i, id in ipairs(ids) do pieces[i] = { id = id, piece = strs[i] } end
      out.tokens = pieces
    end
    if body.return_token_strs == true then out.token_strs = strs end
  end
  self:reply(req, 200, out, nil, "tokenize")
end

function Server:detokenize(req, body)
  local tok = tokenizer_of(self)
  local ids = body.tokens
  if type(ids) ~= "table" then errors.bad("'tokens' must be a list of token ids", "tokens") end
  for i, id in ipairs(ids) do
    if math.type(id) ~= "integer" or id < 0 or id >= self.model.n_vocab then
      errors.bad(("'tokens[%d]' is not a token id in [0, %d)"):format(i - 1, self.model.n_vocab), "tokens")
    end
  end
  local text = tok:decode(ids)
  self:reply(req, 200, { prompt = text, content = text }, nil, "detokenize")
end

function Server:tokenizer_info(req)
  local info = {}
  local text = core.fs.read(self.model.path .. "/tokenizer_config.json")
  local tc = text and core.json_decode(text)
  for k, v in pairs(type(tc) == "table" and tc or {}) do
    if type(v) == "table" and type(v.content) == "string" then v = v.content end -- AddedToken objects
    if k ~= "added_tokens_decoder" then info[k] = v end
  end
  local cfg = chat.config(self.model.path) or { special = {} }
  for k, v in pairs(cfg.special or {}) do if info[k] == nil and type(v) == "string" then info[k] = v end end
  if info.eos_token == nil and self.model.tokenizer and self.model.eos[1] then
    info.eos_token = self.model.tokenizer:decode{ self.model.eos[1] }
  end
  info.tokenizer_class = info.tokenizer_class or "PreTrainedTokenizerFast"
  info.model_max_length = self.cfg.context
  if self.cfg.chat_template_text then info.chat_template = self.cfg.chat_template_text end
  self:reply(req, 200, info, nil, "tokenizer_info")
end

function Server:slots(req)
  if not self.cfg.slots then errors.fail(404, "slots are off", nil, "unknown_route") end
  local running, queued = self.sched:busy()
  self:reply(req, 200, { running = running, queued = queued, parallel = self.cfg.parallel }, nil, "slots")
end

function Server:metrics(req)
  local st, lines = self.stats, {}
  local function metric(name, kind, value, help, labels)
    lines[#lines + 1] = ("# HELP slua:%s %s"):format(name, help)
    lines[#lines + 1] = ("# TYPE slua:%s %s"):format(name, kind)
    if type(value) == "table" then
      local keys = {}
      for k in pairs(value) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do lines[#lines + 1] = ("slua:%s{%s} %s"):format(name, k, value[k]) end
    else
      lines[#lines + 1] = ("slua:%s%s %s"):format(name, labels or "", value)
    end
  end
  local running, queued = self.sched:busy()
  metric("prompt_tokens_total", "counter", st.prompt_tokens, "prompt tokens processed")
  metric("tokens_predicted_total", "counter", st.predicted, "tokens generated")
  metric("requests_processing", "gauge", running, "sequences running")
  metric("requests_deferred", "gauge", queued, "sequences waiting for a slot")
  metric("n_decode_total", "counter", st.passes, "batched passes")
  metric("n_busy_slots_per_decode", "gauge", st.passes > 0 and st.busy_slots / st.passes or 0,
    "mean running sequences per pass")
  metric("requests_total", "counter", st.requests, "answered requests by endpoint and status")
  metric("requests_cancelled_total", "counter", st.cancelled, "sequences cancelled by their client")
  metric("queue_rejections_total", "counter", st.rejected, "requests refused with 429")
  local rec = {}
  for k, v in pairs(st.recipes) do rec[('recipe="%s"'):format(k)] = v end
  metric("recipe_requests_total", "counter", rec, "generation requests by recipe")
  self:count("metrics", 200)
  req:respond(200, { ["Content-Type"] = "text/plain; version=0.0.4", ["x-request-id"] = request_id(req) },
    table.concat(lines, "\n") .. "\n")
end

---------------------------------------------------------------------------- generation

-- Admission: the sequences of a request join the queue, or the request is refused (429).
function Server:admit(n)
  local running, queued = self.sched:busy()
  if queued + n > self.cfg.max_queue and running + queued > 0 then
    self.stats.rejected = self.stats.rejected + 1
    errors.fail(429, ("the queue is full (%d sequences waiting, at most %d)"):format(queued, self.cfg.max_queue), nil,
      "queue_full")
  end
end

function Server:completions(req, body)
  self:generation(req, body, "completions")
end

function Server:chat(req, body)
  self:generation(req, body, "chat")
end

-- A generation request: checked whole before anything runs, then one job per choice.
function Server:generation(req, body, kind)
  self:check_model(body)
  local model, cfg = self.model, self.cfg
  local prompts
  if kind == "chat" then
    prompts = { request.chat_prompt(body, model, cfg.chat_template) }
  else
    local add = body.add_special_tokens
    prompts = request.prompts(body, model, add == nil or add == null or add == true)
  end
  local longest = 0
  for _, p in ipairs(prompts) do longest = math.max(longest, #p.ids) end
  local dec = request.decoder(body, cfg, kind, cfg.context, longest)
  local lp = request.logprobs(body, kind, cfg.max_logprobs)
  local echo = kind == "completions" and request.boolean(body, "echo") or false
  local stream = request.boolean(body, "stream") or false
  if stream and dec.scoring and lp then
    errors.bad("'slua.logprobs_from': \"recipe\" scores whole sequences: not with 'stream'", "stream",
      "unsupported_parameter")
  end
  local opts = type(body.stream_options) == "table" and body.stream_options or {}
  if not stream and opts ~= nil and next(opts) then errors.bad("'stream_options' needs 'stream': true", "stream_options") end
  self:admit(#prompts * dec.n)
  self.stats.recipes[dec.name] = (self.stats.recipes[dec.name] or 0) + 1
  local st = output.new{ server = self, req = req, kind = kind, prompts = prompts, dec = dec, lp = lp, echo = echo,
                         stream = stream, include_usage = opts.include_usage == true, id = request_id(req) }
  if stream then
    req:start(200, { ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache",
                     ["x-request-id"] = request_id(req) })
    self:count(kind, 200)
  end
  for i, p in ipairs(prompts) do
    self.stats.prompt_tokens = self.stats.prompt_tokens + #p.ids
    for j = 0, dec.n - 1 do
      local index = (i - 1) * dec.n + j
      self.sched:add(function() return st:run_choice(p, j, index) end,
        function(ok, result) st:choice_done(index, ok, result) end,
        function() return st.failed or req:cancelled() end)
    end
  end
end

-- One pass of the running generations.
function Server:step()
  local running = self.sched:busy()
  if running > 0 or select(2, self.sched:busy()) > 0 then
    self.sched:step()
    local now_running = self.sched:busy()
    if now_running > 0 then
      self.stats.passes = self.stats.passes + 1
      self.stats.busy_slots = self.stats.busy_slots + now_running
    end
  end
end

function Server:idle()
  local running, queued = self.sched:busy()
  return running + queued == 0
end

return S
