-- slua.sweep.plot: a metric against a swept parameter as a standalone SVG, one series per value
-- of a second parameter, error bars of ± one standard error. A numeric x axis joins a series'
-- points with a line; a categorical one (layer sets, names) shows separate points, the series
-- dodged side by side within each category, since a line between categories means nothing.
-- One series needs no legend.
--
--   plot.svg{ title, subtitle, x_label, y_label, x = {values...} (numbers or labels),
--             series = {{name, points = {{x, mean, se}}}}, legend_title } -> SVG text
local svg = require "slua.svg"

local plot = {}

local W, H = 680, 420
local L, T, B = 78, 56, 64            -- margins: left axis, title, bottom axis
local LEGEND = 170                    -- right margin that holds the legend

-- Whether the x values are all numbers (and more than one): a numeric axis.
function plot.is_numeric(xs)
  if #xs < 2 then return false end
  for _, x in ipairs(xs) do if type(x) ~= "number" then return false end end
  return true
end

function plot.svg(p)
  local numeric = plot.is_numeric(p.x)
  local legend = #p.series > 1
  local R = legend and LEGEND or 24
  local pos, x_ticks = {}, {}            -- x value -> pixel
  local pw, ph = W - L - R, H - T - B
  if numeric then
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(p.x) do lo, hi = math.min(lo, x), math.max(hi, x) end
    local pad = (hi - lo) * 0.06
    for _, x in ipairs(p.x) do pos[x] = L + pw * (x - lo + pad) / (hi - lo + 2 * pad) end
    for _, x in ipairs(p.x) do x_ticks[#x_ticks + 1] = { at = pos[x], label = svg.num(x) } end
  else
    for i, x in ipairs(p.x) do
      pos[x] = L + pw * (i - 0.5) / #p.x
      x_ticks[#x_ticks + 1] = { at = pos[x], label = tostring(x) }
    end
  end
  -- series side by side: a few pixels on a numeric axis (equal values stay visible), a share of
  -- each category's band on a categorical one
  local step = numeric and 4 or math.min(18, pw / math.max(1, #p.x) * 0.6 / math.max(1, #p.series))
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(p.series) do
    for _, pt in ipairs(s.points) do
      lo, hi = math.min(lo, pt[2] - pt[3]), math.max(hi, pt[2] + pt[3])
    end
  end
  if lo == math.huge then lo, hi = 0, 1 end
  local add, text, ypix = svg.frame(p, W, H, L, T, pw, ph, lo, hi)
  add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', L, L + pw, T + ph, T + ph)
  add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', L, L, T, T + ph)
  for _, t in ipairs(x_ticks) do
    add('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333"/>', t.at, t.at, T + ph, T + ph + 5)
    add('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', t.at, T + ph + 19, svg.esc(t.label))
  end
  add('<text x="%.1f" y="%d" text-anchor="middle" font-size="13">%s</text>', L + pw / 2, H - 14, svg.esc(p.x_label))
  add('<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" font-size="13">%s</text>', T + ph / 2, svg.esc(p.y_label))
  for i, s in ipairs(p.series) do
    local color = svg.palette[(i - 1) % #svg.palette + 1]
    local dodge = (i - (#p.series + 1) / 2) * step
    if numeric then
      local path = {}
      for _, pt in ipairs(s.points) do path[#path + 1] = ("%.1f,%.1f"):format(pos[pt[1]] + dodge, ypix(pt[2])) end
      if #path > 1 then
        add('<polyline class="series-line" points="%s" fill="none" stroke="%s" stroke-width="2"/>', table.concat(path, " "), color)
      end
    end
    for _, pt in ipairs(s.points) do
      local x = pos[pt[1]] + dodge
      if pt[3] > 0 then
        add('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>', x, x, ypix(pt[2] - pt[3]), ypix(pt[2] + pt[3]), color)
        for _, v in ipairs({ pt[2] - pt[3], pt[2] + pt[3] }) do
          add('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>', x - 4, x + 4, ypix(v), ypix(v), color)
        end
      end
      add('<circle class="point" cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s%s: %s ± %s</title></circle>', x, ypix(pt[2]), color,
        legend and (svg.esc(s.name) .. ", ") or "", svg.esc(type(pt[1]) == "number" and svg.num(pt[1]) or pt[1]),
        svg.num(pt[2]), svg.num(pt[3]))
    end
    if legend then
      local ly = T + 10 + (i - 1) * 20
      if numeric then
        add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>', W - R + 16, W - R + 40, ly, ly, color)
      end
      add('<circle cx="%d" cy="%d" r="3.5" fill="%s"/>', W - R + 28, ly, color)
      add('<text class="legend" x="%d" y="%d" dominant-baseline="middle">%s</text>', W - R + 46, ly, svg.esc(s.name))
    end
  end
  if legend and p.legend_title then
    add('<text x="%d" y="%d" font-weight="bold" font-size="11" fill="#555">%s</text>', W - R + 16, T - 8, svg.esc(p.legend_title))
  end
  add("</svg>")
  return text()
end

return plot
