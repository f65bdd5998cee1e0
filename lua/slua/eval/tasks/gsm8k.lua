-- GSM8K as the DoLa repository evaluates it (voidism/DoLa gsm8k_eval.py): 8-shot
-- chain-of-thought prompt, greedy generation of up to 256 tokens that stops at "Q:" or
-- "\end{code}" (repetition penalty 1.0 for the baseline, 1.2 for DoLa), and clean_answer on
-- the completion as decoded (stop words not stripped). Correct = string equality with the
-- reference number after "####" (commas removed): "18.00" is not "18".
local text = require "slua.eval.tasks.text"
local data = require "slua.eval.data"
local ev = require "slua.eval"

local task = {
  name = "gsm8k",
  kind = "generate",
  data = "gsm8k/test.jsonl",
  stop_words = { "Q:", "\\end{code}" },
  answer_trigger = "The answer is",
  invalid = "[invalid]",
  metric = "accuracy",
}

-- The 8 fixed exemplars of create_demo_text(), in order.
task.exemplars = {
  { q = "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    chain = "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6.",
    answer = "6" },
  { q = "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
    chain = "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5.",
    answer = "5" },
  { q = "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
    chain = "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39.",
    answer = "39" },
  { q = "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
    chain = "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8.",
    answer = "8" },
  { q = "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
    chain = "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9.",
    answer = "9" },
  { q = "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
    chain = "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29.",
    answer = "29" },
  { q = "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
    chain = "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls.",
    answer = "33" },
  { q = "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
    chain = "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8.",
    answer = "8" },
}

function task.demo_text()
  local parts = {}
  for i, e in ipairs(task.exemplars) do
    parts[i] = "Q: " .. e.q .. "\nA: " .. e.chain .. " " .. task.answer_trigger .. " " .. e.answer .. ".\n\n"
  end
  return table.concat(parts)
end

-- build_prompt(question, n_shot = 8, cot_flag = True, shuffle = False)
function task.prompt(question) return task.demo_text() .. "Q: " .. question .. "\n" .. "A:" end

-- extract_answer_from_output: the reference number of an answer field ("... #### 1,234" -> "1234").
function task.reference(answer_field)
  local m = answer_field:match("#### (%-?[0-9%.,]+)")
  if not m then return task.invalid end
  return (text.strip(m):gsub(",", ""))
end

-- clean_answer(completion): "[invalid]" when the completion holds no number.
function task.extract(completion) return text.clean_answer(completion) or task.invalid end

function task.is_correct(model_answer, gt_answer) return model_answer == gt_answer end

function task.load(path)
  local items = {}
  for i, rec in ipairs(data.jsonl(path)) do
    local q, a = data.need(rec, "question", path), data.need(rec, "answer", path)
    items[i] = { id = tostring(i - 1), index = i - 1, question = q, gt_answer = task.reference(a) }
  end
  return items
end

function task.evaluate(model, item, setting)
  local completion, r = ev.generate(model, task.prompt(item.question), setting, task.stop_words)
  local answer = task.extract(completion)
  return { id = item.id, index = item.index, completion = completion, model_answer = answer,
           gt_answer = item.gt_answer, is_correct = task.is_correct(answer, item.gt_answer),
           n_new_tokens = #r.new_ids, stop_reason = r.stop_reason }
end

-- The metrics that are means over items, and an item's value of each (slua.eval.uncertainty).
task.item_metrics = { "accuracy" }
function task.item_value(record) return record.is_correct and 1 or 0 end

function task.summarize(records)
  local correct = 0
  for _, r in ipairs(records) do if r.is_correct then correct = correct + 1 end end
  return { accuracy = #records > 0 and correct / #records or 0.0, correct = correct, n = #records }
end

return task
