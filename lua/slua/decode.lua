-- slua.decode: what the search recipes (beam search, contrastive search, speculative decoding)
-- share: the --eos-token-id override, option checks, and running a search that returns
-- several sequences (text or one JSON object).
local sl = require "slua"
local core = require "slua.core"

local D = {}

-- --eos-token-id "2" or "2,7" (HF's eos_token_id generate argument) over the model's EOS ids.
-- Ids outside the vocabulary are accepted, as HF accepts them: they are simply never generated.
function D.eos_ids(opt, model)
  if opt.eos_token_id == nil or opt.eos_token_id == "" then return model.eos end
  local ids = sl.parse_ints(opt.eos_token_id, "eos-token-id")
  for _, id in ipairs(ids) do
    if id < 0 then sl.fail(("option --eos-token-id must be >= 0 (got %d)"):format(id)) end
  end
  return ids
end

function D.early_stopping(text)
  if text == "true" or text == true then return true end
  if text == "false" or text == false then return false end
  if text == "never" then return "never" end
  sl.fail(("option --early-stopping must be true, false or never (got '%s')"):format(tostring(text)))
end

local function at_least(opt, key, min)
  if opt[key] < min then
    sl.fail(("option --%s must be >= %s (got %s)"):format(key:gsub("_", "-"), min, opt[key]))
  end
end

function D.check_beam_options(opt)
  at_least(opt, "num_beams", 1)
  at_least(opt, "num_beam_groups", 1)
  at_least(opt, "num_return_sequences", 1)
  at_least(opt, "no_repeat_ngram_size", 0)
  if opt.num_beams % opt.num_beam_groups ~= 0 then
    sl.fail(("option --num-beams (%d) must be a multiple of --num-beam-groups (%d)"):format(
      opt.num_beams, opt.num_beam_groups))
  end
  if opt.num_return_sequences > opt.num_beams then
    sl.fail(("option --num-return-sequences (%d) must be <= --num-beams (%d)"):format(
      opt.num_return_sequences, opt.num_beams))
  end
  if not (opt.repetition_penalty > 0) then sl.fail("option --repetition-penalty must be > 0") end
  D.early_stopping(opt.early_stopping)
end

-- A draft or second model for `model`: same vocabulary (size and, with tokenizers, ids).
function D.load_draft(dir, model)
  local other = sl.check(sl.load(dir))
  if other.n_vocab ~= model.n_vocab then
    sl.fail(("%s: vocabulary of %d ids, the model has %d"):format(dir, other.n_vocab, model.n_vocab))
  end
  if other.tokenizer and model.tokenizer then
    local same, at = other.tokenizer:same_vocab(model.tokenizer)
    if not same then sl.fail(("%s: tokenizer differs from the model's at id %d"):format(dir, at)) end
  end
  return other
end

-- A speculative run as a search result: one sequence, the rounds and the mean accepted length.
function D.speculative_result(r)
  local accepted = 0
  for _, round in ipairs(r.rounds) do accepted = accepted + round.accepted end
  return {
    sequences = { { new_ids = r.new_ids } }, stop_reason = r.stop_reason, rounds = r.rounds,
    mean_accepted = #r.rounds > 0 and accepted / #r.rounds or 0,
    tokens_per_round = #r.rounds > 0 and #r.new_ids / #r.rounds or 0,
  }
end

-- Loads the model, encodes the prompt, runs search(model, prompt) -> result with `sequences`
-- ({new_ids, score, ...} best first), then prints every sequence's text, or one JSON object:
-- {model, recipe, options, prompt_ids, new_ids (the best), text, sequences, ...result}.
function D.run(recipe, opt, search)
  sl.set_threads(opt.threads)
  local model = sl.check(sl.load(opt.model ~= "" and opt.model or nil))
  local prompt = sl.prompt_ids(model, opt)
  local tok = model.tokenizer
  local result = search(model, prompt)
  local function text(ids) return tok and tok:decode(ids, { skip_special = true }) or table.concat(ids, " ") end
  for _, s in ipairs(result.sequences) do s.text = text(s.new_ids) end
  result.model, result.recipe, result.options, result.prompt_ids = model.path, recipe, opt, prompt
  result.new_ids = result.sequences[1] and result.sequences[1].new_ids or {}
  result.text = text(result.new_ids)
  if opt.format == "json" then
    io.write(core.json_encode(result), "\n")
  else
    local head = text(prompt)
    for i, s in ipairs(result.sequences) do
      if #result.sequences > 1 then io.write(("[%d] score %.4f: "):format(i, s.score)) end
      io.write(head, s.text, "\n")
    end
  end
  return result
end

return D
