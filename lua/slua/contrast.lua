-- slua.contrast: the shared driver of expert/amateur recipes (SkipLayerCD, two-model CD): the
-- amateur session is stepped in lockstep with the expert and each step's scores are
-- S.contrast(expert logits, amateur logits); the span or model choice is the recipe's.
local sl = require "slua"
local skiplayer = require "slua.skiplayer"

local C = {}

-- Options shared by contrast recipes.
C.options = {
  alpha = 0.1, beta = 0.5, amateur_temperature = 1.0, contrast = "official", repetition_penalty = 1.0,
  do_sample = false, temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0,
}

function C.check(opt)
  if opt.contrast ~= "official" and opt.contrast ~= "logprob" then
    sl.fail(("option --contrast must be official or logprob (got '%s')"):format(opt.contrast))
  end
  if not (opt.alpha > 0 and opt.alpha <= 1) then sl.fail("option --alpha must be in (0, 1]") end
  if not (opt.amateur_temperature > 0) then sl.fail("option --amateur-temperature must be > 0") end
end

-- Runs the generation. make_amateur(ctx, extra) returns the amateur session (extra collects
-- fields for the JSON output, e.g. skip_span).
function C.generate(recipe, opt, make_amateur)
  C.check(opt)
  local extra = {}
  return sl.generate{
    recipe = recipe, opt = opt, extra = extra,
    amateurs = function(ctx) return { make_amateur(ctx, extra) } end,
    scores = function(ctx)
      local scores, kept = skiplayer.contrast(ctx.out.logits, ctx.amateur_outs[1].logits, opt)
      return scores, { n_kept = kept }
    end,
  }
end

-- "a,b" -> the span [a, b), checked against the model.
function C.parse_span(text, n_layer)
  local v = sl.parse_ints(text, "skip-layers")
  if #v ~= 2 or v[1] < 0 or v[2] <= v[1] or v[2] > n_layer then
    sl.fail(("option --skip-layers wants START,END with 0 <= START < END <= %d (got '%s')"):format(n_layer, text))
  end
  return v
end

-- Tells the user which span runs (stderr in text mode, so stdout stays the text).
function C.announce(opt, span, source)
  if opt.format == "text" then
    io.stderr:write(("skiplayer: amateur skips decoder layers [%d, %d) (%s)\n"):format(span[1], span[2], source))
  end
end

return C
