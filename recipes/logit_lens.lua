-- Logit lens: what every layer would predict at every position (nostalgebraist 2020; DoLa's raw early exit).
--
-- Usage: slua recipes/logit_lens.lua [--lens norm|raw] [--lang zh|ja|ko|ru|ar|hi|en]
--        [--svg FILE] [--color prob|entropy] [--wrap 16] [--max-new-tokens 0]
--        [--html FILE [--target TEXT | --target-id N] [--view-top 5]] [--model DIR] [--prompt T]
-- norm applies the final norm before lm_head (the logit lens); raw does not (DoLa's early
-- exit). For each layer: top-1 token per position, mean entropy, share of top-1 tokens in the
-- --lang script, and DoLa's divergence of the raw early exit from the final layer. With
-- --max-new-tokens N the greedy continuation is appended first. --svg writes a heatmap (layers x
-- positions in rows of --wrap, cell = top-1 token, colour = probability or entropy, a colour
-- bar, generated tokens marked); --html the interactive view (slua.view).
local sl = require "slua"
local lens = require "slua.decoders.lens"
local view = require "slua.view"

return sl.recipe{
  name = "logit_lens", input = true,
  after = view.after,                              -- --html FILE
  options = view.with_options{
    lens = { default = "norm", choices = { "norm", "raw" }, help = "with or without the final norm" },
    lang = { default = "", choices = { "", "zh", "ja", "ko", "ru", "ar", "hi", "en" }, help = "script of the language ratio" },
    svg = { default = "", type = "string", help = "write the heatmap to this file" },
    color = { default = "prob", choices = { "prob", "entropy" }, help = "what the heatmap's colour shows" },
    max_new_tokens = { default = 0, min = 0, help = "extend the prompt with this many greedy tokens first" },
  },
  run = function(ctx)                              -- the result is the profile
    local opt, model = ctx.opt, ctx.model
    local ids = sl.prompt_ids(model, opt)
    local prompt_len = #ids
    if opt.max_new_tokens > 0 then                 -- extend with the greedy continuation
      local s <close> = sl.session(ctx)
      local out = s:prefill(ids)
      sl.mark_prefill(ctx, #ids)
      for _ = 1, math.min(opt.max_new_tokens, model.config.max_position - #ids) do
        local id = out.logits:argmax()
        ids[#ids + 1] = id
        if model:is_eos(id) then break end
        out = s:step(id)
      end
      sl.mark_decode(ctx, #ids - ctx.timing.prefill_tokens)   -- the lens pass below is neither
    end
    local profile = lens.profile(model, ids, { lens = opt.lens, lang = opt.lang ~= "" and opt.lang or nil,
                                               prompt_len = prompt_len, intervene = sl.intervene.of_run(ctx) })
    if opt.svg ~= "" then
      lens.write_svg(opt.svg, profile, { lens = opt.lens, color = opt.color, wrap = opt.wrap, prompt_len = prompt_len,
                                         title = "logit lens (" .. opt.lens .. "): " .. model.path:match("[^/]+$") })
    end
    return profile
  end,
  text = function(profile, ctx)
    local lang = ctx.opt.lang
    print(("%-6s %8s %10s %s  top-1 per position"):format("layer", "entropy", "dola-div", lang ~= "" and (lang .. "-ratio") or ""))
    for i = #profile.layers, 1, -1 do
      local row = {}
      for _, p in ipairs(profile.positions) do row[#row + 1] = "[" .. p.cells[i].text:gsub("\n", "\\n") .. "]" end
      print(("%-6d %8.3f %10.2e %s  %s"):format(profile.layers[i], profile.entropy[i], profile.divergence[i],
        profile.lang_ratio and ("%8.2f"):format(profile.lang_ratio[i]) or "", table.concat(row, " ")))
    end
  end,
}
