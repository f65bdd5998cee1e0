-- The evaluation tasks' strings against the official scripts' outputs (strings/*.json from
-- voidism/DoLa and dgme-syz/SkipLayerCD): every prompt byte-exact, every extraction row, the
-- TruthfulQA helpers, and MC_calcs / FACTOR on the worked examples of docs/spec/evals.md §3, §4.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local ev = require "slua.eval"
local tasks = ev.tasks

local slua = arg[1] or "build/slua"
local strings = slua:gsub("[^/]+$", "") .. "data/evals/strings/"
local null = require("slua").json.null

local function nilable(v) if v == null then return nil end return v end

T.case("gsm8k: demo, prompts, reference answers and every extraction row", function()
  local g = T.json_file(strings .. "gsm8k.json")
  T.eq(tasks.gsm8k.demo_text(), g.demo_text, "demo text")
  for _, p in ipairs(g.prompts) do
    T.eq(tasks.gsm8k.prompt(p.question), p.prompt, "prompt " .. p.index)
    T.eq(tasks.gsm8k.reference(p.answer_field), p.gt_answer, "reference " .. p.index)
  end
  for i, row in ipairs(g.extraction) do
    T.eq(tasks.gsm8k.reference(row.reference), row.gt_answer, "reference of row " .. i)
    local got = tasks.gsm8k.extract(row.completion)
    T.eq(got, row.model_answer, ("row %d (%q)"):format(i, row.completion))
    T.eq(tasks.gsm8k.is_correct(got, row.gt_answer), row.is_correct, "correctness of row " .. i)
  end
  T.eq(table.concat(tasks.gsm8k.stop_words, "|"), table.concat(g.constants.stop_words, "|"), "stop words")
end)

T.case("gsm8k: the consequences listed in evals.md §5", function()
  local x = tasks.gsm8k.extract
  T.eq(x("The answer is 18.00"), "18.00", "18.00 stays")
  T.eq(x("The answer is \u{2212}5."), "5", "U+2212 is not a minus sign")
  T.eq(x("The answer is 7. The answer is 9."), "7", "first trigger")
  T.eq(x("The answer is 5.."), "5", "one period dropped")
  T.eq(x("nothing here"), "[invalid]", "no number")
  T.eq(x("The answer is \u{0661}\u{0662}"), "\u{0661}\u{0662}", "Arabic-Indic digits are \\d")
end)

T.case("strategyqa: demo, prompts and every extraction row", function()
  local g = T.json_file(strings .. "strategyqa.json")
  T.eq(tasks.strategyqa.demo_text(), g.demo_text, "demo text")
  for _, p in ipairs(g.prompts) do
    T.eq(tasks.strategyqa.prompt(p), p.prompt, "prompt " .. p.index)
    T.eq(tasks.strategyqa.prompt(p.question), p.prompt, "prompt from the question")
  end
  for i, row in ipairs(g.extraction) do
    T.eq(tasks.strategyqa.trim(row.raw_completion), row.model_completion, "trim of row " .. i)
    T.eq(tasks.strategyqa.extract(row.raw_completion), nilable(row.model_answer_no_random_guess), "extract of row " .. i)
    local guess = tasks.strategyqa.extract_with_guess(row.raw_completion)
    T.eq(guess, row.model_answer, "answer of row " .. i)
    T.eq(tasks.strategyqa.is_correct(guess, row.gold), row.is_correct, "correctness of row " .. i)
  end
end)

T.case("mgsm: instruction, prompts in two languages and every extraction row", function()
  local g = T.json_file(strings .. "mgsm.json")
  T.eq(tasks.mgsm.prefix_prompt, g.constants.prefix_prompt, "instruction")
  for _, lang in ipairs{ "zh", "en" } do
    for _, p in ipairs(g.prompts[lang]) do
      T.eq(tasks.mgsm.prompt(p.question, lang), p.prompt, lang .. " prompt " .. p.index)
      T.eq(tasks.mgsm.label(p.answer_tsv), p.label, lang .. " label " .. p.index)
    end
  end
  T.eq(tasks.mgsm.label("2,125"), "2125", "commas")
  for i, row in ipairs(g.extraction) do
    local got = tasks.mgsm.extract(row.completion)
    T.eq(got, nilable(row.model_answer), ("row %d (%q)"):format(i, row.completion))
    T.eq(tasks.mgsm.is_correct(got, row.label), row.is_correct, "correctness of row " .. i)
  end
end)

T.case("truthfulqa_mc: demo, prompts, reference lists and helpers", function()
  local g = T.json_file(strings .. "tfqa_prompts.json")
  T.eq(tasks.truthfulqa_mc.demo, g.demo_text, "demo text")
  for _, p in ipairs(g.prompts) do
    T.eq(tasks.truthfulqa_mc.prompt(p.question), p.prompt, "prompt " .. p.index)
    T.eq(tasks.truthfulqa_mc.continuation(p.answer), p.continuation, "continuation " .. p.index)
  end
  for input, want in pairs(g.helpers.split_multi_answer) do
    T.eq(table.concat(tasks.truthfulqa_mc.split_multi_answer(input), "|"), table.concat(want, "|"), "split " .. input)
  end
  for input, want in pairs(g.helpers.format_best) do
    T.eq(tasks.truthfulqa_mc.format_best(input), want, "format_best " .. input)
  end
end)

T.case("truthfulqa_mc: MC_calcs on the examples of evals.md §3 (overflow, per-group halving)", function()
  local m = tasks.truthfulqa_mc.metrics({ -3, -5 }, { -4, -2.5, -6 })
  T.eq(m.MC1, 0.0, "MC1")
  T.eq(m.MC3, 0.0, "MC3")
  T.near(m.MC2, 0.354601338, 1e-9, "MC2")
  m = tasks.truthfulqa_mc.metrics({ 800, 700 }, { 650 })
  T.eq(m.MC1 .. "," .. m.MC3 .. "," .. m.MC2, "1.0,1.0,0.0", "overflow gives MC2 0")
  m = tasks.truthfulqa_mc.metrics({ -800, -900 }, { -750 }, { "a.", "b." }, "b.")
  T.eq(m.MC1, 0.0, "best = second true answer")
  T.near(m.MC2, 1.3888e-11, 1e-14, "each group halved once")
  T.eq(tasks.truthfulqa_mc.metrics({ -1, -9 }, { -5 }, 2).MC1, 0.0, "best given as an index")
end)

T.case("factor: ties count as correct", function()
  T.eq(tasks.factor.is_correct({ -1000, -1000, -2000, -3000 }), true, "tie")
  T.eq(tasks.factor.is_correct({ -5, -4.9, -6, -7 }), false, "a contradiction wins")
end)

T.case("bundled data sets load as the official scripts read them", function()
  local data = require "slua.eval.data"
  local root = data.root .. "/"
  local tf = ev.tasks.truthfulqa_mc.load(root .. "truthfulqa/TruthfulQA.csv")
  T.eq(#tf, 817, "TruthfulQA rows")
  local fx = T.json_file(strings .. "../tiny-llama/tfqa_mc.json")
  for i, q in ipairs(fx.questions) do
    T.eq(tf[i].question, q.question, "question " .. i)
    T.eq(tf[i].ref_best, q.ref_best, "best answer " .. i)
    T.eq(table.concat(tf[i].ref_true, "|"), table.concat(q.ref_true, "|"), "true answers " .. i)
    T.eq(table.concat(tf[i].ref_false, "|"), table.concat(q.ref_false, "|"), "false answers " .. i)
    T.eq(ev.tasks.truthfulqa_mc.prompt(tf[i].question), q.prompt, "prompt " .. i)
  end
  local news = ev.tasks.factor.load(root .. "factor/news_factor.csv")
  T.eq(#news, 1036, "FACTOR news rows")
  local fa = T.json_file(strings .. "../tiny-llama/factor.json")
  for _, r in ipairs(fa.rows) do
    local item = news[r.row_index + 1]
    T.eq(item.prefix, r.prefix, "news prefix (full_prefix) of row " .. r.row_index)
    for j, c in ipairs(r.continuations) do
      T.eq(ev.tasks.factor.continuation(item.answers[j]), c, "continuation " .. j)
    end
  end
  local expert = ev.tasks.factor.load(root .. "factor/expert_factor.csv")
  T.eq(#expert, 236, "FACTOR expert rows")
  local recs = data.csv_records(root .. "factor/expert_factor.csv")
  T.eq(expert[1].prefix, recs[1].turncated_prefixes, "expert rows read turncated_prefixes")
  T.truthy(recs[1].turncated_prefixes ~= recs[1].full_prefix, "the columns differ")
  local g = ev.tasks.gsm8k.load(root .. "gsm8k/test.jsonl")
  T.eq(#g, 1319, "GSM8K rows")
  for i, p in ipairs(T.json_file(strings .. "gsm8k.json").prompts) do
    T.eq(g[i].question, p.question, "GSM8K question " .. i)
    T.eq(g[i].gt_answer, p.gt_answer, "GSM8K answer " .. i)
  end
  local sq = ev.tasks.strategyqa.load(root .. "strategyqa/strategyqa_train.json")
  T.eq(#sq, 2290, "StrategyQA items")
  for i, p in ipairs(T.json_file(strings .. "strategyqa.json").prompts) do
    T.eq(sq[i].qid .. sq[i].question, p.qid .. p.question, "StrategyQA item " .. i)
    T.eq(sq[i].answer, p.answer, "StrategyQA answer " .. i)
  end
  local mg = T.json_file(strings .. "mgsm.json")
  for _, lang in ipairs{ "zh", "en" } do
    local items = ev.tasks.mgsm.load(root .. ev.tasks.mgsm.data_for(lang))
    T.eq(#items, 250, "MGSM " .. lang)
    for i, p in ipairs(mg.prompts[lang]) do
      T.eq(items[i].question, p.question, "MGSM question " .. i)
      T.eq(items[i].label, p.label, "MGSM label " .. i)
    end
  end
end)

T.finish()
