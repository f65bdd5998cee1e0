-- Activation steering: ActAdd (Turner et al. 2023, arXiv 2308.10248; code github montemac/activation_additions)
-- and CAA (Rimsky et al., ACL 2024, arXiv 2312.06681; code github nrimsky/CAA).
--
-- Usage: slua recipes/steer.lua [--prompt-add Love --prompt-sub Hate | --vector F.safetensors:NAME]
--        [--layer -1] [--hook resid_pre|resid_post] [--multiplier 4] [--positions auto|all|prompt|generated]
--        [--spec-out FILE.json] plus the common flags
-- ActAdd: the block's activations over the two prompts, h(add) - h(sub) position by position
-- (the longer prompt's extra positions are dropped; ActAdd pads the shorter with spaces), times
-- the multiplier (ActAdd's coeff), are added at the same first positions of the prompt (with
-- --positions all|prompt|generated: the difference at the last tokens, there). CAA: a
-- vector file (examples/caa_vector.lua builds one: the mean difference at the answer letter)
-- added times the multiplier at every position after the prompt ("generated"). --layer is a
-- 0-based block (-1 = the middle one, N // 2); --spec-out writes the ops as an --intervene file.
local sl = require "slua"
local steering = require "slua.decoders.steering"

return sl.recipe{
  name = "steer",
  options = {
    prompt_add = { default = "Love", type = "string", help = "ActAdd: the prompt whose activations are added" },
    prompt_sub = { default = "Hate", type = "string", help = "ActAdd: the prompt whose activations are subtracted" },
    vector = { default = "", type = "string", help = "CAA: FILE.safetensors:NAME, one d_model vector (\"\" = ActAdd)" },
    layer = { default = -1, min = -1, help = "the block (0-based; -1 = N // 2)",
              model_check = function(v, m) return v >= m.n_layer and ("in [-1, %d]"):format(m.n_layer - 1) or nil end },
    hook = { default = "resid_pre", choices = { "resid_pre", "resid_post" }, help = "where in the block" },
    multiplier = { default = 4.0, help = "scale of the vector (ActAdd's coeff, CAA's multiplier)" },
    positions = { default = "auto", choices = { "auto", "all", "prompt", "generated" },
                  help = "auto: ActAdd's first positions, CAA's generated ones" },
    spec_out = { default = "", type = "string", help = "write the ops as a JSON spec to this file" },
    repetition_penalty = 1.0,
  },
  session = function(ctx)
    local opt, model = ctx.opt, ctx.model
    local hook = ("blocks.%d.hook_%s"):format(opt.layer >= 0 and opt.layer or model.n_layer // 2, opt.hook)
    if opt.vector ~= "" then
      local where = opt.positions == "auto" and "generated" or opt.positions
      return steering.install(ctx, { { hook = hook, op = "add", vector = opt.vector, scale = opt.multiplier, positions = where } }, opt.spec_out)
    end
    local encode = function(text) return model.tokenizer:encode(text, { special = true }) end
    local add, sub = steering.capture(model, encode(opt.prompt_add), hook), steering.capture(model, encode(opt.prompt_sub), hook)
    local ops, n = {}, math.min(add:shape()[1], sub:shape()[1])
    for i = opt.positions == "auto" and 1 or n, n do   -- other positions: the last tokens' difference
      ops[#ops + 1] = { hook = hook, op = "add", vector = add:row(i):sub(sub:row(i)), scale = opt.multiplier,
                        positions = opt.positions == "auto" and { i - 1 } or opt.positions }
    end
    return steering.install(ctx, ops, opt.spec_out)
  end,
}
