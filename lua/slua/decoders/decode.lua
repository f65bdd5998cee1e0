-- slua.decoders.decode: what the search recipes (beam search, speculative decoding) share: the
-- --eos-token-id override, a draft model, and running a search that returns several sequences
-- as every recipe runs: text or one JSON object, or the result returned to an in-process
-- caller (recipe:run), Ctrl-C still handing over what was found.
local sl = require "slua.util"
local run = require "slua.run"
local speculative = require "slua.decoders.speculative"

local D = {}

-- --eos-token-id "2" or "2,7" (HF's eos_token_id generate argument; slua.options checks it)
-- over the model's EOS ids. Ids outside the vocabulary are accepted, as HF accepts them: they
-- are simply never generated.
function D.eos_ids(opt, model)
  if opt.eos_token_id == nil or opt.eos_token_id == "" then return model.eos end
  return sl.parse_ids(opt.eos_token_id, "eos_token_id")
end

-- --early-stopping (false | true | never, checked by slua.options) as HF's value.
function D.early_stopping(text)
  if text == "true" or text == true then return true end
  if text == "never" then return "never" end
  return false
end

-- A draft or second model for `model`: same vocabulary (size and, with tokenizers, ids), its
-- weights kept in the same format.
function D.load_draft(dir, model)
  local other = sl.check(sl.load(dir, { weights = model.weights }))
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

-- slua.decoders.speculative.generate(spec) as a search result for D.run, its progress included.
function D.speculative(spec, progress)
  local raw = {}
  spec.progress = raw
  progress.partial = function() return raw.partial and D.speculative_result(raw.partial()) end
  spec.on_prefill = progress.on_prefill
  return D.speculative_result(speculative.generate(spec))
end

-- A recipe's run hook (sl.recipe{run = decode.search(fn)}) for a search that returns several
-- sequences: encodes the prompt (ctx.prompt), runs fn(ctx, progress) -> result with
-- `sequences` ({new_ids, score, ...} best first), and completes the result:
-- {model, recipe, options, prompt_ids, new_ids (the best), text, sequences, ...result}; text
-- mode prints every sequence's text after the prompt. A search that sets progress.partial =
-- function() return result so far end hands over what it has found on Ctrl-C, with
-- stop_reason "interrupted" (the host then exits with 130); a search calls progress.on_step(n),
-- when set, after each complete step. Texts are HF's:
-- decode(prompt + new)[len(decode(prompt)):].
function D.search(fn)
  return function(ctx)
    local model, opt = ctx.model, ctx.opt
    local prompt = run.prompt_ids(model, opt)
    ctx.prompt = prompt
    local tok = model.tokenizer
    local function text(ids)
      if tok then return run.continuation_text(tok, prompt, ids) end
      return #ids > 0 and " " .. table.concat(ids, " ") or ""
    end
    local function write_text(result)
      local head = tok and tok:decode(prompt, { skip_special = true }) or table.concat(prompt, " ")
      for i, s in ipairs(result.sequences) do
        if #result.sequences > 1 and s.score then io.write(("[%d] score %.4f: "):format(i, s.score)) end
        io.write(head, s.text, "\n")
      end
    end
    local function finish(result)
      for _, s in ipairs(result.sequences) do s.text = text(s.new_ids) end
      result.model, result.recipe, result.options, result.prompt_ids = model.path, ctx.recipe.name, opt, prompt
      result.new_ids = result.sequences[1] and result.sequences[1].new_ids or {}
      result.text = text(result.new_ids)
      for k, v in pairs(ctx.extra) do result[k] = v end
      return run.emit_result(result, ctx, write_text)
    end
    -- progress.on_step(step) announces a complete step (ctx.progress: SLUA_PROGRESS)
    local progress = { on_step = ctx.progress and function(step) ctx.progress(step) end,
                       on_prefill = function(n) run.mark_prefill(ctx, n) end }
    local guard <close> = run.guard(ctx, function()
      local result = progress.partial and progress.partial() or { sequences = {} }
      result.stop_reason = "interrupted"
      finish(result)
    end)
    local result = fn(ctx, progress)
    guard.finished = true
    return finish(result)
  end
end

return D
