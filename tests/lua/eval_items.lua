-- Pre-tokenised items files (slua eval --items) from the official scripts' fixtures
-- (tests/data/evals), with the ids as the references tokenised them. Shared by the eval tests.
local M = {}

-- TruthfulQA-MC: tfqa_mc.json's questions as items.
function M.tfqa(fx)
  local objs = {}
  for _, q in ipairs(fx.questions) do
    local answers = {}
    for i, a in ipairs(q.answers) do answers[i] = { kind = a.kind, full_ids = a.full_ids } end
    objs[#objs + 1] = { id = q.index, index = q.index, prompt_ids = q.prompt_ids, ref_true = q.ref_true,
                        ref_best = q.ref_best, answers = answers }
  end
  return objs
end

-- FACTOR: factor.json's rows as items.
function M.factor(fx)
  local objs = {}
  for _, r in ipairs(fx.rows) do
    objs[#objs + 1] = { id = r.row_index, row_index = r.row_index, prompt_ids = r.prompt_ids, full_ids = r.full_ids }
  end
  return objs
end

return M
