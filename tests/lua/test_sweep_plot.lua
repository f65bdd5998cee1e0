-- Sweep plots read as what they show: a categorical x axis (layer sets) gets separate points,
-- the series dodged apart and never joined by lines; a numeric one gets a line per series; one
-- series has no legend; the y axis names the metric and the number of items behind each point.
-- The checks read the SVG text.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local plot = require "slua.sweep.plot"
local report = require "slua.sweep.report"

local function count(text, pattern) return select(2, text:gsub(pattern, "")) end

-- The centres of the points, in drawing order.
local function points(svg)
  local out = {}
  for cx, cy in svg:gmatch('<circle class="point" cx="([%d.]+)" cy="([%d.]+)"') do out[#out + 1] = { tonumber(cx), tonumber(cy) } end
  return out
end

local categorical = {
  title = "MC2 by layers", x_label = "early_exit_layers", y_label = "MC2, the task's summary over 40 items",
  x = { "-1", "2,5", "0,2,4,5" },
  series = {
    { name = "0.0", points = { { "-1", 0.5, 0.02 }, { "2,5", 0.55, 0.02 }, { "0,2,4,5", 0.6, 0.02 } } },
    { name = "0.1", points = { { "-1", 0.5, 0.02 }, { "2,5", 0.52, 0.02 }, { "0,2,4,5", 0.58, 0.02 } } },
  },
  legend_title = "relative_top",
}

T.case("a categorical axis: separate points, dodged per series, no joining lines", function()
  local svg = plot.svg(categorical)
  T.eq(count(svg, "<polyline"), 0, "no line joins categories")
  local pts = points(svg)
  T.eq(#pts, 6, "3 categories x 2 series")
  for i = 1, 3 do
    local a, b = pts[i], pts[i + 3]
    T.truthy(b[1] - a[1] >= 6, ("category %d: the series sit apart (%g, %g)"):format(i, a[1], b[1]))
    T.truthy(b[1] - a[1] < 60, "and stay within their category")
  end
  T.eq(count(svg, 'class="legend"'), 2, "two series: a legend")
  T.truthy(svg:find(">0,2,4,5<", 1, true), "category labels on the axis")
end)

T.case("a numeric axis: one line per series", function()
  local svg = plot.svg{
    title = "length by penalty", x_label = "repetition_penalty", y_label = "length",
    x = { 1.0, 1.2, 1.5 },
    series = {
      { name = "low", points = { { 1.0, 10, 1 }, { 1.2, 11, 1 }, { 1.5, 12, 1 } } },
      { name = "high", points = { { 1.0, 9, 1 }, { 1.2, 10, 1 }, { 1.5, 13, 1 } } },
    },
  }
  T.eq(count(svg, '<polyline class="series%-line"'), 2, "a line per series")
  local pts = points(svg)
  T.truthy(pts[1][1] < pts[2][1] and pts[2][1] < pts[3][1], "x increases with the value")
end)

T.case("one series: no legend", function()
  local svg = plot.svg{
    title = "t", x_label = "layers", y_label = "y", x = { "low", "high" },
    series = { { name = "all", points = { { "low", 1, 0.1 }, { "high", 2, 0.1 } } } },
  }
  T.eq(count(svg, 'class="legend"'), 0, "no legend entry")
  T.truthy(not svg:find(">all<", 1, true), "no 'all' label")
  T.eq(count(svg, "<polyline"), 0, "categorical: no line")
end)

T.case("the y axis says the metric, its unit, the aggregate and the items per point", function()
  local rep = { units = { length = "tokens" } }
  T.eq(report.y_label(rep, "length", { { points = { { 1, 5, 1, 24 }, { 2, 6, 1, 24 } } } }),
    "length (tokens), mean over 24 items", "one count")
  rep.summarize = function() end
  T.eq(report.y_label(rep, "MC2", { { points = { { 1, 5, 1, 10 } } }, { points = { { 1, 5, 1, 20 } } } }),
    "MC2, the task's summary over 10 to 20 items", "a range when counts differ")
  local svg = plot.svg(categorical)
  T.truthy(svg:find("MC2, the task's summary over 40 items", 1, true), "the label is drawn")
end)

T.finish()
