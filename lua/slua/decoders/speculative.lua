-- slua.decoders.speculative: speculative decoding (Leviathan et al., ICML 2023, arXiv 2211.17192; Chen
-- et al. 2023, arXiv 2302.01318) with a draft session: the same model with skipped blocks
-- (self-speculative: Draft & Verify, Zhang et al. 2023, arXiv 2309.08168; LayerSkip) or a
-- second model with the same vocabulary.
--
-- Each round the draft proposes k tokens one by one; the main model evaluates the pending
-- token and the k proposals in one multi-token eval (all rows' logits); proposals are accepted
-- while they match (greedy) or pass the rejection test u < p(d) / q(d) (sampling); the first
-- refusal is replaced by the main model's token (greedy) or a draw from norm(max(0, p - q)),
-- and after k acceptances a bonus token comes from the last row. Both sessions rewind to the
-- accepted prefix. Greedy output is the main model's greedy output; sampled output has the
-- main model's distribution.
local sl = require "slua.util"
local blocks = require "slua.decoders.blocks"
local run = require "slua.run"

local S = {}

-- A token history that processors read like a session (tokens(), pos()).
local History = {}
History.__index = History
function History:pos() return #self end
function History:tokens() return self end
local function history(ids, extra, n_extra)
  local h = setmetatable({ table.unpack(ids) }, History)
  for i = 1, n_extra do h[#h + 1] = extra[i] end
  return h
end

local function common_prefix(a, b)
  local n = 0
  while n < #a and n < #b and a[n + 1] == b[n + 1] do n = n + 1 end
  return n
end

-- spec: model, main (session), draft (session), prompt, k, max_new_tokens, chain, eos (set of
-- ids), sample (bool), rng, force_accept (benchmarks only: accept each proposal with this
-- probability whatever the tokens, to time the method as a function of acceptance),
-- draft_name (the draft in messages; default "the draft of <model path>"), progress (a table:
-- progress.partial() then gives the result for the tokens committed so far), on_prefill
-- (function(n_tokens), optional: called once the prompt is prefilled, for the run's timings).
-- Returns { new_ids, stop_reason, rounds = {{drafted, accepted}, ...} }. Logits of either
-- model that are not finite stop the run, naming it.
function S.generate(spec)
  local main, draft, chain, k_max = spec.main, spec.draft, spec.chain or sl.chain{}, spec.k
  local prompt, max_new = spec.prompt, spec.max_new_tokens
  local committed = { table.unpack(prompt) } -- prompt + generated; the last one is pending in main
  local generated, rounds, stop_reason = {}, {}, "max_new_tokens"
  local limit = spec.model.config.max_position
  local path, draft_name = spec.model.path, spec.draft_name or ("the draft of " .. spec.model.path)
  if spec.progress then
    spec.progress.partial = function() return { new_ids = generated, stop_reason = stop_reason, rounds = rounds } end
  end
  if #prompt > 1 then main:prefill({ table.unpack(prompt, 1, #prompt - 1) }) end
  if spec.on_prefill then spec.on_prefill(#prompt - 1) end  -- the last prompt token is verified with the drafts
  local function scores_of(logits, extra, n)
    local ctx = { model = spec.model, session = history(committed, extra, n), prompt_len = #prompt,
                  step = #generated + n, max_new_tokens = max_new, generated = generated }
    return chain(ctx, logits:clone()) or logits
  end
  local function pick(scores) return spec.sample and scores:sample(spec.rng) or scores:argmax() end

  while #generated < max_new do
    local k = math.max(0, math.min(k_max, max_new - #generated - 1, limit - #committed))
    -- the draft catches up on the committed tokens, then proposes k
    local proposals, q, dout = {}, {}, nil
    if k > 0 then
      local have = common_prefix(draft:tokens(), committed)
      if have == #committed then have = have - 1 end
      draft:rewind(have)
      dout = draft:prefill({ table.unpack(committed, have + 1) })
    end
    for i = 1, k do
      run.check_finite(dout.logits, draft_name, #generated + i - 1)
      q[i] = scores_of(dout.logits, proposals, i - 1)
      proposals[i] = pick(q[i])
      if i < k then dout = draft:step(proposals[i]) end
    end
    -- the main model verifies the pending token and the proposals in one eval
    local rows = main:prefill({ committed[#committed], table.unpack(proposals) }, { all_logits = true }):all_logits()
    local accepted, final = 0, nil
    for i = 1, k + 1 do
      run.check_finite(rows[i], path, #generated + i - 1)
      local p = scores_of(rows[i], proposals, i - 1)
      if i > k then final = pick(p); break end
      local d, ok = proposals[i], false
      if spec.force_accept then
        ok = spec.rng:uniform() < spec.force_accept
      elseif spec.sample then
        local pd, qd = p:clone():softmax():get(d), q[i]:clone():softmax():get(d)
        ok = spec.rng:uniform() < pd / qd
      else
        ok = p:argmax() == d
      end
      if not ok then
        final = (spec.sample and not spec.force_accept) and p:sample_residual(q[i], spec.rng) or p:argmax()
        break
      end
      accepted = i
    end
    main:rewind(main:pos() - (k - accepted))
    rounds[#rounds + 1] = { drafted = k, accepted = accepted }
    local new = { table.unpack(proposals, 1, accepted) }
    new[#new + 1] = final
    for _, id in ipairs(new) do
      committed[#committed + 1] = id
      generated[#generated + 1] = id
      if spec.on_token then spec.on_token(id) end
      if spec.eos[id] then stop_reason = "eos"; break end
      if #generated >= max_new then break end
    end
    if stop_reason == "eos" then break end
    if #committed >= limit then stop_reason = "context_full"; break end
  end
  return { new_ids = generated, stop_reason = stop_reason, rounds = rounds }
end

-- --draft-skip-blocks (slua.decoders.blocks' grammar) against the model: blocks that exist,
-- and not every one (the draft would be no model). Returns the blocks | nil, the rule.
local function draft_blocks(text, n_layer)
  local list = blocks.parse(text, n_layer)
  if list and #list < n_layer then return list end
  return nil, blocks.rule(n_layer) .. ", not all of them"
end

function S.blocks_rule(text, model)
  if text ~= "" then return select(2, draft_blocks(text, model.n_layer)) end
end

-- The draft's blocks for --draft-skip-blocks, a usage error when the text breaks its rule.
function S.parse_blocks(text, n_layer)
  local list, rule = draft_blocks(text, n_layer)
  if not list then sl.option_error("draft_skip_blocks", rule, text) end
  return list
end

return S
