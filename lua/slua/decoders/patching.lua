-- slua.decoders.patching: activation patching (Meng et al. 2022; Heimersheim & Nanda 2024, "How to
-- use and interpret activation patching"): a clean and a corrupted prompt of the same length,
-- the clean run's activations at one hook of every block, and one corrupted run per (block,
-- position) with the clean value `set` there, all of a block's runs in one batched pass.
local util = require "slua.util"
local batch = require "slua.batch"
local intervene = require "slua.intervene"

local P = {}

local function logit_diff(logits, answer, wrong) return logits:get(answer) - logits:get(wrong) end

-- P.run(model, clean_ids, corrupted_ids, {hook = "resid_pre", answer = id | nil, wrong = id | nil})
-- -> {hook, answer, wrong, clean_logit_diff, corrupted_logit_diff, layers, recovered[l][p],
-- recovered_all[l]}: recovered = (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted) with
-- LD = logit(answer) - logit(wrong) at the last position (answer: the clean run's top-1, wrong:
-- the corrupted run's, by default); recovered_all patches every position of the block at once.
function P.run(model, clean, corrupted, opts)
  local n = #clean
  if #corrupted ~= n then
    util.fail(("option --corrupted: %d tokens, the clean prompt has %d (patching needs equal lengths)"):format(#corrupted, n), 2)
  end
  local hooks = {}
  for l = 0, model.n_layer - 1 do hooks[l + 1] = ("blocks.%d.hook_%s"):format(l, opts.hook) end
  local s <close> = model:session{}
  s:capture(hooks, "all")
  local clean_logits = s:prefill(clean).logits
  local clean_acts = {}
  for l = 1, #hooks do clean_acts[l] = s:captured(hooks[l]) end
  local c <close> = model:session{}
  local corrupted_logits = c:prefill(corrupted).logits
  local answer, wrong = opts.answer or clean_logits:argmax(), opts.wrong or corrupted_logits:argmax()
  local ld_clean, ld_corrupted = logit_diff(clean_logits, answer, wrong), logit_diff(corrupted_logits, answer, wrong)
  if ld_clean == ld_corrupted then
    util.fail(("patching: logit(%d) - logit(%d) is %g in both runs: nothing to recover (choose --answer and --wrong)")
      :format(answer, wrong, ld_clean), 2)
  end
  local result = { hook = opts.hook, answer = answer, wrong = wrong, clean_logit_diff = ld_clean,
                   corrupted_logit_diff = ld_corrupted, layers = {}, recovered = {}, recovered_all = {} }
  local every = {}
  for p = 0, n - 1 do every[p + 1] = p end
  for l, hook in ipairs(hooks) do
    local requests, sessions = {}, {}
    for p = 0, n do                                 -- positions 0..n-1, then all of them at once
      local op = p < n and { hook = hook, op = "set", values = { clean_acts[l]:row(p + 1) }, positions = { p } }
        or { hook = hook, op = "set", values = clean_acts[l], positions = every }
      sessions[p + 1] = model:session{ intervene = intervene.load(model, { op }) }
      requests[p + 1] = { sessions[p + 1], corrupted }
    end
    local outs = batch.eval(requests)
    local row = {}
    for p = 1, n + 1 do
      row[p] = (logit_diff(outs[p].logits, answer, wrong) - ld_corrupted) / (ld_clean - ld_corrupted)
      sessions[p]:close()
    end
    result.recovered_all[l] = table.remove(row)
    result.layers[l], result.recovered[l] = l - 1, row
  end
  return result
end

local xml = require("slua.svg").esc

-- An SVG heatmap: one row per block (the last on top), one column per position, colour and
-- text the recovered share (red = recovered, blue = the other way); the last column, [all],
-- patches every position. tokens: the corrupted prompt's token texts, for the column labels.
function P.svg(result, tokens, title)
  local cw, ch, left, top = 58, 22, 110, 40
  local n_pos, n_lay = #result.recovered[1], #result.layers
  local width, height = left + cw * (n_pos + 1) + 20, top + ch * (n_lay + 1) + 30
  local out = {
    ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="DejaVu Sans, sans-serif" font-size="11">')
      :format(width, height),
    ('<rect width="%d" height="%d" fill="white"/>'):format(width, height),
    ('<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>'):format(left, xml(title)),
  }
  for row = 1, n_lay do
    local li, y = n_lay - row + 1, top + (row - 1) * ch
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end">block %d</text>'):format(left - 8, y + 15, result.layers[li])
    for col = 1, n_pos + 1 do
      local v = col <= n_pos and result.recovered[li][col] or result.recovered_all[li]
      local t = math.floor(200 * math.max(0, math.min(1, math.abs(v))))
      local fill = v >= 0 and ("rgb(255,%d,%d)"):format(255 - t, 255 - t) or ("rgb(%d,%d,255)"):format(255 - t, 255 - t)
      local x = left + (col - 1) * cw
      out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="white"/>'):format(x, y, cw, ch, fill)
      out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle">%s</text>')
        :format(x + cw // 2, y + 15, (("%.2f"):format(v):gsub("^%-(0%.00)$", "%1")))
    end
  end
  local y = top + n_lay * ch
  for col = 1, n_pos + 1 do
    local text = col <= n_pos and (tokens[col] or ""):gsub("\n", "\\n") or "[all]"
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle" font-style="italic">%s</text>')
      :format(left + (col - 1) * cw + cw // 2, y + 15, xml(text))
  end
  out[#out + 1] = ('<text x="%d" y="%d" fill="#555">cell: share of the logit difference recovered by patching the clean %s there</text>')
    :format(left, height - 8, xml(result.hook))
  out[#out + 1] = "</svg>\n"
  return table.concat(out, "\n")
end

return P
