-- Dump the final logits (every prompt position) and per-layer logits of the last position.
--
-- Usage: slua recipes/logits.lua [--layers 0,2,5] [--top 5] [--format text|json]
--        [--model DIR] [--prompt TEXT | --prompt-ids 1,2,3] [--intervene SPEC.json] [--capture HOOK,...] [--capture-out F]
-- Layers use HF hidden_states numbering (0 = embeddings, N = final after the norm). For each
-- layer: raw = lm_head(h_l) (early exit, as HF DoLa), norm = lm_head(final_norm(h_l)) (logit
-- lens), hidden = h_l. JSON prints full vectors: {"final": [[...per position...]],
-- "layers": {"2": {"raw": [...], "norm": [...], "hidden": [...]}}}; text prints top tokens.
-- --capture records TransformerLens hooks over the prompt (docs/spec/interventions.md):
-- "captures": {"blocks.1.hook_resid_post": [pos][d_model], "blocks.1.attn.hook_z":
-- [pos][head][head_dim], "blocks.1.attn.hook_pattern": [head][query][key], ...}, masked
-- scores as null; --capture-out writes them as safetensors, one tensor per hook.
local sl = require "slua"

return sl.recipe{
  name = "logits", input = true,
  options = {
    layers = { default = "", type = "ids", model_check = sl.option_rules.layers(0), help = "layers to dump, e.g. 0,2,5" },
    top = { default = 5, min = 1, help = "text mode: tokens shown per vector" },
    capture = { default = "", help = "hooks to record over the prompt, comma-separated (blocks.L.hook_resid_post, blocks.L.attn.hook_z, ...)" },
    capture_out = { default = "", help = "write the captured hooks to this safetensors file" },
  },
  run = function(ctx)
    local model = ctx.model
    local layers = sl.parse_ids(ctx.opt.layers, "layers")
    ctx.session = sl.session(ctx, { layers = layers, raw = true, norm = true, hidden = true })
    local hooks = {}
    for name in ctx.opt.capture:gmatch("[^,%s]+") do hooks[#hooks + 1] = name end
    if #hooks > 0 then sl.try_option(ctx.session.capture, ctx.session, hooks) end
    local out = ctx.session:prefill(sl.prompt_ids(model, ctx.opt), { all_logits = true })
    ctx.out = out                                  -- text mode shows its top tokens
    local result = { final = out:all_logits(), layers = {} }
    if #hooks > 0 then
      result.captures = {}
      for _, name in ipairs(hooks) do result.captures[name] = ctx.session:captured(name) end
      if ctx.opt.capture_out ~= "" then sl.check(sl.core.save_tensors(ctx.opt.capture_out, result.captures)) end
    end
    for _, l in ipairs(layers) do
      result.layers[tostring(l)] = { raw = out:layer_logits(l, "raw"), norm = out:layer_logits(l, "norm"), hidden = out:hidden(l) }
    end
    return result
  end,
  text = function(result, ctx)
    local tok, out = ctx.model.tokenizer, ctx.out
    local function show(name, z)
      local parts = {}
      for _, pair in ipairs(z:top(ctx.opt.top)) do
        local piece = tok and tok:decode(pair[1]) or tostring(pair[1])
        parts[#parts + 1] = ("%q %.3f"):format(piece, pair[2])
      end
      print(("%-10s %s"):format(name, table.concat(parts, "  ")))
    end
    show("final", out.logits)
    for name, t in pairs(result.captures or {}) do print(("%-10s %s"):format("capture", name .. " " .. tostring(t))) end
    for _, l in ipairs(sl.parse_ids(ctx.opt.layers, "layers")) do
      show(("L%d raw"):format(l), out:layer_logits(l, "raw"))
      show(("L%d norm"):format(l), out:layer_logits(l, "norm"))
    end
  end,
}
