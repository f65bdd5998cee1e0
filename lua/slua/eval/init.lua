-- slua.eval: teacher-forced answer scores exactly as the DoLa repository computes them, and the
-- evaluation tasks of the DoLa paper (TruthfulQA-MC, FACTOR, GSM8K, StrategyQA) plus MGSM.
--
--   local ev = require "slua.eval"
--   local r = ev.lm_score(model, full_ids, n_prefix, { mode = "dola", candidate_layers = {0, 2, 4} })
--   -- r.log_prob (a SUM over answer tokens), r.per_token, r.premature_layers, r.n_forwarded
--   ev.tasks.truthfulqa_mc.metrics(scores_true, scores_false)
--
-- The quirks of the official code are reproduced on purpose (see the README, "Reproducing the
-- DoLa tables"): premature layers go through the LM head without the final norm, answers are
-- split from the prompt by token count, masked tokens score relative_top_value (-1000).
--
-- Every task module (ev.tasks.<name>, lua/slua/eval/tasks/<name>.lua) offers, for drivers such as
-- `slua eval` (lua/slua/cmd/eval.lua, lua/slua/eval/runner.lua) or a sweep:
--   task.name, task.kind ("score" | "generate"), task.data (path under data/), task.metric
--   task.settings                       scoring tasks: the script's relative_top etc.
--   task.load(path) -> items            items carry a unique string id and a 0-based index
--   task.from_ids(obj, where) -> item   scoring tasks: a pre-tokenised item (--items)
--   task.evaluate(model, item, setting) -> record (one JSON-able table per item)
--   task.summarize(records) -> metrics  (the task's headline metric under task.metric)
-- plus the official pieces: prompt, extract, is_correct, metrics / split_multi_answer /
-- format_best (TruthfulQA). `setting` holds the lm_score options (mode, premature_layer,
-- candidate_layers, mature_layer, relative_top, relative_top_value, post_softmax, prefix_cache,
-- details) for scoring tasks, and recipe, recipe_options, max_new_tokens, seed, lang for the
-- generating ones; M.layers_setting turns --early-exit-layers into the mode part.
local core = require "slua.core"
local sl = require "slua.util"
local batch = require "slua.batch"
local recipe = require "slua.recipe"

local M = {}

-- Scores run on one session per model, kept between calls: the tokens it holds are the prefix
-- cache (the next call recomputes only what differs from them). Batched scores inside a job of
-- slua.batch.map take one session per batch slot, so that the jobs sharing a pass never share a
-- session.
local sessions = setmetatable({}, { __mode = "k" })

-- Token-forwards of every lm_score call so far (prefix reuse makes this smaller than the sum of
-- the sequence lengths; M.stats.tokens_scored counts those).
M.stats = { calls = 0, n_forwarded = 0, tokens_total = 0 }

function M.reset_stats()
  M.stats.calls, M.stats.n_forwarded, M.stats.tokens_total = 0, 0, 0
end

-- The session lm_score uses for a model (and batch slot: nil = the one outside batches).
-- Sequences may be longer than max_position_embeddings (the references run them: RoPE is
-- defined at every position), so the context grows as needed. With an intervention (an
-- Intervention of slua.intervene) the session carries it; another intervention starts a new
-- session, since the cached prefix was computed under the old one.
function M.session(model, need, intervention, slot)
  local by_slot = sessions[model] or {}
  sessions[model] = by_slot
  local key = slot or 0
  local entry = by_slot[key]
  need = math.max(need or 0, model.config.max_position)
  if not entry or entry.n_ctx < need or entry.intervention ~= intervention then
    local n_ctx = math.max(need, entry and entry.n_ctx * 2 or 0)
    if entry then entry.session:close() end
    entry = { session = model:session{ n_ctx = n_ctx, intervene = intervention }, n_ctx = n_ctx,
              intervention = intervention }
    by_slot[key] = entry
  end
  return entry.session
end

-- Forget the cached prefix of a model: the next score starts on a new session, from position
-- 0, exactly as the first score after loading the model does (a sweep runs each setting so).
function M.drop_cache(model)
  for _, entry in pairs(sessions[model] or {}) do entry.session:close() end
  sessions[model] = nil
end

local modes = { baseline = true, ["dola-static"] = true, dola = true }

-- The core's options for lm_score's opts (checked).
local function core_options(opts, level)
  local mode = opts.mode or "baseline"
  if not modes[mode] then
    error(("lm_score: mode must be baseline, dola-static or dola (got '%s')"):format(tostring(mode)), level + 1)
  end
  local premature
  if mode == "dola-static" then
    if opts.premature_layer == nil then error("lm_score: dola-static needs premature_layer", level + 1) end
    premature = { opts.premature_layer }
  elseif mode == "dola" then
    premature = opts.candidate_layers or opts.candidate_premature_layers
    if type(premature) ~= "table" or #premature == 0 then error("lm_score: dola needs candidate_layers", level + 1) end
  end
  return {
    mode = mode, premature = premature, mature_layer = opts.mature_layer,
    relative_top = opts.relative_top, relative_top_value = opts.relative_top_value,
    post_softmax = opts.post_softmax, reuse_prefix = opts.prefix_cache ~= false, top_k = opts.top_k,
  }
end

-- lm_score(model, full_ids, n_prefix, opts) -> {log_prob, per_token, premature_layers, n_forwarded}
-- opts: mode = "baseline" | "dola-static" | "dola" (default baseline); premature_layer (static);
-- candidate_layers (dola, in order); mature_layer (default N); relative_top (0.1),
-- relative_top_value (-1000), post_softmax (true): the official lm_score defaults;
-- prefix_cache (true): reuse the model's cached prefix; top_k (0): result.top, the k best of
-- each scored distribution.
function M.lm_score(model, full_ids, n_prefix, opts)
  opts = opts or {}
  local options = core_options(opts, 2)
  local s = M.session(model, #full_ids, opts.intervention)
  if opts.intervention then
    -- "prompt" positions of the ops are the context, "generated" ones the continuation: the
    -- cached prefix is kept only where both sequences call it the context
    s:rewind(math.min(s:pos(), n_prefix, math.max(s:prompt_length(), 0)))
    s:set_prompt_length(n_prefix)
  end
  local r = core.lm_score(s, full_ids, n_prefix, options)
  M.stats.calls = M.stats.calls + 1
  M.stats.n_forwarded = M.stats.n_forwarded + r.n_forwarded
  M.stats.tokens_total = M.stats.tokens_total + #full_ids
  return r
end

-- lm_score_many(model, sequences, opts) -> results: lm_score of every {full_ids = {...},
-- n_prefix = n} of the list, with the same results bit for bit, but the prefix the sequences
-- share (one prompt's answers) is evaluated once and their own tokens run as the rows of
-- shared passes (core.lm_score_many). Inside a job of slua.batch.map the sequences wait for
-- the pass shared with the other jobs' (each job on its slot's session). n_forwarded counts
-- the rows each answer ran, the shared prefix's towards the first. opts: lm_score's, and
-- batched = false to score one by one (lm_score). So do prefix_cache = false (every answer
-- from scratch, as the official code computes them) and interventions (their positions are
-- measured per answer).
function M.lm_score_many(model, sequences, opts)
  opts = opts or {}
  if type(sequences) ~= "table" then error("lm_score_many: sequences must be a list of {full_ids, n_prefix}", 2) end
  local need = 0
  for i, q in ipairs(sequences) do
    if type(q) ~= "table" or type(q.full_ids) ~= "table" or math.type(q.n_prefix) ~= "integer" then
      error(("lm_score_many: sequence %d must be {full_ids = {...}, n_prefix = n}"):format(i), 2)
    end
    need = math.max(need, #q.full_ids)
  end
  if opts.batched == false or opts.prefix_cache == false or opts.intervention then
    local out = {}
    for i, q in ipairs(sequences) do out[i] = M.lm_score(model, q.full_ids, q.n_prefix, opts) end
    return out
  end
  local options = core_options(opts, 2)
  if #sequences == 0 then return {} end
  local s = M.session(model, need, nil, batch.slot() or 0)
  local rs = batch.score(s, sequences, options)
  for i, r in ipairs(rs) do
    M.stats.calls = M.stats.calls + 1
    M.stats.n_forwarded = M.stats.n_forwarded + r.n_forwarded
    M.stats.tokens_total = M.stats.tokens_total + #sequences[i].full_ids
  end
  return rs
end

-- The official --early-exit-layers: "-1" (one entry) = baseline; "a,b" = dola-static with
-- premature a and mature b; three or more = dola with the last as mature and the others as
-- candidates, in the order given. Returns the lm_score options (without relative_top etc.).
function M.layers_setting(list)
  if #list <= 1 then return { mode = "baseline" } end
  if #list == 2 then return { mode = "dola-static", premature_layer = list[1], mature_layer = list[2] } end
  local cand = {}
  for i = 1, #list - 1 do cand[i] = list[i] end
  return { mode = "dola", candidate_layers = cand, mature_layer = list[#list] }
end

-- The official tokenisation of a (prompt, answer) pair: the answer is tokenised jointly with
-- the prompt and split off by the prompt's own token count (BOS added as the tokenizer does).
function M.encode_pair(model, text1, text2)
  local tok = model.tokenizer
  if not tok then
    sl.fail(model.path .. ": no tokenizer.json (give pre-tokenised items with --items)")
  end
  local full = tok:encode(text1 .. text2, { special = true })
  local prefix = tok:encode(text1, { special = true })
  return full, #prefix
end

-- The {full_ids, n_prefix} of an answer given as ids or as {prompt, continuation} texts.
local function answer_ids(model, a)
  if a.full_ids then return a.full_ids, a.n_prefix end
  return M.encode_pair(model, a.prompt, a.continuation)
end

-- Scores one answer of an item: a = {full_ids, n_prefix} or {prompt, continuation} texts.
-- setting: lm_score options. Returns the lm_score result.
function M.score_answer(model, a, setting)
  local full, n_prefix = answer_ids(model, a)
  local r = M.lm_score(model, full, n_prefix, setting)
  r.n_tokens = #full
  return r
end

-- Scores the answers of one item together (lm_score_many; setting.batched_score = false: one
-- by one, as score_answer). Returns their results, each with n_tokens.
function M.score_answers(model, answers, setting)
  local seqs = {}
  for i, a in ipairs(answers) do
    local full, n_prefix = answer_ids(model, a)
    seqs[i] = { full_ids = full, n_prefix = n_prefix }
  end
  local opts = setmetatable({ batched = setting.batched_score }, { __index = setting })
  local rs = M.lm_score_many(model, seqs, opts)
  for i, r in ipairs(rs) do r.n_tokens = #seqs[i].full_ids end
  return rs
end

-- The generation loop's prefix caches per model and batch slot: every GSM8K question shares
-- the 8-shot demo, every StrategyQA question the 6-shot one.
local generation_cache = setmetatable({}, { __mode = "k" })

-- Generates a completion of prompt_text with any recipe, in this process, on a loaded model
-- (sl.recipe.load(name):run): setting.recipe (default "greedy"), setting.recipe_options (the recipe's own
-- flags as a table), setting.max_new_tokens, and the task's stop strings; setting.prefix_cache
-- (default on) continues the previous generation's session from the shared prompt prefix. Returns the decoded
-- new text (special tokens skipped, stop strings kept, as the official scripts see it) and
-- the generation's result table.
function M.generate(model, prompt_text, setting, stops)
  local options = {}
  for k, v in pairs(setting.recipe_options or {}) do options[k] = v end
  options.prompt = prompt_text
  options.format = "json" -- nothing is printed in process; this also keeps recipes' notes off stderr
  options.max_new_tokens = setting.max_new_tokens or 256
  if stops and #stops > 0 then options.stop = table.concat(stops, "|") end
  if setting.seed then options.seed = setting.seed end
  if setting.intervene then options.intervene = setting.intervene end
  -- The official scripts run few-shot prompts past max_position_embeddings (RoPE is defined
  -- there); unless --n-ctx says otherwise, the context grows to fit, in powers of two so the
  -- prefix cache keeps one session for most items.
  if (options.n_ctx or 0) == 0 and model.tokenizer then
    local need = #model.tokenizer:encode(prompt_text, { special = true }) + options.max_new_tokens
    local n_ctx = model.config.max_position
    while n_ctx < need do n_ctx = n_ctx * 2 end
    if n_ctx > model.config.max_position then options.n_ctx = n_ctx end
  end
  local cache = nil
  if setting.prefix_cache ~= false then
    -- one cache per slot of a batch (slua.batch), so that no two running generations share one
    local slot = batch.slot() or 0
    generation_cache[model] = generation_cache[model] or {}
    cache = generation_cache[model][slot] or { siblings = generation_cache[model] }
    generation_cache[model][slot] = cache
  end
  local r = recipe.load(setting.recipe or "greedy"):run(options, { model = model, sessions = cache })
  return r.text, r
end

-- Tasks, loaded on first use: ev.tasks.truthfulqa_mc, .factor, .gsm8k, .strategyqa, .mgsm.
M.task_names = { "truthfulqa_mc", "factor", "gsm8k", "strategyqa", "mgsm" }
M.tasks = setmetatable({}, {
  __index = function(t, name)
    for _, known in ipairs(M.task_names) do
      if known == name then
        local mod = require("slua.eval.tasks." .. name)
        rawset(t, name, mod)
        return mod
      end
    end
    return nil
  end,
})

return M
