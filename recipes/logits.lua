-- Dump the final logits (every prompt position) and per-layer logits of the last position.
--
-- Usage: slua recipes/logits.lua [--layers 0,2,5] [--top 5] [--format text|json]
--        [--model DIR] [--prompt TEXT | --prompt-ids 1,2,3] [--intervene SPEC.json] [--capture HOOK,...]
--        [--capture-out F] [--html FILE [--target TEXT] [--view-top 5]]
-- Layers use HF hidden_states numbering (0 = embeddings, N = final after the norm). For each
-- layer: raw = lm_head(h_l) (early exit, as HF DoLa), norm = lm_head(final_norm(h_l)) (logit
-- lens), hidden = h_l. JSON prints full vectors: {"final": [[...per position...]],
-- "layers": {"2": {"raw": [...], "norm": [...], "hidden": [...]}}}; text prints top tokens.
-- --capture adds "captures": {"<hook>": array} in docs/spec/interventions.md's shapes (masked
-- scores null); --capture-out writes them as safetensors.
local sl = require "slua"
local view = require "slua.view"

return sl.recipe{
  name = "logits", input = true,
  after = view.after,                              -- --html FILE: the prompt's logit lens
  options = view.with_options{
    layers = { default = "", type = "ids", model_check = sl.option_rules.layers(0), help = "layers to dump, e.g. 0,2,5" },
    top = { default = 5, min = 1, help = "text mode: tokens shown per vector" },
    capture = { default = "", help = "hooks to record over the prompt, comma-separated (blocks.L.hook_resid_post, blocks.L.attn.hook_z, ...)" },
    capture_out = { default = "", help = "write the captured hooks to this safetensors file" },
  },
  run = function(ctx)
    local model = ctx.model
    local layers = sl.parse_ids(ctx.opt.layers, "layers")
    ctx.session = sl.session(ctx, { layers = layers, raw = true, norm = true, hidden = true })
    local hooks = sl.intervene.capture(ctx.session, ctx.opt.capture)
    local ids = sl.prompt_ids(model, ctx.opt)
    local out = ctx.session:prefill(ids, { all_logits = true })
    sl.mark_prefill(ctx, #ids)
    sl.mark_decode(ctx, 0)
    ctx.out = out                                  -- text mode shows its top tokens
    local result = { model = model.path, prompt_ids = ids, final = out:all_logits(), layers = {} }
    result.captures = sl.intervene.captured(ctx.session, hooks, ctx.opt.capture_out)
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
