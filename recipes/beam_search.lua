-- Beam search and diverse (group) beam search, HF-exact (HF generate with num_beams > 1,
-- do_sample=False; diverse beam search: Vijayakumar et al. 2016, arXiv 1610.02424).
--
-- Usage: slua recipes/beam_search.lua [--num-beams 4] [--length-penalty 1.0]
--        [--early-stopping false|true|never] [--num-return-sequences 1]
--        [--num-beam-groups 1 --diversity-penalty 0] [--eos-token-id ID[,ID...]]
--        [--repetition-penalty 1.0] [--no-repeat-ngram-size 0]
--        [--eos-decay-start 0 --eos-decay-factor 1.0] plus the common flags
-- A hypothesis scores sum(log p) / new_tokens ^ length_penalty; each step keeps the best
-- max(2, 1 + #eos) x beams candidates, the first num_beams non-EOS ones continue. Groups see
-- the tokens earlier groups chose this step as a Hamming penalty (HammingDiversity, which
-- HF runs first in the chain); then HF's order: repetition penalty, no-repeat n-gram, the
-- EOS reward (ExponentialDecayLengthPenalty; factor 1 = off), all on log-probabilities as in
-- HF's beam search (add your own processors to the chain). --eos-token-id overrides the
-- model's EOS ids; an id outside the vocabulary (the fixtures' 512) is never generated. JSON:
-- sequences best first, with HF's new_ids (a finished one ends with the first EOS id) and the
-- EOS that ended it; Ctrl-C gives the best hypotheses so far.
local sl = require "slua"
local beam = require "slua.decoders.beam"
local decode = require "slua.decoders.decode"
local P = sl.processors

return sl.recipe{
  name = "beam_search",
  options = {
    num_beams = 4, num_beam_groups = 1, diversity_penalty = 0.0, num_return_sequences = 1,
    length_penalty = 1.0, early_stopping = "false", eos_token_id = "",
    repetition_penalty = 1.0, no_repeat_ngram_size = 0,
    eos_decay_start = { default = 0, min = 0, help = "EOS reward: new tokens before it starts" },
    eos_decay_factor = { default = 1.0, gt = 0, help = "EOS reward: factor ^ (tokens past the start) (1 = off)" },
  },
  run = decode.search(function(ctx, progress)
    local opt, model = ctx.opt, ctx.model
    local eos = decode.eos_ids(opt, model)
    local custom = {}
    if opt.eos_decay_factor ~= 1 then custom[1] = P.exp_decay_length(opt.eos_decay_start, opt.eos_decay_factor, eos) end
    local chain = sl.chain(P.standard(opt, custom))
    if opt.num_beam_groups > 1 then chain:insert(1, P.hamming_diversity(opt.diversity_penalty)) end
    return beam.search{
      model = model, prompt = ctx.prompt, chain = chain, eos = eos, progress = progress, on_step = progress.on_step,
      session = sl.intervene.session_options(ctx, { kv_type = opt.kv_type }),
      num_beams = opt.num_beams, num_beam_groups = opt.num_beam_groups, max_new_tokens = opt.max_new_tokens,
      length_penalty = opt.length_penalty, num_return_sequences = opt.num_return_sequences,
      early_stopping = decode.early_stopping(opt.early_stopping),
    }
  end),
}
