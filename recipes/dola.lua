-- DoLa: Decoding by Contrasting Layers (Chuang et al., ICLR 2024, arXiv 2309.03883), HF-exact.
--
-- Usage: slua recipes/dola.lua [--dola-layers high|low|L1,L2,...] [--repetition-penalty 1.2]
--        [--relative-top 0.1] [--mature-layer -1] [--do-sample] [--temperature 1.0] [--top-k 50]
--        [--top-p 1.0] [--html FILE [--target TEXT] [--view-top 5] [--wrap 16]] plus the common flags
-- Each step contrasts the final layer with the candidate layer whose early-exit distribution
-- (lm_head without the final norm) diverges most from it: log p_N - log p_m on tokens with
-- p_N >= relative_top * max p_N, -inf elsewhere. One listed layer = static DoLa. The
-- processors (repetition penalty 1.2 as the paper recommends), then any sampling warpers, run
-- on the contrast. Original-repository variants: --relative-top 0 takes the raw logit
-- difference; --mature-layer L (static DoLa only) contrasts against layer L instead of the final.
local sl = require "slua"
local dola = require "slua.decoders.dola"
local view = require "slua.view"

return sl.recipe{
  name = "dola",
  options = view.with_options{
    dola_layers = { default = "high", help = "candidate premature layers: high, low or L1,L2,...",
                    check = function(v) return not dola.valid_spec(v) and "high, low or a list of layers" or nil end },
    relative_top = { default = 0.1, min = 0, max = 1, help = "plausibility filter (0 = raw logit difference)" },
    mature_layer = { default = -1, min = -1, help = "contrast against this layer instead of the final (-1)",
                     model_check = function(v, model) return v > model.n_layer and ("in [-1, %d]"):format(model.n_layer) or nil end },
    repetition_penalty = 1.2, do_sample = false, temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0,
  },
  after = view.after,                              -- --html FILE: the run's logit lens and DoLa strip
  -- which per-layer outputs the session must produce (one LM-head product per step for all)
  session = function(ctx)
    local opt = ctx.opt
    local mature = opt.mature_layer >= 0 and opt.mature_layer or nil
    ctx.candidates = sl.try_option(dola.layers, opt.dola_layers, ctx.model)   -- HF's "low"/"high" rule, or a list
    if mature and #ctx.candidates > 1 then sl.option_error("mature_layer", "-1 unless --dola-layers names one layer", opt.mature_layer) end
    if ctx.cli and opt.format == "text" then io.stderr:write("dola: candidate layers ", table.concat(ctx.candidates, ","), "\n") end
    ctx.mature = mature
    return dola.session_layers(ctx.candidates, mature)
  end,
  -- the scores of one step; processors (the penalty) and argmax/sampling follow
  scores = function(ctx)
    return dola.contrast(ctx.out, ctx.candidates, { relative_top = ctx.opt.relative_top, mature = ctx.mature })
  end,
}
