-- FACTOR (Muhlgay et al. 2023) as the DoLa repository scores it (voidism/DoLa factor_eval.py):
-- each row's true completion and its three contradictions are scored with
-- lm_score(prefix, " " .. answer); the row is correct when no contradiction scores strictly
-- higher (ties count as correct). Settings of the script: relative_top 0.1 with -1000 for
-- implausible tokens, post_softmax on (the lm_score defaults). The prefix column is
-- full_prefix when the FILE NAME contains "news", else turncated_prefixes [sic].
local data = require "slua.eval.data"
local sl = require "slua.util"
local ev = require "slua.eval"
local task = {
  name = "factor",
  kind = "score",
  data = "factor/news_factor.csv",
  settings = { relative_top = 0.1, relative_top_value = -1000.0, post_softmax = true },
  metric = "accuracy",
}

function task.prompt(prefix) return prefix end
function task.continuation(answer) return " " .. answer end

-- log_probs[1] is the true completion: correct iff not any(true < false_i).
function task.is_correct(log_probs)
  for i = 2, #log_probs do
    if log_probs[1] < log_probs[i] then return false end
  end
  return true
end

function task.load(path)
  local column = path:find("news", 1, true) and "full_prefix" or "turncated_prefixes"
  local items = {}
  for i, rec in ipairs(data.csv_records(path)) do
    local answers = { data.need(rec, "completion", path) }
    for j = 0, 2 do answers[#answers + 1] = data.need(rec, "contradiction_" .. j, path) end
    items[#items + 1] = { id = tostring(i - 1), index = i - 1, prefix = data.need(rec, column, path), answers = answers }
  end
  return items
end

-- A pre-tokenised row: {id, n_prefix | prompt_ids, full_ids = [4 id lists, true first]}.
function task.from_ids(obj, where)
  local n_prefix = obj.n_prefix or (obj.prompt_ids and #obj.prompt_ids)
  if type(obj.full_ids) ~= "table" or #obj.full_ids < 2 or not n_prefix then
    sl.fail(where .. ": a FACTOR item needs full_ids (true answer first) and n_prefix or prompt_ids")
  end
  local item = { id = tostring(obj.id or obj.row_index or obj.index), index = obj.row_index or obj.index, scored = {} }
  for i, ids in ipairs(obj.full_ids) do item.scored[i] = { full_ids = ids, n_prefix = n_prefix } end
  return item
end

function task.evaluate(model, item, setting)
  local rec = { id = item.id, index = item.index, log_probs = {}, n_forwarded = 0, n_tokens = 0 }
  local answers = item.scored
  if not answers then
    answers = {}
    for i, a in ipairs(item.answers) do answers[i] = { prompt = item.prefix, continuation = task.continuation(a) } end
  end
  local details = setting.details and {} or nil
  for i, r in ipairs(ev.score_answers(model, answers, setting)) do
    rec.log_probs[i] = r.log_prob
    rec.n_forwarded, rec.n_tokens = rec.n_forwarded + r.n_forwarded, rec.n_tokens + r.n_tokens
    if details then details[i] = { per_token = r.per_token, premature_layers = r.premature_layers } end
  end
  rec.is_correct = task.is_correct(rec.log_probs)
  rec.answer_details = details
  return rec
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
