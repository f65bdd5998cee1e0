-- Prefix cache of `slua eval` against the official per-answer full recompute, on TruthfulQA-MC.
--
-- Usage: build/slua bench/eval_prefix_cache.lua [--model build/bench-models/smollm2-135m]
--          [--tokenizer build/data/tokenizers/smollm2] [--questions 200] [--recompute-questions 0]
--          [--layers -1 | a,b,...,N] [--threads 2]
--
-- Tokenises the first --questions TruthfulQA questions with the real SmolLM2 tokenizer (the
-- model is random weights at the SmolLM2-135M shape, see bench/README.md), scores every answer
-- twice: once as `slua eval` does (one session, the longest common prefix kept between calls:
-- the few-shot demo is shared by every question and the question by its answers) and once from
-- scratch per answer as the official tfqa_mc_eval.py does. The recompute pass can be limited to
-- the first --recompute-questions (0 = all) and its time scaled to all questions. Prints one JSON
-- object: token-forwards and wall time of both passes, their ratios and the largest score
-- difference between them.
local sl = require "slua"
local ev = require "slua.eval"
local core = require "slua.core"

local opt = sl.options(arg, {
  model = sl.root .. "/build/bench-models/smollm2-135m", tokenizer = sl.root .. "/build/data/tokenizers/smollm2",
  questions = 200, recompute_questions = 0, layers = "-1", threads = 2,
})
sl.set_threads(opt.threads)
local model = sl.check(sl.load(opt.model))
local tok = sl.check(sl.load_tokenizer(opt.tokenizer .. "/tokenizer.json"))
local task = ev.tasks.truthfulqa_mc
local setting = ev.layers_setting(sl.parse_ints(opt.layers, "layers"))
for k, v in pairs(task.settings) do setting[k] = v end

-- Every answer as (full_ids, n_prefix), question by question.
local questions = {}
for i, item in ipairs(task.load(require("slua.eval.data").root .. "/" .. task.data)) do
  if i > opt.questions then break end
  local prompt = task.prompt(item.question)
  local n_prefix = #tok:encode(prompt, { special = true })
  local answers = {}
  for _, list in ipairs{ item.ref_true, item.ref_false } do
    for _, a in ipairs(list) do
      answers[#answers + 1] = { full_ids = tok:encode(prompt .. task.continuation(a), { special = true }),
                                n_prefix = n_prefix }
    end
  end
  questions[#questions + 1] = answers
end

-- Two handles on the same mapped checkpoint, so each pass keeps its own session; the passes
-- alternate question by question, so a busy machine slows both alike.
local recompute_model = sl.check(sl.load(opt.model))
local nq = #questions
local nr = opt.recompute_questions > 0 and math.min(opt.recompute_questions, nq) or nq
local cached = { wall_s = 0, forwards = 0, tokens = 0, scores = {} }
local fresh = { wall_s = 0, forwards = 0, tokens = 0, scores = {} }

local function score_question(m, answers, cache, acc)
  local s = {}
  for k, v in pairs(setting) do s[k] = v end
  s.prefix_cache = cache
  if not cache then ev.drop_cache(m) end
  local t0 = core.clock()
  for _, a in ipairs(answers) do
    local r = ev.lm_score(m, a.full_ids, a.n_prefix, s)
    acc.scores[#acc.scores + 1] = r.log_prob
    acc.forwards = acc.forwards + r.n_forwarded
    acc.tokens = acc.tokens + #a.full_ids
  end
  acc.wall_s = acc.wall_s + core.clock() - t0
end

for q = 1, nq do
  score_question(model, questions[q], true, cached)
  if q <= nr then score_question(recompute_model, questions[q], false, fresh) end
end
local worst = 0
for i = 1, #fresh.scores do
  worst = math.max(worst, math.abs(cached.scores[i] - fresh.scores[i]) / math.max(1, math.abs(fresh.scores[i])))
end
local answers = 0
for _, q in ipairs(questions) do answers = answers + #q end
-- The official code runs every answer's whole sequence (all tokens); the recompute pass here
-- runs all but the last token (no position scores it), so its own count is slightly lower.
local official_forwards = cached.tokens
local recompute_wall = fresh.wall_s * (cached.tokens / fresh.tokens)
io.write(sl.json.encode{
  model = opt.model, questions = nq, answers = answers, mode = setting.mode, threads = opt.threads,
  cached = { token_forwards = cached.forwards, wall_s = cached.wall_s },
  recompute = { token_forwards_official = official_forwards, questions_timed = nr, wall_s_timed = fresh.wall_s,
                wall_s = recompute_wall, scaled = nr < nq },
  forwards_ratio = official_forwards / cached.forwards, wall_ratio = recompute_wall / cached.wall_s,
  max_rel_score_diff = worst,
}, "\n")
