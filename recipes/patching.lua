-- Activation patching over blocks x positions (Meng et al., NeurIPS 2022, "Locating and Editing
-- Factual Associations in GPT"; Heimersheim & Nanda 2024, arXiv 2404.15255), with a heatmap.
--
-- Usage: slua recipes/patching.lua --prompt CLEAN --corrupted CORRUPTED [--answer red]
--        [--wrong blue] [--hook resid_pre|resid_post|attn_out|mlp_out] [--svg FILE]
--        plus --model, --prompt-ids, --corrupted-ids, --format text|json
-- The clean run's activation at one hook of one block and position replaces the corrupted
-- run's (a `set` op), one run per (block, position), a block's runs batched; the column "all"
-- patches every position of the block at once. Each cell is the share of the logit difference
-- logit(answer) - logit(wrong) at the last position that the patch restores:
-- (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted). The answer and the wrong token are
-- the first tokens where the encodings of --answer and --wrong differ ("red" and "blue" share
-- the word-start piece); "" = the clean and the corrupted run's top-1.
local sl = require "slua"
local patching = require "slua.decoders.patching"

return sl.recipe{
  name = "patching", input = true,
  options = {
    prompt = "Tom had a red ball and Lily had a blue ball. Tom played with his",
    corrupted = { default = "Tom had a blue ball and Lily had a red ball. Tom played with his", type = "string", help = "the corrupted prompt (same token count)" },
    corrupted_ids = { default = "", type = "ids", help = "the corrupted prompt as token ids" },
    answer = { default = "red", type = "string", help = "the clean answer's text (\"\" = the clean top-1)" },
    wrong = { default = "blue", type = "string", help = "the corrupted answer's text (\"\" = its top-1)" },
    hook = { default = "resid_pre", choices = { "resid_pre", "resid_post", "attn_out", "mlp_out" }, help = "the patched hook of every block" },
    svg = { default = "", type = "string", help = "write the heatmap to this file" },
  },
  run = function(ctx)
    local opt, model = ctx.opt, ctx.model
    local tok = model.tokenizer
    local clean = sl.prompt_ids(model, opt)
    local corrupted = opt.corrupted_ids ~= "" and sl.parse_ids(opt.corrupted_ids, "corrupted_ids") or tok:encode(opt.corrupted, { special = true })
    local a, w = tok and tok:encode(opt.answer) or {}, tok and tok:encode(opt.wrong) or {}   -- no tokenizer: the top-1s
    local k = 1
    while a[k] and a[k] == w[k] do k = k + 1 end
    local result = patching.run(model, clean, corrupted, { hook = opt.hook, answer = opt.answer ~= "" and a[k] or nil,
                                                           wrong = opt.wrong ~= "" and w[k] or nil })
    result.model, result.recipe, result.prompt_ids, result.corrupted_ids = model.path, "patching", clean, corrupted
    local tokens = {}
    for i, id in ipairs(corrupted) do tokens[i] = tok and tok:decode({ id }) or tostring(id) end
    if opt.svg ~= "" then
      local f = io.open(opt.svg, "w") or sl.fail("option --svg: cannot write " .. opt.svg)
      f:write(patching.svg(result, tokens, "activation patching (" .. opt.hook .. "): " .. model.path:match("[^/]+$")))
      f:close()
    end
    result.tokens = tokens
    return result
  end,
  text = function(r)
    print(("answer %d vs %d: logit difference clean %.3f, corrupted %.3f; recovered share per block x position"):format(r.answer, r.wrong, r.clean_logit_diff, r.corrupted_logit_diff))
    for i = #r.layers, 1, -1 do
      local row = {}
      for p, v in ipairs(r.recovered[i]) do row[p] = ("%6.2f"):format(v):gsub("%-(0%.00)$", " %1") end
      print(("block %-3d %s | all %6.2f"):format(r.layers[i], table.concat(row, " "), r.recovered_all[i]))
    end
  end,
}
