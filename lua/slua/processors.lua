-- slua.processors: logits processors with HF transformers' semantics (generation/logits_process.py).
--
-- Each constructor returns { name = ..., fn = function(ctx, scores) } for sl.chain. They work in
-- place on a slua.Logits through C methods, so no loop over the vocabulary runs in Lua.
-- ctx carries: session (token history = prompt + generated), prompt_len, step (tokens generated
-- so far), max_new_tokens, model, out (this step's outputs, incl. requested layers).
--
-- HF's order (and the order to build chains in): repetition_penalty → no_repeat_ngram →
-- logit_bias → exp_decay_length / eos_linear → your own processors → temperature → top_k →
-- top_p → min_p → typical_p → epsilon → eta. Sampling warpers (the last seven) only matter
-- when sampling.
local core = require "slua.core"
local fail = require("slua.options").fail

local P = {}

local function proc(name, fn) return { name = name, fn = fn } end

-- CTRL-style penalty on every distinct token of the history (prompt included unless
-- include_prompt = false): positive scores divided by penalty, negative multiplied.
-- opts.window = n: only the last n tokens; opts.exempt = {ids} never penalised.
function P.repetition_penalty(penalty, opts)
  opts = opts or {}
  assert(type(penalty) == "number" and penalty > 0, "repetition_penalty: penalty must be a number > 0")
  local include_prompt = opts.include_prompt ~= false
  return proc("repetition_penalty", function(ctx, scores)
    scores:repetition_penalty(penalty, ctx.session,
      { window = opts.window, exempt = opts.exempt, skip = include_prompt and 0 or ctx.prompt_len })
  end)
end

-- Ban tokens that would repeat an n-gram of the history (HF NoRepeatNGramLogitsProcessor).
function P.no_repeat_ngram(size)
  assert(math.type(size) == "integer" and size >= 1, "no_repeat_ngram: size must be an integer >= 1")
  return proc("no_repeat_ngram", function(ctx, scores) scores:no_repeat_ngram(size, ctx.session) end)
end

-- Diverse beam search's penalty (HF HammingDiversityLogitsProcessor): every token chosen at
-- this step by an earlier beam group (ctx.group_tokens) loses penalty x its count.
function P.hamming_diversity(penalty)
  assert(type(penalty) == "number", "hamming_diversity: penalty must be a number")
  return proc("hamming_diversity", function(ctx, scores)
    local tokens = ctx.group_tokens
    if not tokens or #tokens == 0 then return end
    local count, bias = {}, {}
    for _, id in ipairs(tokens) do count[id] = (count[id] or 0) + 1 end
    for id, n in pairs(count) do
      if id >= 0 and id < #scores then bias[id] = -(penalty * n) end
    end
    scores:bias(bias)
  end)
end

-- Add bias[id] to each listed token (HF SequenceBias for single tokens).
function P.logit_bias(bias)
  return proc("logit_bias", function(_, scores) scores:bias(bias) end)
end

-- HF ExponentialDecayLengthPenalty((start_index, factor), eos, prompt_len): once the sequence is
-- longer than prompt_len + start_index, each EOS score s += |s| * (factor^(len - that) - 1).
function P.exp_decay_length(start_index, factor, eos)
  return proc("exp_decay_length", function(ctx, scores)
    scores:exp_decay_length(eos or ctx.model.eos, ctx.session:pos(), start_index + ctx.prompt_len, factor)
  end)
end

-- A linear EOS reward: bonus * max(0, g - start) / (max_new_tokens - start) added to every EOS
-- score, where g = tokens generated so far.
function P.eos_linear(bonus, start)
  start = start or 0
  return proc("eos_linear", function(ctx, scores)
    local span = ctx.max_new_tokens - start
    local g = ctx.step - start
    if g <= 0 or span <= 0 then return end
    local add = bonus * g / span
    local b = {}
    for _, id in ipairs(ctx.model.eos) do b[id] = add end
    scores:bias(b)
  end)
end

function P.temperature(t)
  assert(type(t) == "number" and t > 0, "temperature must be > 0")
  return proc("temperature", function(_, scores) scores:temperature(t) end)
end

function P.top_k(k, min_keep)
  return proc("top_k", function(_, scores) scores:keep_top_k(k, min_keep) end)
end

function P.top_p(p, min_keep)
  return proc("top_p", function(_, scores) scores:keep_top_p(p, min_keep) end)
end

function P.min_p(p, min_keep)
  return proc("min_p", function(_, scores) scores:keep_min_p(p, min_keep) end)
end

-- Locally typical sampling (Meister et al. 2022; HF TypicalLogitsWarper): keep the tokens whose
-- surprisal is closest to the entropy until their mass reaches `mass`.
function P.typical_p(mass, min_keep)
  assert(type(mass) == "number" and mass > 0 and mass < 1, "typical_p: mass must be in (0, 1)")
  return proc("typical_p", function(_, scores) scores:keep_typical(mass, min_keep) end)
end

-- Truncation sampling (Hewitt et al. 2022; HF EpsilonLogitsWarper): drop p < eps.
function P.epsilon(eps, min_keep)
  assert(type(eps) == "number" and eps > 0 and eps < 1, "epsilon: cutoff must be in (0, 1)")
  return proc("epsilon", function(_, scores) scores:keep_epsilon(eps, min_keep) end)
end

-- Eta sampling (Hewitt et al. 2022; HF EtaLogitsWarper): drop p < min(eps, sqrt(eps) e^-H).
function P.eta(eps, min_keep)
  assert(type(eps) == "number" and eps > 0 and eps < 1, "eta: cutoff must be in (0, 1)")
  return proc("eta", function(_, scores) scores:keep_eta(eps, min_keep) end)
end

-- llama.cpp's samplers (src/llama-sampling.cpp) that HF lacks.

-- Top-n-sigma (Tang et al. 2024, arXiv 2411.07641): keep scores >= max - n * std.
function P.top_n_sigma(n)
  assert(type(n) == "number" and n >= 0, "top_n_sigma: n must be >= 0")
  return proc("top_n_sigma", function(_, scores) scores:keep_top_n_sigma(n) end)
end

-- XTC, exclude top choices (p-e-w, llama.cpp PR #9742): with probability `probability`, when
-- two or more tokens have p >= threshold, mask all but the least likely of them. Draws its
-- own uniforms from sl.rng(opts.seed or 0), one per step.
function P.xtc(threshold, probability, opts)
  opts = opts or {}
  local rng = core.rng(opts.seed or 0)
  return proc("xtc", function(_, scores) scores:xtc(threshold, probability, rng:uniform(), opts.min_keep) end)
end

-- DRY, don't repeat yourself (p-e-w, llama.cpp PR #9702): a token that would extend a repeat
-- of L >= allowed_length tokens loses multiplier * base ^ (L - allowed_length). opts: base
-- (1.75), allowed_length (2), window (last n tokens; 0 = all), breakers (ids that end a match).
function P.dry(multiplier, opts)
  opts = opts or {}
  local o = { multiplier = multiplier, base = opts.base, allowed_length = opts.allowed_length,
              window = opts.window, breakers = opts.breakers }
  return proc("dry", function(ctx, scores) scores:dry(ctx.session, o) end)
end

-- Mirostat v2 (Basu et al. 2021, arXiv 2007.14966): keep tokens with surprise -log2 p <= mu,
-- then, once the token is drawn, mu -= eta * (its surprise in the kept distribution - tau);
-- mu starts at 2 tau. Stateful (one per generation) and last in a chain: the draw must come
-- from the scores it leaves. The second result exposes the state ({mu = ...}).
function P.mirostat_v2(tau, eta)
  assert(type(tau) == "number" and tau > 0, "mirostat_v2: tau must be > 0")
  local state, last = { mu = 2 * tau }, nil
  return proc("mirostat_v2", function(ctx, scores)
    local g = ctx.generated
    if last and g and #g > 0 then state.mu = state.mu - eta * (last:surprise(g[#g]) - tau) end
    scores:mirostat_v2(state.mu)
    last = scores:clone()
  end), state
end

-- Wrap a plain function(ctx, scores) with a name (plain functions work in chains too).
function P.fn(name, f) return proc(name, f) end

-- The standard chain from common options (zeros/ones/nils leave a processor out), in HF order.
-- opt fields: repetition_penalty, no_repeat_ngram_size, temperature, top_k, top_p, min_p,
-- typical_p, epsilon_cutoff, eta_cutoff, do_sample; custom = { processors } inserted where HF puts user processors.
function P.standard(opt, custom)
  local list = {}
  if opt.repetition_penalty and opt.repetition_penalty ~= 1 then
    list[#list + 1] = P.repetition_penalty(opt.repetition_penalty)
  end
  if opt.no_repeat_ngram_size and opt.no_repeat_ngram_size > 0 then
    list[#list + 1] = P.no_repeat_ngram(opt.no_repeat_ngram_size)
  end
  for _, p in ipairs(custom or {}) do list[#list + 1] = p end
  if opt.do_sample then
    if opt.temperature and opt.temperature ~= 1 then list[#list + 1] = P.temperature(opt.temperature) end
    if opt.top_k and opt.top_k > 0 then list[#list + 1] = P.top_k(opt.top_k) end
    if opt.top_p and opt.top_p < 1 then list[#list + 1] = P.top_p(opt.top_p) end
    if opt.min_p and opt.min_p > 0 then list[#list + 1] = P.min_p(opt.min_p) end
    if opt.typical_p and opt.typical_p < 1 then list[#list + 1] = P.typical_p(opt.typical_p) end
    if opt.epsilon_cutoff and opt.epsilon_cutoff > 0 then list[#list + 1] = P.epsilon(opt.epsilon_cutoff) end
    if opt.eta_cutoff and opt.eta_cutoff > 0 then list[#list + 1] = P.eta(opt.eta_cutoff) end
  end
  return list
end

---------------------------------------------------------------------------- chains

-- sl.chain{p1, p2, ...}: one ordered list of processors, each a function(ctx, scores) or a
-- processor table from sl.processors. chain(ctx, scores) runs them in order and returns scores.
local Chain = {}
Chain.__index = Chain

local function as_processor(p, i)
  if type(p) == "function" then return { name = "fn", fn = p } end
  if type(p) == "table" and type(p.fn) == "function" then return p end
  error(("chain: entry %s is not a processor (a function or sl.processors.*)"):format(tostring(i)), 3)
end

function P.chain(list)
  local c = setmetatable({ items = {} }, Chain)
  for i, p in ipairs(list or {}) do c.items[i] = as_processor(p, i) end
  return c
end

-- What a scores function or processor (in_place: nil is fine, the scores were changed in
-- place) returned, checked before anything uses it: a slua.Logits as long as the vocabulary.
function P.check_scores(r, n, who, in_place)
  if r == nil and in_place then return nil end
  if core.is_logits(r) then
    if #r ~= n then fail(("%s returned %d scores, the vocabulary has %d"):format(who, #r, n)) end
    return r
  end
  fail(("%s returned %s, not a slua.Logits%s"):format(who, r == nil and "nil" or "a " .. type(r),
    in_place and " (or nil after changing the scores in place)" or ""))
end

-- Whether v is a chain built by P.chain (a plain list of processors is not).
function P.is_chain(v) return getmetatable(v) == Chain end

function Chain:__call(ctx, scores)
  local n = #scores
  for i, p in ipairs(self.items) do
    local r = p.fn(ctx, scores)
    if r ~= nil then
      scores = P.check_scores(r, n, ("processor %d (%s)"):format(i, p.name or "fn"), true)
    end
  end
  return scores
end

function Chain:insert(pos, p)
  if p == nil then pos, p = #self.items + 1, pos end
  table.insert(self.items, pos, as_processor(p, pos))
  return self
end

function Chain:remove(pos) return table.remove(self.items, pos) end

function Chain:names()
  local out = {}
  for i, p in ipairs(self.items) do out[i] = p.name end
  return out
end

function Chain:__len() return #self.items end

return P
