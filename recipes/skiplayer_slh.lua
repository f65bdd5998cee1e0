-- SkipLayerCD, SL-H: contrast with the same model minus a random span of layers (arXiv 2407.10795).
--
-- Usage: slua recipes/skiplayer_slh.lua [--span-seed 2023] [--example 1] [--skip-blocks START:END]
--        [--small-model-span middle|none] [--contrast official|logprob] [--alpha 0.1] [--beta 0.5]
--        [--amateur-temperature 1.0] [--html FILE [--target TEXT] [--view-top 5] [--wrap 16]] plus the common flags
-- The span has round_half_even(N/8) layers and starts at Python's random.randrange(4, N//2)
-- after random.seed(2023): the official code draws once per example in dataset order, so
-- --example k takes the k-th draw. --skip-blocks 2:4 forces the span [2, 4). Models with fewer
-- than 10 layers have no SL-H span (the official code fails): they skip the middle block(s)
-- instead (slua.decoders.skiplayer.small_model_span, announced on stderr and as span_source), or fail
-- with --small-model-span none. The amateur is a fork of the expert's session: it reuses
-- every block below the span. Scores (official): e + beta (e - a) where e >= max e + ln alpha,
-- -inf elsewhere; --contrast logprob is the community form log p_e - log p_a. Greedy unless
-- --do-sample.
local sl = require "slua"
local contrast = require "slua.decoders.contrast"
local skiplayer = require "slua.decoders.skiplayer"

return contrast.recipe{
  name = "skiplayer_slh",
  options = contrast.options_with(contrast.span_options), view = true,       -- view: --html FILE
  amateur = function(ctx)
    local opt, n_layer = ctx.opt, ctx.model.n_layer
    local span, source
    if opt.skip_blocks ~= "" then
      span, source = contrast.parse_span(opt.skip_blocks, n_layer), "explicit"
    else
      span, source = contrast.heuristic_span(opt, n_layer, "sl-h")
    end
    ctx.extra.skip_span, ctx.extra.span_source = span, source
    contrast.announce(ctx, span, source)
    return ctx.session:fork{ skip = skiplayer.blocks(span) }
  end,
}
