-- slua.decoders.dola: DoLa, Decoding by Contrasting Layers (Chuang et al., ICLR 2024), as HF transformers
-- 4.43–4.55 implements it (generation/utils.py _dola_decoding), plus the original repository's
-- variants (voidism/DoLa): no plausibility filter with raw-logit difference, a chosen mature layer.
local core = require "slua.core"
local options = require "slua.options"

local D = {}

-- Candidate premature layers: spec "low" | "high" | "2,4" | {2, 4}, resolved with HF's rule for
-- the model (tied embeddings skip layer 0; windows of 20 layers above 40 layers).
function D.layers(spec, model)
  if type(spec) == "string" and spec ~= "low" and spec ~= "high" then
    local list = {}
    for part in spec:gmatch("[^,]+") do
      list[#list + 1] = math.tointeger(tonumber(part)) or error(("dola layers: '%s' is not a layer"):format(part), 2)
    end
    spec = list
  end
  return core.dola_layers(spec, model.n_layer, model.tied)
end

-- Whether spec is "low", "high" or a comma-separated list of integers.
function D.valid_spec(spec)
  return spec == "low" or spec == "high" or options.int_list(spec, "^%s*%d+%s*$") ~= nil
end

-- The layers a session must expose for DoLa: the candidates (raw logits), and the mature layer
-- when it is not the final one.
function D.session_layers(candidates, mature)
  local layers = {}
  for _, l in ipairs(candidates) do layers[#layers + 1] = l end
  if mature then layers[#layers + 1] = mature end
  return { layers = layers, raw = true, norm = false, hidden = false }
end

-- One DoLa step on an Output: picks the premature layer with the largest divergence (first on
-- ties; a single candidate is static DoLa) and returns the contrast scores and a record.
-- opts: relative_top (0.1; 0 = the original repo's raw-logit difference), mature (layer or nil =
-- final logits).
function D.contrast(out, candidates, opts)
  local rt = opts.relative_top or 0.1
  local mature = opts.mature and out:layer_logits(opts.mature, "raw") or out.logits
  local premature, divs = candidates[1], core.null
  if #candidates > 1 then
    assert(not opts.mature, "a chosen mature layer needs a single candidate (static DoLa)")
    divs = out:dola_divergences(candidates)
    local best = -math.huge
    for i, d in ipairs(divs) do
      if d > best then best, premature = d, candidates[i] end
    end
  end
  local base = out:layer_logits(premature, "raw")
  local record = { candidate_layers = candidates, js_divs = divs, premature_layer = premature }
  if rt <= 0 then
    record.relative_top_kept = core.null
    return mature:sub(base), record
  end
  local a, b = mature:log_softmax(), base:log_softmax()
  local keep = a:relative_top_mask(rt)
  record.relative_top_kept = keep:count()
  -- HF: filtered tokens get -inf in the mature scores and -1e-3 in the premature ones.
  return a:masked_fill(keep, -math.huge):sub(b:masked_fill(keep, -1e-3)), record
end

return D
