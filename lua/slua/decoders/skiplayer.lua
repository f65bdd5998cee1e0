-- slua.decoders.skiplayer: SkipLayerCD (Zhu et al., Findings of EMNLP 2024, arXiv 2407.10795): the amateur
-- is the same model with a contiguous span of decoder layers skipped, run as a fork of the
-- expert's session that shares every block below the span.
local core = require "slua.core"

local S = {}

-- The blocks of a half-open span [start, stop).
function S.blocks(span)
  local out = {}
  for b = span[1], span[2] - 1 do out[#out + 1] = b end
  return out
end

-- SL-H: span length round_half_even(N / 8), start = randrange(4, N // 2) from Python's random
-- seeded once with `seed`; `draw` picks the draw (one per example, in dataset order).
function S.heuristic_span(n_layer, seed, draw)
  local r = core.pyrandom(seed)
  local len = core.round_half_even(n_layer / 8)
  local start, err
  for _ = 1, draw or 1 do
    start, err = r:randrange(4, n_layer // 2)
    if not start then
      return nil, ("SL-H: %s: needs at least 10 layers, the model has %d"):format(err, n_layer)
    end
  end
  return { start, start + len }
end

-- A span for models too shallow for SL-H (fewer than 10 layers, where randrange(4, N // 2) is
-- empty and the official code fails): the official length round_half_even(N / 8), at least
-- 1, in the middle of the stack and never the first block: start = max(1, (N - len) // 2).
-- Not from the paper; the recipes announce it (span_source "small-model span").
function S.small_model_span(n_layer)
  if n_layer < 2 then return nil, ("a small-model span needs at least 2 layers, the model has %d"):format(n_layer) end
  local len = math.max(1, core.round_half_even(n_layer / 8))
  local start = math.max(1, (n_layer - len) // 2)
  return { start, start + len }
end

-- Logit-lens entropy profile Y[0..N-1] over a prefix: Y[l] is the mean, over positions
-- 0..T-2, of the entropy (nats) of softmax(lm_head(final_norm(hidden_states[l]))).
function S.entropy_profile(model, prefix)
  assert(#prefix >= 2, "entropy profile: the prefix needs at least 2 tokens")
  local layers = {}
  for l = 0, model.n_layer - 1 do layers[#layers + 1] = l end
  local s <close> = model:session{ layers = layers, raw = false, norm = true, hidden = false }
  local sums = {}
  for i = 1, #layers do sums[i] = 0 end
  for t = 1, #prefix - 1 do
    local out = t == 1 and s:prefill{ prefix[1] } or s:step(prefix[t])
    for i, h in ipairs(out:layer_entropies(layers, "norm")) do sums[i] = sums[i] + h end
  end
  local Y = {}
  for i, v in ipairs(sums) do Y[i] = v / (#prefix - 1) end
  return Y
end

-- SL-D: the span chosen by `rule` ("official" | "community") on the profile, or nil.
function S.dynamic_span(model, prefix, rule)
  local Y = S.entropy_profile(model, prefix)
  local start, stop = core.sld_select(Y, rule or "official")
  return start and { start, stop } or nil, Y
end

-- The contrast scores of one step. opt.contrast: "official" (e + beta (e - a) on
-- e >= max e + ln alpha) or "logprob" (log p_e - log p_a on p_e >= alpha max p_e).
function S.contrast(expert, amateur, opt)
  if opt.contrast == "official" then
    return core.contrast_skiplayer(expert, amateur, opt.alpha, opt.beta, opt.amateur_temperature)
  elseif opt.contrast == "logprob" then
    return core.contrast_logprob(expert, amateur, opt.alpha, opt.amateur_temperature)
  end
  error(("contrast must be official or logprob (got '%s')"):format(tostring(opt.contrast)), 2)
end

return S
