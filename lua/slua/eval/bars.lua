-- slua.eval.bars: a grouped bar chart with error bars as a standalone SVG (eval reports).
--
--   bars.svg{ title, subtitle, y_label, groups = {{name, bars = {{name, value, lo, hi}}}} }
-- Bars of the same name share a colour across groups; the legend names them when there are
-- several. Each bar carries a <title> with its value and interval (a tooltip in browsers).
local svg = require "slua.svg"

local bars = {}

local W, H = 680, 420
local L, T, B = 78, 56, 64

function bars.svg(p)
  local names, index = {}, {}
  for _, g in ipairs(p.groups) do
    for _, b in ipairs(g.bars) do
      if not index[b.name] then names[#names + 1] = b.name; index[b.name] = #names end
    end
  end
  local R = #names > 1 and 170 or 24
  local pw, ph = W - L - R, H - T - B
  local lo, hi = 0, 0                         -- bars start at 0
  for _, g in ipairs(p.groups) do
    for _, b in ipairs(g.bars) do lo, hi = math.min(lo, b.lo, b.value), math.max(hi, b.hi, b.value) end
  end
  local add, text, ypix, y0 = svg.frame(p, W, H, L, T, pw, ph, lo, hi)
  add('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>', L, L + pw, ypix(math.max(y0, 0)), ypix(math.max(y0, 0)))
  add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', L, L, T, T + ph)
  local gw = pw / math.max(1, #p.groups)
  local bw = math.min(48, gw * 0.8 / math.max(1, #names))
  for gi, g in ipairs(p.groups) do
    local cx = L + gw * (gi - 0.5)
    for _, b in ipairs(g.bars) do
      local k = index[b.name]
      local x = cx + (k - 1 - (#names - 1) / 2) * bw
      local color = svg.palette[(k - 1) % #svg.palette + 1]
      local top, base = ypix(math.max(b.value, 0)), ypix(math.min(b.value, 0))
      add('<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.8"><title>%s, %s: %s [%s, %s]</title></rect>',
        x - bw * 0.45, top, bw * 0.9, math.max(0.5, base - top), color, svg.esc(b.name), svg.esc(g.name),
        svg.num(b.value), svg.num(b.lo), svg.num(b.hi))
      if b.hi > b.lo then
        add('<line class="errorbar" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>', x, x, ypix(b.lo), ypix(b.hi))
        for _, v in ipairs({ b.lo, b.hi }) do
          add('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>', x - 5, x + 5, ypix(v), ypix(v))
        end
      end
    end
    add('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', cx, T + ph + 19, svg.esc(g.name))
  end
  add('<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" font-size="13">%s</text>', T + ph / 2, svg.esc(p.y_label))
  if #names > 1 then
    for i, name in ipairs(names) do
      local ly = T + 10 + (i - 1) * 20
      add('<rect x="%d" y="%d" width="14" height="14" fill="%s" fill-opacity="0.8"/>', W - R + 16, ly - 7, svg.palette[(i - 1) % #svg.palette + 1])
      add('<text x="%d" y="%d" dominant-baseline="middle">%s</text>', W - R + 36, ly, svg.esc(name))
    end
  end
  add("</svg>")
  return text()
end

return bars
