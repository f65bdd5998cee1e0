-- slua.svg: what the SVG charts share (sweep plots, eval reports, the logit lens): escaping,
-- number labels, round axis ticks and the colour palette.
local M = {}

M.palette = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf" }

-- Text for an attribute or an element.
function M.esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
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

return M
