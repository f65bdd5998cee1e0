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
-- lang_ratio = {per layer} (when lang is given), model (its path), prompt_len (opts.prompt_len,
-- default all of ids), prompt_ids and new_ids (ids split there) }.
function L.profile(model, ids, opts)
  local lens, tok = opts.lens or "norm", model.tokenizer
  local layers = {}
  for l = 0, model.n_layer do layers[#layers + 1] = l end
  local s <close> = model:session{ layers = layers, raw = true, norm = lens == "norm", hidden = false,
                                   intervene = opts.intervene }
  local prompt_len = opts.prompt_len or #ids
  local result = { layers = layers, positions = {}, entropy = {}, divergence = {}, lang_ratio = opts.lang and {} or nil,
                   model = model.path, prompt_len = prompt_len, prompt_ids = table.move(ids, 1, prompt_len, 1, {}),
                   new_ids = table.move(ids, prompt_len + 1, #ids, 1, {}) }
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

local xml = require("slua.svg").esc

local function shown(text)
  if text == "" then return "\u{2205}" end                       -- an empty piece, visibly
  if text:match("^ +$") then return (text:gsub(" ", "\u{2423}")) end  -- only spaces, visibly
  text = text:gsub("\n", "\\n"):gsub("\t", "\\t")
  if utf8.len(text) and utf8.len(text) > 8 then text = text:sub(1, utf8.offset(text, 9) - 1) .. "…" end
  return text
end

-- The heatmap's colour of v in [0, 1]: white to dark blue.
local function shade_of(v)
  return math.floor(255 - 200 * math.max(0, math.min(1, v)))
end

-- An SVG heatmap: one row per layer (final at the top), one column per position, in blocks of
-- opts.wrap positions (default 16) stacked top to bottom; the cell text is the layer's top-1
-- token, its colour the top-1 probability (color = "prob") or the entropy relative to the
-- largest in the picture (color = "entropy"), read off the colour bar at the bottom. Positions
-- from opts.prompt_len on are generated: their input tokens are red and a red line marks
-- where generation starts.
function L.svg(profile, opts)
  local cw, ch, left, top = 64, 22, 120, 40
  local n_pos, n_lay = #profile.positions, #profile.layers
  local wrap = math.max(1, opts.wrap or 16)
  local prompt_len = opts.prompt_len or n_pos
  local n_blocks = math.max(1, math.ceil(n_pos / wrap))
  local block_h = ch * (n_lay + 1) + 28                      -- the rows, the input row, a caption
  local width = left + cw * math.min(wrap, n_pos) + 20
  local height = top + block_h * n_blocks + 56
  local max_h = 1e-9
  for _, p in ipairs(profile.positions) do
    for _, c in ipairs(p.cells) do max_h = math.max(max_h, c.entropy) end
  end
  local out = {
    ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="DejaVu Sans, sans-serif" font-size="11">')
      :format(width, height),
    '<defs><linearGradient id="ramp"><stop offset="0" stop-color="rgb(255,255,255)"/>'
      .. '<stop offset="1" stop-color="rgb(55,55,255)"/></linearGradient></defs>',
    ('<rect width="%d" height="%d" fill="white"/>'):format(width, height),
    ('<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>'):format(left, xml(opts.title or "logit lens")),
  }
  for b = 1, n_blocks do
    local first, last = (b - 1) * wrap + 1, math.min(n_pos, b * wrap)
    local y0 = top + (b - 1) * block_h
    if n_blocks > 1 then
      out[#out + 1] = ('<text x="%d" y="%d" fill="#555">positions %d–%d</text>'):format(left, y0 + 10, first, last)
    end
    y0 = y0 + (n_blocks > 1 and 16 or 0)
    for row = 1, n_lay do
      local li = n_lay - row + 1 -- the final layer on top
      local y = y0 + (row - 1) * ch
      out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end">layer %d</text>'):format(left - 8, y + 15, profile.layers[li])
      for col = first, last do
        local c = profile.positions[col].cells[li]
        local shade = shade_of(opts.color == "entropy" and (c.entropy / max_h) or c.p)
        local x = left + (col - first) * cw
        out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="rgb(%d,%d,255)" stroke="white"/>')
          :format(x, y, cw, ch, shade, shade)
        out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>')
          :format(x + cw // 2, y + 15, shade < 120 and "white" or "black", xml(shown(c.text)))
      end
    end
    local y = y0 + n_lay * ch
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end" font-style="italic">input</text>'):format(left - 8, y + 15)
    for col = first, last do
      local gen = col > prompt_len
      out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle" %s>%s</text>')
        :format(left + (col - first) * cw + cw // 2, y + 15,
          gen and 'class="generated" fill="#c0181a" font-weight="bold"' or 'font-style="italic"',
          xml(shown(profile.positions[col].text)))
    end
    if prompt_len >= first and prompt_len < last then            -- generation starts in this block
      local x = left + (prompt_len + 1 - first) * cw
      out[#out + 1] = ('<line class="generation-start" x1="%d" x2="%d" y1="%d" y2="%d" stroke="#c0181a" stroke-width="2"/>')
        :format(x, x, y0, y + ch)
    end
  end
  local by = height - 44
  local hi = opts.color == "entropy" and ("%.2f nats"):format(max_h) or "1"
  out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end">%s</text>'):format(left - 8, by + 11,
    opts.color == "entropy" and "entropy" or "top-1 prob.")
  out[#out + 1] = ('<text x="%d" y="%d">0</text>'):format(left, by + 11)
  out[#out + 1] = ('<rect class="colorbar" x="%d" y="%d" width="200" height="14" fill="url(#ramp)" stroke="#999"/>')
    :format(left + 14, by)
  out[#out + 1] = ('<text x="%d" y="%d">%s</text>'):format(left + 220, by + 11, hi)
  out[#out + 1] = ('<text x="%d" y="%d" fill="#555">cell: top-1 token of the %s lens%s</text>')
    :format(left, height - 10, opts.lens or "norm",
      prompt_len < n_pos and "; red: generated tokens, after the red line" or "")
  out[#out + 1] = "</svg>\n"
  return table.concat(out, "\n")
end

-- Writes L.svg(profile, opts) to path (option --svg).
function L.write_svg(path, profile, opts)
  local f = io.open(path, "w") or require("slua.util").fail("option --svg: cannot write " .. path)
  f:write(L.svg(profile, opts))
  f:close()
end

return L
