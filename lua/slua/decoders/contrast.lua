-- slua.decoders.contrast: the shared driver of expert/amateur recipes (SkipLayerCD, two-model CD): the
-- amateur session is stepped in lockstep with the expert and each step's scores are
-- S.contrast(expert logits, amateur logits); the span or model choice is the recipe's.
local sl = require "slua.util"
local skiplayer = require "slua.decoders.skiplayer"
local blocks = require "slua.decoders.blocks"
local recipe = require "slua.recipe"
local view = require "slua.view"

local C = {}

-- Options shared by contrast recipes, with their rules (slua.options).
C.options = {
  alpha = { default = 0.1, gt = 0, max = 1, help = "plausibility: keep tokens with p_e >= alpha max p_e" },
  beta = { default = 0.5, min = 0, help = "contrast strength of the official form e + beta (e - a)" },
  amateur_temperature = { default = 1.0, gt = 0, help = "temperature of the amateur's scores" },
  contrast = { default = "official", choices = { "official", "logprob" }, help = "the contrast's form" },
  repetition_penalty = 1.0, do_sample = false, temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0,
}

-- The contrast options with other defaults (and extra options) merged in: with{ contrast =
-- "logprob" } keeps the rule of --contrast and changes its default.
function C.options_with(changes)
  local out = {}
  for k, v in pairs(C.options) do out[k] = v end
  for k, v in pairs(changes or {}) do
    if type(out[k]) == "table" and type(v) ~= "table" then
      local spec = {}
      for sk, sv in pairs(out[k]) do spec[sk] = sv end
      spec.default = v
      v = spec
    end
    out[k] = v
  end
  return out
end

-- The span options of the SkipLayerCD recipes.
C.span_options = {
  span_seed = { default = 2023, min = 0, help = "seed of Python's random for SL-H" },
  example = { default = 1, min = 1, help = "which SL-H draw (one per example, in dataset order)" },
  skip_blocks = { default = "", type = "string", check = blocks.syntax, rule = blocks.help_rule,
                  help = "the blocks the amateur skips, one span: N or START:END (blocks START to END-1; \"\" = SL-H's span)" },
  skip_layers = { alias = "skip_blocks", translate = blocks.from_span_pair,
                  help = "older name of --skip-blocks: START,END means --skip-blocks START:END" },
  small_model_span = { default = "middle", choices = { "middle", "none" },
                       help = "models with < 10 layers (no SL-H span): skip the middle block(s), or fail" },
}

-- SL-D's options: the span options and those of the entropy profile.
C.sld_options = {
  prefix_file = { default = "", type = "string", help = "few-shot prefix for the entropy profile" },
  prefix_ids = { default = "", type = "ids", model_check = sl.option_rules.vocab_ids, help = "the prefix as token ids" },
  sld_rule = { default = "official", choices = { "official", "community" }, help = "SL-D's layer rule" },
  fallback = { default = "sl-h", choices = { "sl-h", "none" }, help = "when no layer qualifies" },
}
for k, v in pairs(C.span_options) do C.sld_options[k] = v end

local function span_hint(n_layer)
  return ("--skip-blocks START:END takes 0 <= START < END <= %d"):format(n_layer)
end

-- --skip-blocks as the span [start, end) of the amateur, checked against the model: one block
-- or one contiguous span (a set with a gap is no SkipLayerCD amateur).
function C.parse_span(text, n_layer)
  local list = blocks.parse(text, n_layer)
  local span = list and blocks.span(list)
  if not span then
    sl.fail(("option --skip-blocks wants one span START:END (or one block N) with 0 <= START < END <= %d (got '%s')")
      :format(n_layer, text), 2)
  end
  return span
end

-- The SL-H span, or for a model too shallow for SL-H the small-model span (announced on
-- stderr), or a failure naming the valid --skip-layers values.
function C.heuristic_span(opt, n_layer, source)
  local span, err = skiplayer.heuristic_span(n_layer, opt.span_seed, opt.example)
  if span then return span, ("%s, seed %d, draw %d"):format(source, opt.span_seed, opt.example) end
  if opt.small_model_span == "none" then sl.fail(("%s; %s"):format(err, span_hint(n_layer))) end
  span, err = skiplayer.small_model_span(n_layer)
  if not span then sl.fail(("%s; %s"):format(err, span_hint(n_layer))) end
  local why = ("small-model span: the model has %d layers, SL-H needs at least 10"):format(n_layer)
  io.stderr:write(("skiplayer: %s; using [%d, %d) (--small-model-span none fails instead; %s)\n")
    :format(why, span[1], span[2], span_hint(n_layer)))
  return span, why
end

-- C.recipe{name, options, amateur = function(ctx) return session end [, view = true]} -> the recipe
-- value of an expert/amateur method: the amateur steps in lockstep and each step's scores are
-- the contrast of the two (ctx.opt: --contrast, --alpha, --beta, --amateur-temperature); each
-- step records the plausible tokens kept and the expert's and amateur's entropies. The
-- amateur hook may add fields to the result through ctx.extra (skip_span). view = true adds the
-- HTML view's options (slua.view: --html FILE).
function C.recipe(spec)
  return recipe.new{
    name = spec.name, file = spec.file,
    options = spec.view and view.with_options(spec.options) or spec.options, after = spec.view and view.after or nil,
    amateurs = function(ctx) return { spec.amateur(ctx) } end,
    scores = function(ctx)
      local expert, amateur = ctx.out.logits, ctx.amateur_outs[1].logits
      local scores, kept = skiplayer.contrast(expert, amateur, ctx.opt)
      return scores, { n_kept = kept, expert_entropy = expert:entropy(), amateur_entropy = amateur:entropy() }
    end,
  }
end

-- Tells the user of the command line which span runs (stderr in text mode, so stdout stays
-- the text); a run in process (recipe:run) prints nothing.
function C.announce(ctx, span, source)
  if ctx.cli and ctx.opt.format == "text" then
    io.stderr:write(("skiplayer: amateur skips decoder layers [%d, %d) (%s)\n"):format(span[1], span[2], source))
  end
end

return C
