-- slua.decoders.lens: logit-lens views of a sequence: the top-1 token of every layer at every position,
-- per-layer entropy and language ratio, DoLa divergence from the final layer, and an SVG
-- heatmap of it all.
local L = {}

-- Unicode script tests for the language ratio (a token counts when its text contains one).
local scripts = {
  zh = { { 0x4E00, 0x9FFF }, { 0x3400, 0x4DBF }, { 0x3000, 0x303F }, { 0xFF00, 0xFF0F } },
  ja = { { 0x3040, 0x309F }, { 0x30A0, 0x30FF } },
  ko = { { 0xAC00, 0xD7AF }, { 0x1100, 0x11FF }, { 0x3130, 0x318F } },
  ru = { { 0x0400, 0x04FF } },
  ar = { { 0x0600, 0x06FF }, { 0x0750, 0x077F } },
  hi = { { 0x0900, 0x097F } },
  en = { { 0x41, 0x5A }, { 0x61, 0x7A } },
}
L.languages = scripts

function L.in_script(text, lang)
  local ranges = scripts[lang] or error("unknown language '" .. tostring(lang) .. "' (zh ja ko ru ar hi en)", 2)
  for _, c in utf8.codes(text, true) do
    for _, r in ipairs(ranges) do
      if c >= r[1] and c <= r[2] then return true end
    end
  end
  return false
end

-- Walk the tokens one position at a time and summarise every layer 0..N at each position.
-- Returns { layers = {0..N}, positions = { {token, cells = {per layer {id, p, entropy,
-- divergence, text}}} }, entropy = {per layer mean}, divergence = {per layer mean},
-- lang_ratio = {per layer} (when lang is given) }.
function L.profile(model, ids, opts)
  local lens, tok = opts.lens or "norm", model.tokenizer
  local layers = {}
  for l = 0, model.n_layer do layers[#layers + 1] = l end
  local s <close> = model:session{ layers = layers, raw = true, norm = lens == "norm", hidden = false,
                                   intervene = opts.intervene }
  local result = { layers = layers, positions = {}, entropy = {}, divergence = {}, lang_ratio = opts.lang and {} or nil }
  for i = 1, #layers do result.entropy[i], result.divergence[i] = 0, 0 end
  local lang_hits = {}
  for t, id in ipairs(ids) do
    local out = t == 1 and s:prefill{ id } or s:step(id)
    local cells = out:layer_summary(layers, lens)
    for i, c in ipairs(cells) do
      c.text = tok and tok:decode(c.id) or tostring(c.id)
      result.entropy[i] = result.entropy[i] + c.entropy / #ids
      result.divergence[i] = result.divergence[i] + (c.divergence or 0) / #ids
      if opts.lang and L.in_script(c.text, opts.lang) then lang_hits[i] = (lang_hits[i] or 0) + 1 end
    end
    result.positions[t] = { token = id, text = tok and tok:decode(id) or tostring(id), cells = cells }
  end
  if opts.lang then
    for i = 1, #layers do result.lang_ratio[i] = (lang_hits[i] or 0) / #ids end
  end
  return result
end

local function xml(text)
  return (text:gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" })
    :gsub("[%z\1-\8\11\12\14-\31]", ""))
end

local function shown(text)
  text = text:gsub("\n", "\\n"):gsub("\t", "\\t")
  if utf8.len(text) and utf8.len(text) > 8 then text = text:sub(1, utf8.offset(text, 9) - 1) .. "…" end
  return text
end

-- An SVG heatmap: one row per layer (final at the top), one column per position; the cell
-- text is the layer's top-1 token, its colour the top-1 probability (color = "prob") or the
-- entropy relative to the largest in the picture (color = "entropy").
function L.svg(profile, opts)
  local cw, ch, left, top = 64, 22, 120, 40
  local n_pos, n_lay = #profile.positions, #profile.layers
  local width, height = left + cw * n_pos + 20, top + ch * (n_lay + 1) + 30
  local max_h = 1e-9
  for _, p in ipairs(profile.positions) do
    for _, c in ipairs(p.cells) do max_h = math.max(max_h, c.entropy) end
  end
  local out = {
    ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="DejaVu Sans, sans-serif" font-size="11">')
      :format(width, height),
    ('<rect width="%d" height="%d" fill="white"/>'):format(width, height),
    ('<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>'):format(left, xml(opts.title or "logit lens")),
  }
  for row = 1, n_lay do
    local li = n_lay - row + 1 -- the final layer on top
    local y = top + (row - 1) * ch
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end">layer %d</text>'):format(left - 8, y + 15, profile.layers[li])
    for col, p in ipairs(profile.positions) do
      local c = p.cells[li]
      local v = opts.color == "entropy" and (c.entropy / max_h) or c.p
      local shade = math.floor(255 - 200 * math.max(0, math.min(1, v)))
      local x = left + (col - 1) * cw
      out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="rgb(%d,%d,255)" stroke="white"/>')
        :format(x, y, cw, ch, shade, shade)
      out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>')
        :format(x + cw // 2, y + 15, shade < 120 and "white" or "black", xml(shown(c.text)))
    end
  end
  local y = top + n_lay * ch
  out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end" font-style="italic">input</text>'):format(left - 8, y + 15)
  for col, p in ipairs(profile.positions) do
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle" font-style="italic">%s</text>')
      :format(left + (col - 1) * cw + cw // 2, y + 15, xml(shown(p.text)))
  end
  out[#out + 1] = ('<text x="%d" y="%d" fill="#555">colour: %s; cell: top-1 token of the %s lens</text>')
    :format(left, height - 8, opts.color == "entropy" and "entropy (darker = higher)" or "top-1 probability (darker = higher)",
      opts.lens or "norm")
  out[#out + 1] = "</svg>\n"
  return table.concat(out, "\n")
end

return L
