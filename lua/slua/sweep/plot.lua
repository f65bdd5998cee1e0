-- slua.sweep.plot: a line chart as a standalone SVG — a metric against a swept parameter, one
-- line per value of a second parameter, error bars of ± one standard error.
--
--   plot.svg{ title, x_label, y_label, x = {values...} (numbers or labels),
--             series = {{name, points = {{x, mean, se}}}} } -> SVG text
local plot = {}

local W, H = 680, 420
local L, R, T, B = 78, 170, 56, 64     -- margins: left axis, legend, title, bottom axis
local palette = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf" }

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function num(v) return ("%.4g"):format(v) end

-- About n round tick values covering [lo, hi].
local function ticks(lo, hi, n)
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

function plot.svg(p)
  local numeric = true
  for _, x in ipairs(p.x) do if type(x) ~= "number" then numeric = false end end
  local pos = {}                         -- x value -> pixel
  local x_ticks = {}
  local pw, ph = W - L - R, H - T - B
  if numeric and #p.x > 1 then
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(p.x) do lo, hi = math.min(lo, x), math.max(hi, x) end
    local pad = (hi - lo) * 0.06
    for _, x in ipairs(p.x) do pos[x] = L + pw * (x - lo + pad) / (hi - lo + 2 * pad) end
    for _, x in ipairs(p.x) do x_ticks[#x_ticks + 1] = { at = pos[x], label = num(x) } end
  else
    for i, x in ipairs(p.x) do
      pos[x] = L + pw * (i - 0.5) / #p.x
      x_ticks[#x_ticks + 1] = { at = pos[x], label = tostring(x) }
    end
  end
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(p.series) do
    for _, pt in ipairs(s.points) do
      lo, hi = math.min(lo, pt[2] - pt[3]), math.max(hi, pt[2] + pt[3])
    end
  end
  if lo == math.huge then lo, hi = 0, 1 end
  local yt = ticks(lo, hi, 5)
  local y0, y1 = yt[1], yt[#yt]
  if y1 <= y0 then y1 = y0 + 1 end
  local function ypix(v) return T + ph * (1 - (v - y0) / (y1 - y0)) end

  local o = {}
  local function add(fmt, ...) o[#o + 1] = fmt:format(...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">', W, H, W, H)
  add('<rect width="%d" height="%d" fill="white"/>', W, H)
  add('<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>', L, esc(p.title))
  if p.subtitle then add('<text x="%d" y="40" font-size="11" fill="#555">%s</text>', L, esc(p.subtitle)) end
  for _, v in ipairs(yt) do
    local y = ypix(v)
    add('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e3e3"/>', L, L + pw, y, y)
    add('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>', L - 6, y, esc(num(v)))
  end
  add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', L, L + pw, T + ph, T + ph)
  add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', L, L, T, T + ph)
  for _, t in ipairs(x_ticks) do
    add('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333"/>', t.at, t.at, T + ph, T + ph + 5)
    add('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', t.at, T + ph + 19, esc(t.label))
  end
  add('<text x="%.1f" y="%d" text-anchor="middle" font-size="13">%s</text>', L + pw / 2, H - 14, esc(p.x_label))
  add('<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" font-size="13">%s</text>', T + ph / 2, esc(p.y_label))
  for i, s in ipairs(p.series) do
    local color = palette[(i - 1) % #palette + 1]
    local dodge = (i - (#p.series + 1) / 2) * 4    -- series apart, so equal values stay visible
    local path = {}
    for _, pt in ipairs(s.points) do
      path[#path + 1] = ("%.1f,%.1f"):format(pos[pt[1]] + dodge, ypix(pt[2]))
    end
    if #path > 1 then
      add('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>', table.concat(path, " "), color)
    end
    for _, pt in ipairs(s.points) do
      local x = pos[pt[1]] + dodge
      if pt[3] > 0 then
        add('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>', x, x, ypix(pt[2] - pt[3]), ypix(pt[2] + pt[3]), color)
        for _, v in ipairs({ pt[2] - pt[3], pt[2] + pt[3] }) do
          add('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>', x - 4, x + 4, ypix(v), ypix(v), color)
        end
      end
      add('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>', x, ypix(pt[2]), color)
    end
    local ly = T + 10 + (i - 1) * 20
    add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>', W - R + 16, W - R + 40, ly, ly, color)
    add('<circle cx="%d" cy="%d" r="3.5" fill="%s"/>', W - R + 28, ly, color)
    add('<text x="%d" y="%d" dominant-baseline="middle">%s</text>', W - R + 46, ly, esc(s.name))
  end
  if p.legend_title then
    add('<text x="%d" y="%d" font-weight="bold" font-size="11" fill="#555">%s</text>', W - R + 16, T - 8, esc(p.legend_title))
  end
  add("</svg>")
  return table.concat(o, "\n") .. "\n"
end

return plot
