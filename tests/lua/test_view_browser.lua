-- The HTML view in a real browser: headless Chromium driven over the DevTools protocol by
-- tests/view/browser_check.py. The page must load with no console error and no request, show
-- the hovered cell's top-k in its tooltip — equal to recipes/logits.lua's softmax to 1e-6 —
-- move by keyboard, and draw its grid at the size the geometry gives. Chromium is installed
-- when missing (Debian's `chromium`, as scripts/install-deps.sh does); when that cannot be
-- done the test says why and exits 77 (CTest: skipped).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local html = require "slua.view.html"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local cli = T.cli(slua, tmp)
local PROMPT = "Once upon a time, there was a little girl named"

local function find_chromium()
  for _, name in ipairs{ os.getenv("CHROMIUM") or "", "chromium", "chromium-browser", "google-chrome" } do
    if name ~= "" and os.execute(("command -v %s >/dev/null 2>&1"):format(T.q(name))) then return name end
  end
end

local chromium = find_chromium()
if not chromium then
  local why
  if not os.execute("command -v apt-get >/dev/null 2>&1") then
    why = "no apt-get to install it"
  elseif not os.execute('[ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1') then
    why = "not root and no sudo to install it"
  else
    io.stderr:write("view: installing chromium (apt-get install chromium)\n")
    local ok = os.execute('SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1'
      .. ' || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }')
    chromium = ok and find_chromium()
    why = "apt-get could not install chromium (offline?)"
  end
  if not chromium then
    io.stderr:write("skip: headless Chromium is not available: " .. why .. "\n")
    os.exit(77, true)
  end
end
if not os.execute("command -v python3 >/dev/null 2>&1") then
  io.stderr:write("skip: python3 (the DevTools client) is not available\n")
  os.exit(77, true)
end

local function page_data(path)
  local json = T.read(path):match('<script type="application/json" id="slua%-data">(.-)</script>')
  return assert(sl.json.decode(assert(json, "no data in " .. path)))
end

-- browser_check.py's report on a page, hovering cell (layer, position), both from 0; png: the
-- grid's screenshot.
local function in_browser(page, layer, pos, png, full)
  local cmd = ("CHROMIUM=%s python3 %s/tests/view/browser_check.py %s %d %d %s %s"):format(T.q(chromium), SLUA_ROOT,
    T.q(page), layer, pos, T.q(png), full and T.q(full) or "")
  local out, ok = T.run(cmd)
  if not ok then error("browser_check failed:\n" .. out, 2) end
  return assert(sl.json.decode(out:match("[^\n]*\n?$")), out)
end

local function softmax(z)
  local m = -math.huge
  for _, v in ipairs(z) do m = math.max(m, v) end
  local sum = 0
  for _, v in ipairs(z) do sum = sum + math.exp(v - m) end
  return function(id) return math.exp(z[id + 1] - m) / sum end
end

T.case("logit lens page: no console error, no request; the tooltip's top-k are logits.lua's", function()
  local page = tmp .. "/lens.html"
  local _, err, code = cli.exec{ "logit_lens", "--prompt", PROMPT, "--max-new-tokens", "30", "--wrap", "20",
                                 "--html", page, "--target", " girl" }
  T.eq(code, 0, err)
  local data = page_data(page)
  local logits = cli.json{ "logits", "--prompt", PROMPT, "--layers", "0,1,2,3,4,5", "--format", "json" }
  local n = #logits.prompt_ids
  T.eq(data.prompt_len, n, "the same prompt")
  -- hover layer 3 at the last prompt position: the cell logits.lua's per-layer vectors describe
  local layer = 3
  local r = in_browser(page, layer, n - 1, tmp .. "/grid.png", os.getenv("SLUA_VIEW_SHOT"))
  T.eq(#r.errors, 0, "console errors: " .. table.concat(r.errors, "; "))
  T.eq(#r.requests, 0, "network requests: " .. table.concat(r.requests, ", "))
  local tip = r.tooltip
  T.eq(tip.hidden, false, "the tooltip shows on hover")
  T.eq(tonumber(tip.layer), layer, "for the hovered layer")
  T.eq(tonumber(tip.pos), n - 1, "and position")
  local seen = { norm = 0, raw = 0 }
  for _, row in ipairs(tip.rows) do
    local p = softmax(logits.layers[tostring(layer)][row.lens])
    T.near(row.p, p(row.id), 1e-6, ("%s lens: p(%d)"):format(row.lens, row.id))
    seen[row.lens] = seen[row.lens] + 1
  end
  T.eq(seen.norm, 5, "top-5 of the normed lens")
  T.eq(seen.raw, 5, "top-5 of the raw early exit")
  T.eq(#tip.targets, 2, "the target's rank and probability under both lenses")
  for _, t in ipairs(tip.targets) do
    local p = softmax(logits.layers[tostring(layer)][t.lens])
    T.near(t.p, p(data.target.id), 1e-6, t.lens .. ": target probability")
  end
  T.eq(tonumber(r.keyboard.layer), layer + 1, "ArrowUp moves focus one layer up")
  T.eq(tonumber(r.keyboard.tooltip_layer), layer + 1, "and the tooltip follows the focus")
  T.truthy(r.keyboard.label:find("^layer 4, position " .. n), "the focused cell has a spoken label: " .. r.keyboard.label)
  local positions = #data.tokens
  T.eq(r.blocks, math.ceil(positions / 20), "wrapped into rows of 20 positions")
  T.eq(r.cells, positions * #data.layers, "a cell per layer and position")
  T.eq(r.labelled, r.cells, "every cell labelled for screen readers")
  T.truthy(r.colorbar:find("colour scale: top-1 probability", 1, true), "a described colour bar")
  T.truthy(r.switch.before ~= r.switch.after, "switching to entropy recolours the cell: " .. r.switch.before)
  T.truthy(r.switch.colorbar:find("colour scale: entropy (nats)", 1, true), "and the colour bar: " .. r.switch.colorbar)
  local g = html.geometry
  T.eq(r.grid.png_width, g.label_w + 20 * g.cell_w, "the first grid's screenshot: label column and 20 cells wide")
  T.eq(r.grid.png_height, (#data.layers + 1) * g.cell_h, "the layers and the input row high")
end)

T.case("DoLa page: the strip of every step renders, without errors", function()
  local page = tmp .. "/dola.html"
  local out, err, code = cli.exec{ "dola", "--max-new-tokens", "8", "--dola-layers", "0,2,4", "--format", "json", "--html", page }
  T.eq(code, 0, err)
  local run = assert(sl.json.decode(out))
  local r = in_browser(page, 4, #run.prompt_ids, tmp .. "/dola.png", os.getenv("SLUA_VIEW_SHOT_DOLA"))
  T.eq(#r.errors, 0, "console errors: " .. table.concat(r.errors, "; "))
  T.eq(#r.requests, 0, "network requests")
  local positions = #run.prompt_ids + #run.new_ids
  T.eq(r.dola_cells, positions * (1 + 3 + 1), "rows: premature layer, a divergence per candidate, survivors")
  T.eq(r.tooltip.hidden, false, "hover works on a generated position")
end)

T.case("SkipLayerCD page: the span's strip renders, without errors", function()
  local page = tmp .. "/sld.html"
  local out, err, code = cli.exec{ "skiplayer_sld", "--max-new-tokens", "6", "--format", "json", "--html", page }
  T.eq(code, 0, err)
  local run = assert(sl.json.decode(out))
  local r = in_browser(page, 2, #run.prompt_ids, tmp .. "/sld.png")
  T.eq(#r.errors, 0, "console errors: " .. table.concat(r.errors, "; "))
  T.eq(#r.requests, 0, "network requests")
  T.eq(r.skip_cells, (#run.prompt_ids + #run.new_ids) * 3, "rows: expert entropy, amateur entropy, kept")
end)

T.remove_tmpdirs()
T.finish()
