-- The evaluation tasks' strings against the official scripts' outputs (strings/*.json from
-- voidism/DoLa and dgme-syz/SkipLayerCD): every prompt byte-exact, every extraction row, the
-- TruthfulQA helpers, and MC_calcs / FACTOR on the spec's worked examples.
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

T.case("gsm8k: the spec's listed consequences", function()
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

T.case("truthfulqa_mc: MC_calcs on the spec's examples (overflow, per-group halving)", function()
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

T.finish()
