-- slua.svg: what the SVG charts share (sweep plots, eval reports, the logit lens): escaping,
-- number labels, round axis ticks and the colour palette.
local M = {}

M.palette = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf" }

-- Text for an attribute or an element (the control characters XML 1.0 forbids are dropped).
function M.esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" })
    :gsub("[%z\1-\8\11\12\14-\31]", ""))
end

function M.num(v) return ("%.4g"):format(v) end

-- About n round tick values covering [lo, hi].
function M.ticks(lo, hi, n)
  if hi <= lo then lo, hi = lo - 0.5, hi + 0.5 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs({ 1, 2, 2.5, 5, 10 }) do
    if m * mag >= raw then step = m * mag; break end
  end
  local first = math.floor(lo / step) * step
  local out = {}
  for k = 0, 100 do
    local v = first + k * step
    out[#out + 1] = v
    if v >= hi - 1e-12 * step then break end
  end
  return out
end

-- A writer: add(fmt, ...) appends one formatted line; text() joins them.
function M.writer()
  local o = {}
  return function(fmt, ...) o[#o + 1] = fmt:format(...) end, function() return table.concat(o, "\n") .. "\n" end
end

-- The frame every chart starts with: the SVG header, a white page, p.title and p.subtitle,
-- and horizontal grid lines with labels at round ticks covering [lo, hi] for a plot area of
-- pw x ph at (L, T). Returns add (a formatted line), text (the document so far), ypix (value ->
-- y) and the lowest tick.
function M.frame(p, W, H, L, T, pw, ph, lo, hi)
  local yt = M.ticks(lo, hi, 5)
  local y0, y1 = yt[1], yt[#yt]
  if y1 <= y0 then y1 = y0 + 1 end
  local function ypix(v) return T + ph * (1 - (v - y0) / (y1 - y0)) end
  local add, text = M.writer()
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">', W, H, W, H)
  add('<rect width="%d" height="%d" fill="white"/>', W, H)
  add('<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>', L, M.esc(p.title))
  if p.subtitle then add('<text x="%d" y="40" font-size="11" fill="#555">%s</text>', L, M.esc(p.subtitle)) end
  for _, v in ipairs(yt) do
    local y = ypix(v)
    add('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e3e3"/>', L, L + pw, y, y)
    add('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>', L - 6, y, M.esc(M.num(v)))
  end
  return add, text, ypix, y0
end

return M
