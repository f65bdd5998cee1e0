-- slua.chat.conversation: a multi-turn chat over one KV cache.
--
--   local conv = require("slua.chat.conversation").new(model, recipe, opt, {system =, template =, context_shift =})
--   conv:add("user", "Hi")
--   local reply, why, dropped = conv:reply(function(piece) io.write(piece) end [, on_shift])
--
-- Each reply re-renders the whole conversation through the chat template (as transformers
-- would) and compares the ids with the tokens already in the cache: only what follows the first
-- difference is evaluated (usually just the new turn; an edited system prompt or a reply the
-- template re-tokenizes differently rewinds to where they part). conv.stats counts tokens
-- reused, prefilled and stepped, and how many were rewound.
--
-- recipe: a recipe value (slua.recipe) of the one-token kind, opt its parsed options: its
-- session, amateurs, scores, processors and sampling decode every reply. Amateur sessions
-- follow the main one turn by turn.
local sl = require "slua.util"
local run = require "slua.run"
local chat = require "slua.chat"
local V = require("slua.jinja").value

local Conversation = {}
Conversation.__index = Conversation

local M = {}

function M.new(model, recipe, opt, opts)
  opts = opts or {}
  local self = setmetatable({
    model = model, recipe = recipe, opt = opt, system = opts.system,
    template = opts.template, messages = {}, context_shift = opts.context_shift,
    stats = { turns = 0, reused = 0, prefilled = 0, stepped = 0, rewound = 0, shifted = 0 },
  }, Conversation)
  sl.check_options(opt, model)  -- the options' checks that need the model
  self.ctx = run.start({ opt = opt }, model)
  local d = run.decoder(recipe.spec, self.ctx)
  self.context = (opt.n_ctx or 0) > 0 and opt.n_ctx or model.config.max_position
  local session_opts = d.session
  if (opt.n_ctx or 0) > 0 then
    local with_ctx = { n_ctx = opt.n_ctx }
    for k, v in pairs(session_opts or {}) do with_ctx[k] = v end
    session_opts = with_ctx
  end
  self.ctx.session = run.session(self.ctx, session_opts)
  self.ctx.amateurs = d.amateurs and d.amateurs(self.ctx) or {}
  self.chain, self.sample, self.scores_of, self.eos = d.chain, d.sample, d.scores, d.eos
  return self
end

function Conversation:add(role, content)
  self.messages[#self.messages + 1] = { role = role, content = content }
end

function Conversation:reset()
  self.messages = {}
  for k in pairs(self.stats) do self.stats[k] = 0 end
  self.ctx.session:reset()
  for _, a in ipairs(self.ctx.amateurs) do a:reset() end
end

-- The messages the template sees (the system turn first when set), as template values.
function Conversation:turns()
  local list = V.list()
  local function add(role, content)
    local d = V.dict()
    V.dict_set(d, "role", role)
    V.dict_set(d, "content", content)
    list.n = list.n + 1
    list[list.n] = d
  end
  if self.system and self.system ~= "" then add("system", self.system) end
  for _, m in ipairs(self.messages) do add(m.role, m.content) end
  return list
end

-- The conversation so far as JSON ({"messages": [...]}, key order as rendered).
function Conversation:to_json()
  local d = V.dict()
  V.dict_set(d, "messages", self:turns())
  return V.to_json(d, { indent = 2 })
end

-- Brings every session's cache to `ids`, evaluating only from the first difference; returns
-- the main session's output for the last id.
function Conversation:sync(ids)
  local s = self.ctx.session
  local cached = s:tokens()
  local p = 0
  while p < #cached and p < #ids and cached[p + 1] == ids[p + 1] do p = p + 1 end
  if p == #ids then p = p - 1 end  -- the last id is evaluated again for its logits
  local st = self.stats
  if p < #cached then
    st.rewound = st.rewound + (#cached - p)
    s:rewind(p)
    for _, a in ipairs(self.ctx.amateurs) do a:rewind(p) end
  end
  local rest = table.move(ids, p + 1, #ids, 1, {})
  st.reused = st.reused + p
  st.prefilled = st.prefilled + #rest
  self.ctx.amateur_outs = {}
  for i, a in ipairs(self.ctx.amateurs) do self.ctx.amateur_outs[i] = a:prefill(rest) end
  return s:prefill(rest)
end

-- The conversation rendered with the generation prompt: ids, or nil, message.
function Conversation:render()
  local model = self.model
  local text, ids = chat.apply(model, self:turns(), { add_generation_prompt = true, template = self.template })
  if not text then return nil, "chat template: " .. tostring(ids):gsub("^chat template: ", "") end
  if not ids then return nil, model.path .. ": no tokenizer.json" end
  return ids
end

-- Renders the conversation with the generation prompt, then decodes a reply, calling
-- on_piece(text) as it streams (and on_shift(n) first when n old turns were dropped). The
-- reply joins the conversation (also when interrupted). Returns reply text, stop reason
-- ("eos", "stop_string", "max_new_tokens", "context_full", "interrupted") and the number of
-- turns dropped to make room, or nil, message when the template rejects the conversation or
-- it cannot fit. With context_shift, the oldest turns after the system prompt are dropped (and
-- the rest re-rendered) until the prompt leaves room for a reply: min(max_new_tokens,
-- context / 4).
function Conversation:reply(on_piece, on_shift)
  local model, ctx, opt = self.model, self.ctx, self.opt
  local ids, err = self:render()
  if not ids then return nil, err end
  local room = math.max(1, math.min(opt.max_new_tokens, self.context // 4))
  local dropped = 0
  while self.context_shift and #ids + room > self.context and #self.messages > 1 do
    table.remove(self.messages, 1)   -- the oldest turn; the system prompt is not a message
    if self.messages[1] and self.messages[1].role == "assistant" then table.remove(self.messages, 1) end
    dropped = dropped + 1
    ids, err = self:render()
    if not ids then return nil, err end
  end
  self.stats.shifted = self.stats.shifted + dropped
  if dropped > 0 and on_shift then on_shift(dropped) end
  if #ids >= self.context then
    return nil, ("the conversation (%d tokens) no longer fits the context (%d)%s"):format(#ids, self.context,
      self.context_shift and "" or "; --context-shift drops the oldest turns")
  end
  local stream = model.tokenizer:stream{ skip_special = true }
  local eos = self.eos
  local stops = {}
  for s in (opt.stop or ""):gmatch("[^|]+") do stops[#stops + 1] = s end
  ctx.generated, ctx.step, ctx.prompt_len = {}, 0, #ids
  local pieces, why = {}, "max_new_tokens"
  local ok, err = pcall(function()
    ctx.out = self:sync(ids)
    for step = 0, opt.max_new_tokens - 1 do
      ctx.step = step
      local scores, _ = self.scores_of(ctx)
      scores = self.chain(ctx, scores) or scores
      local id = self.sample and scores:sample(ctx.rng) or scores:argmax()
      ctx.generated[#ctx.generated + 1] = id
      if eos[id] then why = "eos"; break end
      local piece = stream:put(id)
      pieces[#pieces + 1] = piece
      if piece ~= "" and on_piece then on_piece(piece) end
      local hit = false
      if #stops > 0 then
        local so_far = table.concat(pieces)
        for _, s in ipairs(stops) do if so_far:find(s, 1, true) then hit = true end end
      end
      if hit then why = "stop_string"; break end
      if step == opt.max_new_tokens - 1 then break end
      if ctx.session:pos() >= self.context then why = "context_full"; break end
      ctx.out = ctx.session:step(id)
      self.stats.stepped = self.stats.stepped + 1
      for i, a in ipairs(ctx.amateurs) do ctx.amateur_outs[i] = a:step(id) end
    end
  end)
  if not ok then
    local msg = type(err) == "table" and err.message or tostring(err)
    if not msg:find("interrupted", 1, true) then error(err, 0) end
    why = "interrupted"
  end
  local tail = stream:finish()
  if tail ~= "" and on_piece then on_piece(tail) end
  local reply = model.tokenizer:decode(ctx.generated, { skip_special = true })
  self:add("assistant", reply)
  self.stats.turns = self.stats.turns + 1
  return reply, why, dropped
end

return M
