-- slua.decoders.beam: HF transformers' beam search (generation/beam_search.py BeamSearchScorer and
-- BeamHypotheses, generation/utils.py _beam_search and _group_beam_search, v4.47), with each
-- beam a session. Beams share their prefix: when a step gives one parent several children,
-- the extra children take a session no beam continues and copy only the rows after the point
-- where the two diverged (session:copy); a parent with one child keeps its session.
--
--   local beam = require "slua.decoders.beam"
--   local result = beam.search{ model = m, prompt = ids, num_beams = 4, max_new_tokens = 20,
--                               chain = sl.chain{...}, eos = {2} }
--
-- Scores follow HF in float32: each step adds a beam's running score to the processed
-- log-softmax of its logits (in C), and the candidate values become the new running scores.
local sl = require "slua.util"
local run = require "slua.run"
local batch = require "slua.batch"

local M = {}

---------------------------------------------------------------------------- hypotheses

-- HF BeamHypotheses: the best `num_beams` finished sequences of one group.
local Hyps = {}
Hyps.__index = Hyps

-- early_stopping: true | false | "never"; max_new_tokens is used by "never".
function M.hypotheses(num_beams, length_penalty, early_stopping, max_new_tokens)
  return setmetatable({ num_beams = num_beams, length_penalty = length_penalty, early = early_stopping,
                        max_new = max_new_tokens, beams = {}, worst = 1e9 }, Hyps)
end

-- Score = sum_logprobs / generated_len ^ length_penalty (generated_len counts new tokens, the
-- EOS that ended the hypothesis included). Past num_beams entries the worst one is dropped
-- (the earliest added among equal scores, as HF's sorted (score, index) pairs do).
function Hyps:add(ids, sum_logprobs, generated_len, eos)
  local score = sum_logprobs / generated_len ^ self.length_penalty
  if #self.beams >= self.num_beams and score <= self.worst then return false end
  self.beams[#self.beams + 1] = { score = score, ids = ids, eos = eos, sum_logprobs = sum_logprobs }
  if #self.beams > self.num_beams then
    local order = {}
    for i, b in ipairs(self.beams) do order[i] = { b.score, i } end
    table.sort(order, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    table.remove(self.beams, order[1][2])
    self.worst = order[2][1]
  else
    self.worst = math.min(score, self.worst)
  end
  return true
end

-- Whether no running beam can beat the finished ones: best_sum is the best candidate score of
-- this step, generated_len the new tokens counting this step's.
function Hyps:is_done(best_sum, generated_len)
  if #self.beams < self.num_beams then return false end
  if self.early == true then return true end
  local len = generated_len
  if self.early == "never" and self.length_penalty > 0 then len = self.max_new end
  return self.worst >= best_sum / len ^ self.length_penalty
end

---------------------------------------------------------------------------- one step of a group

-- The first n_keep candidates of a group over every beam x vocabulary, best first (torch.topk
-- over the flattened scores; equal scores by beam, then id).
local function candidates(rows, n_keep)
  local all = {}
  for b, row in ipairs(rows) do
    for _, pair in ipairs(row:top(n_keep)) do all[#all + 1] = { beam = b, id = pair[1], score = pair[2] } end
  end
  table.sort(all, function(x, y)
    if x.score ~= y.score then return x.score > y.score end
    if x.beam ~= y.beam then return x.beam < y.beam end
    return x.id < y.id
  end)
  for i = #all, n_keep + 1, -1 do all[i] = nil end
  return all
end

-- HF BeamSearchScorer.process for one group: EOS candidates ranked within the group size
-- finish hypotheses, the first `size` other candidates continue. Returns the next beams.
function M.select(cands, size, is_eos, hyps, beams, generated_len)
  local next_beams = {}
  for rank, c in ipairs(cands) do
    if is_eos[c.id] then
      if rank <= size then
        local ids = { table.unpack(beams[c.beam].ids) }
        hyps:add(ids, c.score, generated_len, c.id)
      end
    else
      next_beams[#next_beams + 1] = { parent = c.beam, id = c.id, score = c.score }
    end
    if #next_beams == size then break end
  end
  if #next_beams < size then
    sl.fail(("beam search: only %d continuations for %d beams (vocabulary too small?)"):format(#next_beams, size))
  end
  return next_beams, hyps:is_done(cands[1].score, generated_len)
end

---------------------------------------------------------------------------- sessions

-- Give each new beam a session: the parent's own for its first child, otherwise a session no
-- new beam continues (or a clone), brought to the parent's state by copying; beams of finished
-- groups (no parent_global) keep theirs. Returns the positions copied and the positions whole
-- copies would have moved.
local function assign_sessions(new_beams, old_beams, full_copies)
  local taken, copies = {}, {}
  for _, nb in ipairs(new_beams) do
    if not nb.parent_global then taken[nb.session] = true end
  end
  for _, nb in ipairs(new_beams) do
    if nb.parent_global then
      local s = old_beams[nb.parent_global].session
      if taken[s] then copies[#copies + 1] = nb else taken[s] = true; nb.session = s end
    end
  end
  local spare = {}
  for _, ob in ipairs(old_beams) do
    if not taken[ob.session] then taken[ob.session] = true; spare[#spare + 1] = ob.session end
  end
  local copied, full = 0, 0
  for _, nb in ipairs(copies) do
    local src = old_beams[nb.parent_global].session
    local dst = table.remove(spare)
    if dst and full_copies then dst:rewind(0) end -- no shared prefix: the whole cache moves
    if dst then copied = copied + dst:copy(src) else dst = src:clone(); copied = copied + src:pos() end
    full = full + src:pos()
    nb.session = dst
  end
  return copied, full
end

---------------------------------------------------------------------------- the search

-- spec: model, prompt (ids), num_beams, num_beam_groups (1), max_new_tokens, length_penalty
-- (1.0), early_stopping (false), num_return_sequences (1), eos (ids; default the model's),
-- chain (processors; ctx.group_tokens holds this step's tokens of the earlier groups),
-- session (options for model:session), on_step (function(step, beams), optional),
-- full_copies (benchmarks: copy whole caches instead of the rows after the shared prefix),
-- progress (a table: progress.partial() then gives the result as if the search ended with
-- the last complete step, for an interrupted run; progress.on_prefill(n_tokens), when set, is
-- called once the prompt is prefilled, for the run's timings).
-- Returns { sequences = {{new_ids, score, eos}, ...} best first, steps, kv_rows_copied,
-- kv_rows_full_copy }. Logits that are not finite stop the search (naming the model).
function M.search(spec)
  local model, B = spec.model, spec.num_beams
  local G = spec.num_beam_groups or 1
  local size, max_new = B // G, spec.max_new_tokens
  local eos_ids = spec.eos or model.eos
  local is_eos = {}
  for _, id in ipairs(eos_ids) do is_eos[id] = true end
  local n_keep = math.max(2, 1 + #eos_ids) * size
  local chain = spec.chain or sl.chain{}
  local hyps, done = {}, {}
  for g = 1, G do hyps[g] = M.hypotheses(size, spec.length_penalty or 1.0, spec.early_stopping or false, max_new) end

  local s0 = model:session(spec.session)
  local out = s0:prefill(spec.prompt)
  if spec.progress and spec.progress.on_prefill then spec.progress.on_prefill(#spec.prompt) end
  local beams = {}
  for i = 1, B do
    -- HF starts with only the first beam of each group live (the others at -1e9).
    beams[i] = { session = s0, logits = out.logits, ids = {}, score = (i - 1) % size == 0 and 0.0 or -1e9 }
  end
  local copied, full, steps = 0, 0, 0
  local function finalize()
    -- HF finalize: the running beams of unfinished groups join their hypotheses, then the best
    -- num_return_sequences of all groups (sorted ascending, stable, taken from the end).
    local pool = {}
    for g = 1, G do
      if not done[g] then
        for j = 1, size do
          local b = beams[(g - 1) * size + j]
          hyps[g]:add(b.ids, b.score, #b.ids, nil)
        end
      end
      for _, h in ipairs(hyps[g].beams) do pool[#pool + 1] = h end
    end
    for i, h in ipairs(pool) do h.order = i end
    table.sort(pool, function(a, b) return a.score < b.score or (a.score == b.score and a.order < b.order) end)
    local sequences = {}
    for k = 1, math.min(spec.num_return_sequences or 1, #pool) do
      local h = pool[#pool - k + 1]
      local ids = { table.unpack(h.ids) }
      if h.eos then ids[#ids + 1] = eos_ids[1] end -- HF writes eos_token_id[0] after a finished hypothesis
      sequences[k] = { new_ids = ids, score = h.score, eos = h.eos or sl.json.null }
    end
    return { sequences = sequences, steps = steps, kv_rows_copied = copied, kv_rows_full_copy = full }
  end
  if spec.progress then spec.progress.partial = finalize end
  for step = 1, max_new do
    steps = step
    local group_tokens, next_all = {}, {}
    for g = 1, G do
      local first = (g - 1) * size
      if done[g] then
        for j = 1, size do next_all[first + j] = beams[first + j] end
      else
        local rows = {}
        for j = 1, size do
          local b = beams[first + j]
          run.check_finite(b.logits, model.path, step - 1)
          local ctx = { model = model, session = b.session, prompt_len = #spec.prompt, step = step - 1,
                        max_new_tokens = max_new, generated = b.ids, group_tokens = group_tokens }
          local scores = b.logits:clone():log_softmax()
          scores = chain(ctx, scores) or scores
          rows[j] = scores:add(b.score)
        end
        local chosen
        local group = { table.unpack(beams, first + 1, first + size) }
        chosen, done[g] = M.select(candidates(rows, n_keep), size, is_eos, hyps[g], group, step)
        for j, nb in ipairs(chosen) do
          nb.parent_global = first + nb.parent
          local ids = { table.unpack(beams[nb.parent_global].ids) }
          ids[#ids + 1] = nb.id
          nb.ids = ids
          next_all[first + j] = nb
          group_tokens[#group_tokens + 1] = nb.id
        end
      end
    end
    local all_done = true
    for g = 1, G do all_done = all_done and done[g] end
    local moving = {}
    for _, nb in ipairs(next_all) do if nb.parent_global then moving[#moving + 1] = nb end end
    local c, f = assign_sessions(next_all, beams, spec.full_copies)
    copied, full = copied + c, full + f
    beams = next_all
    for _, nb in ipairs(moving) do nb.parent_global = nil end
    if spec.on_step then spec.on_step(step, beams) end
    if all_done or step == max_new then break end
    -- every moving beam's next token in one pass: each weight read once for all beams
    local requests = {}
    for i, nb in ipairs(moving) do requests[i] = { nb.session, nb.id } end
    if #requests > 0 then
      for i, out in ipairs(batch.eval(requests)) do moving[i].logits = out.logits end
    end
  end

  return finalize()
end

return M
