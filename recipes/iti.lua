-- ITI: Inference-Time Intervention (Li et al., NeurIPS 2023, arXiv 2306.03341); official code
-- github likenneth/honest_llama (validate_2fold.py: --num_heads 48 --alpha 15, center of mass).
--
-- Usage: slua recipes/iti.lua --directions FILE.safetensors [--num-heads 48] [--alpha 15]
--        [--positions generated|all|prompt] [--spec-out FILE.json] plus the common flags
-- FILE holds, per head, a unit direction "blocks.L.head.H" [head_dim], the probe accuracy
-- "accuracy" [L, H] and the spread "std" [L, H] of the activations along the direction, as
-- examples/interventions/iti_directions.lua writes them from TruthfulQA. The num_heads heads of
-- best accuracy get alpha * std * direction added to their output (blocks.L.attn.hook_z) at the
-- positions after the prompt (honest_llama edits the last token of every forward while
-- generating, the last prompt token included; "generated" leaves that one, and is what a spec
-- for slua eval needs: the answer's positions after each question).
-- --spec-out writes the ops as an --intervene file (slua eval truthfulqa_mc --intervene FILE).
local sl = require "slua"
local steering = require "slua.decoders.steering"

return sl.recipe{
  name = "iti",
  options = {
    directions = { default = "", type = "string", help = "the directions file (safetensors)" },
    num_heads = { default = 48, min = 1, help = "how many heads to shift (the best probes first)" },
    alpha = { default = 15.0, help = "strength, in standard deviations along each direction" },
    positions = { default = "generated", choices = { "generated", "all", "prompt" }, help = "positions the shift applies to" },
    spec_out = { default = "", type = "string", help = "write the ops as a JSON spec to this file" },
    repetition_penalty = 1.0,
  },
  session = function(ctx)
    local opt, model = ctx.opt, ctx.model
    if opt.directions == "" then sl.option_error("directions", "a safetensors file (examples/interventions/iti_directions.lua)", "") end
    local t, err = sl.core.load_tensors(opt.directions)
    if not t then sl.fail(err, 2) end
    local H = model.config.n_head
    if not (t.accuracy and t.std) or t.accuracy:shape()[1] ~= model.n_layer or t.accuracy:shape()[2] ~= H then
      sl.fail(("%s: needs 'accuracy' and 'std' of shape [%d, %d] (the model's blocks x heads)"):format(opt.directions, model.n_layer, H), 2)
    end
    local ops = {}
    for k, best in ipairs(t.accuracy:top(opt.num_heads)) do
      local l, h = (best[1] - 1) // H, (best[1] - 1) % H
      local dir = t[("blocks.%d.head.%d"):format(l, h)] or sl.fail(("%s: no direction blocks.%d.head.%d"):format(opt.directions, l, h), 2)
      ops[k] = { hook = ("blocks.%d.attn.hook_z"):format(l), op = "add", head = h, vector = dir,
                 scale = opt.alpha * t.std:get(l + 1, h + 1), positions = opt.positions }
    end
    return steering.install(ctx, ops, opt.spec_out)
  end,
}
