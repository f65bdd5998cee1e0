-- SkipLayerCD, SL-D: skip the layers just before the logit-lens entropy starts to fall (arXiv 2407.10795).
--
-- Usage: slua recipes/skiplayer_sld.lua [--prefix-file FILE | --prefix-ids 1,2,3]
--        [--sld-rule official|community] [--fallback sl-h|none] [--span-seed 2023]
--        [--skip-blocks START:END] [--small-model-span middle|none] [--contrast official|logprob] [--alpha 0.1] [--beta 0.5]
--        [--amateur-temperature 1.0] [--html FILE [--target TEXT] [--view-top 5] [--wrap 16]] plus the common flags
-- Once per prompt, the entropy profile Y[l] of the logit lens (with the final norm) is
-- averaged over the few-shot prefix (--prefix-file, else the prompt minus its last
-- blank-line-separated block). The official rule skips [e - s, e) at the first layer e where
-- the entropy falls by > 0.1 nat on average over two layers and stays below Y[e] afterwards
-- (s = round_half_even(N/8)). When no layer qualifies (the official code then crashes), the
-- span falls back to SL-H and says so; --fallback none fails instead. A model too shallow for
-- SL-H (< 10 layers, like the bundled one) then skips its middle block(s), as in
-- skiplayer_slh.lua (--small-model-span). Scores as in SL-H.
local sl = require "slua"
local contrast = require "slua.decoders.contrast"
local skiplayer = require "slua.decoders.skiplayer"

local function prefix_ids(model, opt)
  local ids, text = sl.parse_ids(opt.prefix_ids, "prefix-ids"), opt.prompt
  if opt.prefix_file ~= "" then
    local f = io.open(opt.prefix_file) or sl.fail("option --prefix-file: cannot open " .. opt.prefix_file, 2)
    text = f:read("a")
    f:close()
  else
    text = text:match("^(.*)\n\n[^\n]*$") or text:gsub("\n\n.-$", "") -- drop the last block (the query)
  end
  if #ids == 0 then
    ids = sl.check(model.tokenizer, model.path .. ": no tokenizer.json (use --prefix-ids)"):encode(text, { special = true })
  end
  if #ids < 2 or #ids > model.config.max_position then
    sl.fail(("SL-D: the prefix has %d tokens; the entropy profile needs 2 to %d (--prefix-file, --prefix-ids)")
      :format(#ids, model.config.max_position), 2)
  end
  return ids
end

return contrast.recipe{
  name = "skiplayer_sld",
  options = contrast.options_with(contrast.sld_options), view = true,       -- view: --html FILE
  amateur = function(ctx)
    local opt, model = ctx.opt, ctx.model
    local span, source
    if opt.skip_blocks ~= "" then
      span, source = contrast.parse_span(opt.skip_blocks, model.n_layer), "explicit"
    else
      local profile
      span, profile = skiplayer.dynamic_span(model, prefix_ids(model, opt), opt.sld_rule)
      ctx.extra.entropy_profile, source = profile, "sl-d, " .. opt.sld_rule .. " rule"
      if not span then
        if opt.fallback ~= "sl-h" then sl.fail("SL-D: no layer qualifies under the " .. opt.sld_rule .. " rule") end
        io.stderr:write("skiplayer: SL-D found no qualifying layer; falling back to SL-H\n")
        span, source = contrast.heuristic_span(opt, model.n_layer, "sl-h fallback")
      end
    end
    ctx.extra.skip_span, ctx.extra.span_source = span, source
    contrast.announce(ctx, span, source)
    return ctx.session:fork{ skip = skiplayer.blocks(span) }
  end,
}
