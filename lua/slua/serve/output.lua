-- slua.serve.output: one generation request in flight: its choices run as jobs (run_choice),
-- their tokens become OpenAI's completion or chat objects, whole or as server-sent events.
--
-- Log-probabilities are the model's own: prompt tokens (echo) are teacher-forced through
-- lm_score (log_softmax of the final logits at the position before, the same float the
-- evaluation harness sums), generated tokens read that step's final logits before any
-- processor. With "logprobs_from": "recipe" every entry, prompt and generated, is lm_score's
-- teacher-forced term in the recipe's mode (DoLa), computed over the whole sequence once it is
-- generated. -inf is written as -9999.0, as OpenAI and vLLM do.
local core = require "slua.core"
local util = require "slua.util"
local errors = require "slua.serve.errors"

local O = {}
local State = {}
State.__index = State
local json, null = util.json, util.json.null

local function finite(v) return v == -math.huge and -9999.0 or v end

-- Each token's text in context: what decoding it adds after the tokens before it, special
-- tokens skipped (so the strings add up to the text), and a special token as its content.
function O.token_strings(tok, ids)
  local s, out = tok:stream{ skip_special = true }, {}
  for i, id in ipairs(ids) do
    local piece = s:put(id)
    out[i] = tok:is_special(id) and tok:decode{ id } or piece
  end
  return out
end

local function ulen(s) return utf8.len(s) or #s end

local function bytes(s)
  local b = {}
  for i = 1, #s do b[i] = s:byte(i) end
  return b
end

function O.new(t)
  local st = setmetatable(t, State)
  st.choices, st.done, st.total = {}, 0, #t.prompts * t.dec.n
  st.created = os.time()
  st.tok = t.server.model.tokenizer
  return st
end

---------------------------------------------------------------------------- events

function State:event(obj)
  if self.failed then return end
  if not self.req:send("data: " .. json.encode(obj) .. "\n\n") then self.failed = true end
end

function State:chunk(choices, usage)
  local obj = { id = (self.kind == "chat" and "chatcmpl-" or "cmpl-") .. self.id,
                object = self.kind == "chat" and "chat.completion.chunk" or "text_completion",
                created = self.created, model = self.server.cfg.names[1], choices = choices }
  if self.include_usage then obj.usage = usage or null end
  self:event(obj)
end

-- Streams new text of a choice (held back where it may begin a stop string).
function State:stream_text(ch, final)
  local text = ch.text
  local safe = #text
  if not final then
    for _, s in ipairs(self.dec.stops) do
      for k = math.min(#s - 1, #text), 1, -1 do
        if text:sub(-k) == s:sub(1, k) then safe = math.min(safe, #text - k); break end
      end
    end
  end
  if safe <= ch.sent then return end
  local piece = text:sub(ch.sent + 1, safe)
  if not utf8.len(piece) and not final then return end -- never a partial character
  ch.sent = safe
  local lp = ch.pending_lp
  ch.pending_lp = nil
  if self.kind == "chat" then
    self:chunk{ { index = ch.index, delta = { content = piece }, logprobs = lp and { content = lp, refusal = null } or null,
                  finish_reason = null } }
  else
    self:chunk{ { index = ch.index, text = piece, logprobs = lp or null, finish_reason = null } }
  end
end

---------------------------------------------------------------------------- a choice

-- The prompt's log-probabilities (echo): entry 1 is null, entry i the token's log p given the
-- tokens before it, with the top k (and the token itself) by token string.
function State:prompt_logprobs(ch, p, k)
  local model = self.server.model
  local s = model:session{ n_ctx = #p.ids + 1, intervene = self.server.cfg.intervention }
  local opts = { top_k = math.max(k, 1), reuse_prefix = false }
  for key, v in pairs(self.dec.scoring or {}) do opts[key] = v end
  local r = #p.ids > 1 and core.lm_score(s, p.ids, 1, opts) or nil
  s:close()
  for i = 1, #p.ids do
    local piece = ch.pieces[i]
    ch.tokens[#ch.tokens + 1] = piece
    if i == 1 then
      ch.lps[#ch.lps + 1], ch.tops[#ch.tops + 1] = null, null
    else
      local lp = finite(r.per_token[i - 1])
      ch.lps[#ch.lps + 1] = lp
      ch.tops[#ch.tops + 1] = self:top_map(r.top[i - 1], k, p.ids[i], piece, lp)
    end
  end
end

-- {string: logprob} of the k best plus the token itself (its string and value as in tokens
-- and token_logprobs); two ids of one string keep the higher value.
function State:top_map(top, k, id, piece, lp)
  local map = {}
  for j = 1, math.min(k, #top) do
    local tid, v = top[j][1], finite(top[j][2])
    local key = tid == id and piece or self.tok:decode{ tid }
    if map[key] == nil or v > map[key] then map[key] = v end
  end
  map[piece] = lp
  return map
end

-- "logprobs_from": "recipe": the generated tokens' entries become lm_score's teacher-forced
-- terms in the recipe's mode, over the prompt and what was generated.
function State:rescore_generated(ch, p, k)
  local full = table.move(p.ids, 1, #p.ids, 1, {})
  table.move(ch.gen_ids, 1, #ch.gen_ids, #full + 1, full)
  local s = self.server.model:session{ n_ctx = #full + 1, intervene = self.server.cfg.intervention }
  local opts = { top_k = math.max(k, 1), reuse_prefix = false }
  for key, v in pairs(self.dec.scoring) do opts[key] = v end
  local r = core.lm_score(s, full, #p.ids, opts)
  s:close()
  local first = #ch.tokens - #ch.gen_ids -- completions: entries before the generated ones
  for i, id in ipairs(ch.gen_ids) do
    local v = finite(r.per_token[i])
    if self.kind == "chat" then
      local e = ch.content[i]
      e.logprob = v
      for n, pair in ipairs(r.top[i]) do
        if n > k then e.top_logprobs[n] = nil else
          local t = pair[1] == id and e.token or self.tok:decode{ pair[1] }
          e.top_logprobs[n] = { token = t, logprob = finite(pair[2]), bytes = bytes(t) }
        end
      end
    else
      ch.lps[first + i] = v
      ch.tops[first + i] = self:top_map(r.top[i], k, id, ch.tokens[first + i], v)
    end
  end
end

function State:run_choice(p, j, index)
  local dec, tok = self.dec, self.tok
  local ch = { index = index, text = "", sent = 0, tokens = {}, lps = {}, tops = {}, offsets = {}, content = {},
               n_gen = 0, prompt_len = #p.ids, gen_ids = {} }
  self.choices[index] = ch
  -- the prompt fed to the decoders of token strings (in context) and of text offsets
  local plain = tok and tok:stream{ skip_special = true }
  local function shown_of(id, piece) return tok and tok:is_special(id) and tok:decode{ id } or piece end
  ch.pieces = {}
  local chars = 0
  for i, id in ipairs(p.ids) do
    local piece = plain and plain:put(id) or tostring(id)
    ch.pieces[i] = shown_of(id, piece)
    ch.offsets[i] = chars
    chars = chars + ulen(piece)
  end
  ch.prompt_text = self.echo and (p.text or (tok and tok:decode(p.ids, { skip_special = true })) or "") or ""
  local lp = self.lp
  if self.echo and lp then self:prompt_logprobs(ch, p, lp.k) end
  if not self.echo then ch.offsets = {} end
  if self.stream then
    if self.kind == "chat" then
      self:chunk{ { index = index, delta = { role = "assistant", content = "" }, logprobs = null, finish_reason = null } }
    elseif self.echo then
      self:chunk{ { index = index, text = ch.prompt_text, finish_reason = null,
                    logprobs = lp and { tokens = ch.tokens, token_logprobs = ch.lps, top_logprobs = ch.tops,
                                        text_offset = ch.offsets } or null } }
      ch.tokens, ch.lps, ch.tops, ch.offsets = {}, {}, {}, {}
    end
  end
  local base_chars = ulen(ch.prompt_text)
  local finish = "length"
  if dec.max_tokens > 0 then
    local flags = {}
    for k, v in pairs(dec.flags) do flags[k] = v end
    flags.prompt_ids = table.concat(p.ids, ",")
    if dec.seed then flags.seed = (dec.seed ~ j) & 0x7fffffffffffffff end
    if self.server.cfg.intervene_file and flags.intervene == nil then flags.intervene = self.server.cfg.intervene_file end
    local function on_token(id, raw)
      ch.n_gen = ch.n_gen + 1
      ch.gen_ids[#ch.gen_ids + 1] = id
      local piece = plain and plain:put(id) or (" " .. id)
      local shown = shown_of(id, piece)
      if lp then
        local l = raw
        local v = finite(l:get(id))
        local top = lp.k > 0 and l:top(lp.k) or {}
        if self.kind == "chat" then
          local alts = {}
          for k, pair in ipairs(top) do
            local s = pair[1] == id and shown or tok:decode{ pair[1] }
            alts[k] = { token = s, logprob = finite(pair[2]), bytes = bytes(s) }
          end
          local entry = { token = shown, logprob = v, bytes = bytes(shown), top_logprobs = alts }
          ch.content[#ch.content + 1] = entry
          if self.stream then ch.pending_lp = ch.pending_lp or {}; ch.pending_lp[#ch.pending_lp + 1] = entry end
        else
          ch.tokens[#ch.tokens + 1], ch.lps[#ch.lps + 1] = shown, v
          ch.tops[#ch.tops + 1] = self:top_map(top, lp.k, id, shown, v)
          ch.offsets[#ch.offsets + 1] = base_chars + ulen(ch.text)
        end
      end
      ch.text = ch.text .. piece
      for _, s in ipairs(dec.stops) do
        local at = ch.text:find(s, math.max(1, #ch.text - #piece - #s + 1), true)
        if at then
          ch.text = ch.text:sub(1, at - 1)
          finish = "stop"
          return "stop"
        end
      end
      if self.stream then self:stream_text(ch, false) end
    end
    local result = dec.recipe:run(flags, { model = self.server.model, on_token = on_token })
    if result.stop_reason == "eos" then finish = "stop" end
    if not result.stop_reason then -- a recipe with a loop of its own: its text as a whole
      ch.text, ch.n_gen = result.text or "", #(result.new_ids or {})
    end
  end
  if self.dec.scoring and lp and ch.n_gen > 0 then self:rescore_generated(ch, p, lp.k) end
  ch.finish = finish
  self.server.stats.predicted = self.server.stats.predicted + ch.n_gen
  return ch
end

---------------------------------------------------------------------------- the answer

function State:usage()
  local prompt, completion = 0, 0
  for _, p in ipairs(self.prompts) do prompt = prompt + #p.ids end
  for _, ch in pairs(self.choices) do completion = completion + ch.n_gen end
  return { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion }
end

function State:choice_object(ch)
  if self.kind == "chat" then
    return { index = ch.index, message = { role = "assistant", content = ch.text, refusal = null },
             logprobs = self.lp and { content = ch.content, refusal = null } or null, finish_reason = ch.finish }
  end
  local logprobs = null
  if self.lp then
    logprobs = { tokens = ch.tokens, token_logprobs = ch.lps, top_logprobs = ch.tops, text_offset = ch.offsets }
  end
  return { index = ch.index, text = ch.prompt_text .. ch.text, logprobs = logprobs, finish_reason = ch.finish }
end

function State:fail(message, code)
  if self.failed then return end
  self.failed = true
  local e = errors.new(500, message, nil, code, { ["x-should-retry"] = "false" })
  if self.stream then
    self.req:send("data: " .. json.encode(errors.body(e, null)) .. "\n\ndata: [DONE]\n\n")
    self.req:finish()
  else
    self.server:reply_error(self.req, e, self.kind)
  end
end

function State:choice_done(index, ok, result)
  if not ok then
    if result == "cancelled" then
      if not self.failed then self.server.stats.cancelled = self.server.stats.cancelled + 1 end
      self.failed = true
      if self.stream then self.req:finish() end
      return
    end
    local msg = type(result) == "table" and result.message or tostring(result)
    self:fail((msg:gsub("^[^:\n]*%.lua:%d+: ", "")), "recipe_error")
    return
  end
  if self.failed then return end
  local ch = self.choices[index]
  self.done = self.done + 1
  if self.stream then
    self:stream_text(ch, true)
    if self.kind == "chat" then
      self:chunk{ { index = index, delta = json.object(), logprobs = null, finish_reason = ch.finish } }
    else
      local lp = self.lp and { tokens = ch.tokens, token_logprobs = ch.lps, top_logprobs = ch.tops,
                               text_offset = ch.offsets } or null
      self:chunk{ { index = index, text = "", logprobs = lp, finish_reason = ch.finish } }
    end
  end
  if self.done < self.total then return end
  if self.stream then
    if self.include_usage then self:chunk({}, self:usage()) end
    self.req:send("data: [DONE]\n\n")
    self.req:finish()
    return
  end
  local list = {}
  for i = 0, self.total - 1 do list[#list + 1] = self:choice_object(self.choices[i]) end
  local obj = { id = (self.kind == "chat" and "chatcmpl-" or "cmpl-") .. self.id,
                object = self.kind == "chat" and "chat.completion" or "text_completion", created = self.created,
                model = self.server.cfg.names[1], choices = list, usage = self:usage(),
                system_fingerprint = "slua-" .. core.version }
  self.server:reply(self.req, 200, obj, nil, self.kind)
end

return O
