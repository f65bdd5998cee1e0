-- SLED: Self Logits Evolution Decoding (Zhang et al., NeurIPS 2024, arXiv 2411.02433); official code
-- github JayZhang42/SLED (sled_greedy_decode in its transformers fork), followed step for step.
--
-- Usage: slua recipes/sled.lua [--early-exit-layers 0,1,...] [--evolution-rate 2] [--evolution-scale 10]
--        [--evolution-lower-bound -1000] [--relative-top 0.1] plus the common flags
-- Each step compares every candidate layer's early exit (lm_head on the raw residual stream,
-- layer 0 = the embeddings) with the final logits: for the evolution_scale most probable final
-- tokens j, c_lj = cos(softmax(logits_l) - onehot(j), logits_l - logits_N) estimates how far each
-- layer's logits point toward j; the squared positive cosines, weighted per layer, give a latent
-- distribution, and the final logits take one step of size evolution_rate toward it:
-- logits_N - evolution_rate * (softmax(logits_N) - latent) on the top tokens,
-- evolution_lower_bound elsewhere (computed in C: out:sled_evolve). As in the official loop the
-- relative-top filter applies only with a single base layer, never to the candidates.
local sl = require "slua"

return sl.recipe{
  name = "sled",
  options = {
    early_exit_layers = { default = "", type = "string",
                          help = "candidate premature layers L1,L2,... (\"\" = every layer 0..N-1, the official default)" },
    evolution_rate = { default = 2.0, help = "step size of the logits evolution" },
    evolution_scale = { default = 10, min = 1, help = "how many top tokens evolve (the others get the lower bound)" },
    evolution_lower_bound = { default = -1000.0, help = "the score of every other token" },
    relative_top = { default = 0.1, min = 0, max = 1, help = "plausibility filter of the official base-layer mode (unused with candidates)" },
    repetition_penalty = 1.0,
  },
  session = function(ctx)
    local n, spec, layers = ctx.model.n_layer, ctx.opt.early_exit_layers, {}
    if spec == "" then
      for l = 0, n - 1 do layers[#layers + 1] = l end
    else
      for part in spec:gmatch("[^,]+") do
        local l = math.tointeger(tonumber(part))
        if not l or l < 0 or l >= n then sl.option_error("early_exit_layers", ("layers in [0, %d]"):format(n - 1), spec) end
        layers[#layers + 1] = l
      end
    end
    ctx.candidates = layers
    return { layers = layers, raw = true, norm = false, hidden = false }
  end,
  scores = function(ctx)
    return ctx.out:sled_evolve(ctx.candidates, ctx.opt)
  end,
}
