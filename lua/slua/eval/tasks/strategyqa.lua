-- StrategyQA as the DoLa repository evaluates it (voidism/DoLa strqa_eval.py): the whole
-- train split (2,290 questions), 6-shot chain-of-thought prompt, generation that stops at "Q:"
-- or "\n\n##", then: cut a trailing stop word (in that order, once each), strip, and read the
-- answer after the first "answer is" up to the next "." With --retry 1 (the default) the
-- script's "random guess" is deterministic: no trigger -> "no" if the text contains "no"
-- anywhere ("know", "not", "cannot" count), else "yes"; anything but yes/no -> "no".
local text = require "slua.eval.tasks.text"
local data = require "slua.eval.data"
local ev = require "slua.eval"

local task = {
  name = "strategyqa",
  kind = "generate",
  data = "strategyqa/strategyqa_train.json",
  stop_words = { "Q:", "\n\n##" },
  metric = "accuracy",
}

-- The 6 fixed exemplars of create_demo_text(), in order.
task.exemplars = {
  { q = "Do hamsters provide food for any animals?",
    chain = "Hamsters are prey animals. Prey are food for predators. Thus, hamsters provide food for some animals.",
    answer = "yes" },
  { q = "Could Brooke Shields succeed at University of Pennsylvania?",
    chain = "Brooke Shields went to Princeton University. Princeton University is about as academically rigorous as the University of Pennsylvania. Thus, Brooke Shields could also succeed at the University of Pennsylvania.",
    answer = "yes" },
  { q = "Yes or no: Hydrogen's atomic number squared exceeds number of Spice Girls?",
    chain = "Hydrogen has an atomic number of 1. 1 squared is 1. There are 5 Spice Girls. Thus, Hydrogen's atomic number squared is less than 5.",
    answer = "no" },
  { q = "Yes or no: Is it common to see frost during some college commencements?",
    chain = "College commencement ceremonies can happen in December, May, and June. December is in the winter, so there can be frost. Thus, there could be frost at some commencements.",
    answer = "yes" },
  { q = "Yes or no: Could a llama birth twice during War in Vietnam (1945-46)?",
    chain = "The War in Vietnam was 6 months. The gestation period for a llama is 11 months, which is more than 6 months. Thus, a llama could not give birth twice during the War in Vietnam.",
    answer = "no" },
  { q = "Yes or no: Would a pear sink in water?",
    chain = "The density of a pear is about 0.6 g/cm^3, which is less than water. Objects less dense than water float. Thus, a pear would float.",
    answer = "no" },
}

function task.demo_text()
  local parts = {}
  for i, e in ipairs(task.exemplars) do
    parts[i] = "Q: " .. e.q .. "\nA: " .. e.chain .. " So the answer is " .. e.answer .. ".\n\n"
  end
  return table.concat(parts)
end

-- build_prompt(question, 6, cot_flag = True, shuffle = False); item is the question or {question = ...}.
function task.prompt(item)
  local q = type(item) == "table" and item.question or item
  return task.demo_text() .. "Q: " .. q .. "\nA:"
end

-- The completion as the script scores it: trailing stop words cut, then stripped.
function task.trim(completion)
  local s = completion
  for _, w in ipairs(task.stop_words) do
    if text.ends_with(s, w) then s = s:sub(1, #s - #w) end
  end
  return text.strip(s)
end

-- clean_answer(s, random_guess = False): true / false, or nil where the script would guess.
function task.extract(completion)
  local s = text.lower(task.trim(completion))
  local pred
  if s:find("answer is", 1, true) then
    pred = text.strip(text.split(text.split(s, "answer is")[2], ".")[1])
  else
    return nil
  end
  if pred ~= "yes" and pred ~= "no" then return nil end
  return pred == "yes"
end

-- clean_answer(s, random_guess = True), the script's only try with --retry 1.
function task.extract_with_guess(completion)
  local v = task.extract(completion)
  if v ~= nil then return v end
  local s = text.lower(task.trim(completion))
  if s:find("answer is", 1, true) then return false end -- neither yes nor no -> "no"
  return not s:find("no", 1, true)
end

function task.is_correct(model_answer, gold) return model_answer == gold end

function task.load(path)
  local items = {}
  for i, rec in ipairs(data.json(path)) do
    items[i] = { id = tostring(i - 1), index = i - 1, qid = rec.qid, question = data.need(rec, "question", path),
                 answer = data.need(rec, "answer", path) }
  end
  return items
end

function task.evaluate(model, item, setting)
  local completion, r = ev.generate(model, task.prompt(item), setting, task.stop_words)
  local answer = task.extract_with_guess(completion)
  return { id = item.id, index = item.index, qid = item.qid, completion = completion, model_answer = answer,
           guessed = task.extract(completion) == nil, gold = item.answer,
           is_correct = task.is_correct(answer, item.answer), n_new_tokens = #r.new_ids, stop_reason = r.stop_reason }
end

local gsm8k = require "slua.eval.tasks.gsm8k"
task.summarize, task.item_metrics, task.item_value = gsm8k.summarize, gsm8k.item_metrics, gsm8k.item_value

return task
