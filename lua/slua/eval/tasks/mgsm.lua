-- MGSM (Shi et al. 2022) as the community SkipLayerCD evaluator scores it (dgme-syz/SkipLayerCD
-- utils/data_module/mgsm.py, MgsmEval): zero-shot, the same Chinese instruction for every
-- language, glued to "Q: " with nothing between and a space before "\nA:"; the answer is
-- GSM8K's clean_answer (None instead of "[invalid]"); correct iff str(answer) == str(label),
-- the label being int(tsv answer without commas). The seed evaluates only its first item (a
-- debugging leftover); this harness evaluates every item.
local text = require "slua.eval.tasks.text"
local sl = require "slua.util"
local data = require "slua.eval.data"
local ev = require "slua.eval"

local task = {
  name = "mgsm",
  kind = "generate",
  data = "mgsm/mgsm_zh.tsv",
  stop_words = {},
  prefix_prompt = "(只需要回答当前问题，请把你的答案写在 The answer is 的后面)",
  metric = "accuracy",
}

-- The languages bundled under data/mgsm/ (--lang picks one).
task.languages = { "bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh" }

function task.data_for(lang) return ("mgsm/mgsm_%s.tsv"):format(lang) end

-- lang is accepted for symmetry: the seed uses the same instruction in every language.
function task.prompt(question, lang)
  local _ = lang
  return task.prefix_prompt .. "Q: " .. question .. " \nA:"
end

-- str or nil (no number).
function task.extract(completion) return text.clean_answer(completion) end

function task.is_correct(model_answer, label)
  return tostring(model_answer == nil and "None" or model_answer) == tostring(label)
end

-- answer_number = int(answer.replace(",", "")), as a string.
function task.label(answer_tsv)
  local v = math.tointeger(tonumber(text.strip((answer_tsv:gsub(",", "")))))
  if not v then sl.fail(("mgsm: answer '%s' is not an integer"):format(answer_tsv)) end
  return tostring(v)
end

function task.load(path)
  local items = {}
  for i, row in ipairs(data.parse_delimited(data.read(path), "\t", path)) do
    if #row >= 2 then
      items[#items + 1] = { id = tostring(i - 1), index = i - 1, question = row[1], label = task.label(row[2]) }
    end
  end
  return items
end

function task.evaluate(model, item, setting)
  local completion, r = ev.generate(model, task.prompt(item.question, setting.lang), setting, task.stop_words)
  local answer = task.extract(completion)
  return { id = item.id, index = item.index, completion = completion, model_answer = answer, label = item.label,
           is_correct = task.is_correct(answer, item.label), n_new_tokens = #r.new_ids, stop_reason = r.stop_reason }
end

local gsm8k = require "slua.eval.tasks.gsm8k"
task.summarize, task.item_metrics, task.item_value = gsm8k.summarize, gsm8k.item_metrics, gsm8k.item_value

return task
