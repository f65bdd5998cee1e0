-- slua.view.html: the page of a view, one self-contained file: the data as JSON in a
-- <script type="application/json">, the style and the script inline (slua.view.page_js), no
-- request to anywhere. The script only draws what the data holds.
local core = require "slua.core"
local page_js = require "slua.view.page_js"

local H = {}

-- Cell geometry in CSS pixels; the script reads it from the data, and tests compute the grid's
-- size from it.
H.geometry = { cell_w = 64, cell_h = 24, label_w = 96 }

local CSS = [[
:root { --ink: #1b1b1b; --muted: #5a5a5a; --gen: #d62728; font-family: "DejaVu Sans", system-ui, sans-serif; }
body { margin: 16px; color: var(--ink); background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
.meta { color: var(--muted); font-size: 13px; margin: 0 0 10px; }
.controls { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; font-size: 13px; margin-bottom: 8px; }
.controls label { display: inline-flex; gap: 6px; align-items: center; }
#colorbar { display: flex; align-items: center; gap: 8px; font-size: 12px; margin: 6px 0 14px; }
#colorbar .ramp { width: 240px; height: 14px; border: 1px solid #999; }
.block { margin: 0 0 18px; width: max-content; }
.block h2 { font-size: 13px; font-weight: normal; color: var(--muted); margin: 0 0 4px; }
.grid { display: grid; width: max-content; font-size: 11px; }
.grid > .row { display: contents; }
.lab { box-sizing: border-box; height: var(--ch); line-height: var(--ch); padding-right: 8px; text-align: right;
       color: var(--muted); white-space: nowrap; overflow: hidden; }
.cell { box-sizing: border-box; height: var(--ch); line-height: var(--ch); text-align: center; white-space: pre;
        overflow: hidden; border-right: 1px solid #fff; border-bottom: 1px solid #fff; cursor: default; }
.cell:focus { outline: 2px solid #000; outline-offset: -2px; }
.cell.gen-start { border-left: 2px solid var(--gen); }
.input .cell { font-style: italic; background: #f4f4f4; color: var(--ink); }
.input .cell.gen { background: #fde3e3; font-weight: bold; font-style: normal; }
.strip { margin-top: 6px; }
.strip .cell { background: #fafafa; }
.legend-gen { display: inline-block; width: 12px; height: 12px; background: #fde3e3; border-left: 2px solid var(--gen); vertical-align: middle; }
#tooltip { position: absolute; z-index: 10; background: #fff; border: 1px solid #888; border-radius: 4px;
           box-shadow: 0 2px 8px rgba(0,0,0,.25); padding: 8px 10px; font-size: 12px; width: max-content; pointer-events: none; }
#tooltip[hidden] { display: none; }
#tooltip h3 { font-size: 12px; margin: 0 0 6px; }
#tooltip table { border-collapse: collapse; margin: 0 0 6px; }
#tooltip caption { text-align: left; font-weight: bold; padding-bottom: 2px; white-space: nowrap; }
#tooltip td { padding: 1px 6px 1px 0; white-space: pre; }
#tooltip td.prob { text-align: right; font-variant-numeric: tabular-nums; }
#tooltip .lenses { display: flex; gap: 14px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
]]

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- The data as JSON that cannot end its <script> element early.
local function embedded_json(data)
  return (core.json_encode(data):gsub("<", "\\u003c"))
end

function H.page(data)
  data.geometry = H.geometry
  local generated = #data.tokens - data.prompt_len
  local meta = ("%s · %d layers · %d prompt tokens%s · top-%d per cell"):format(
    data.model:match("[^/]*$"), #data.layers - 1, data.prompt_len,
    generated > 0 and (", %d generated"):format(generated) or "", data.k)
  if data.target then
    meta = meta .. (" · target %q (id %d%s)"):format(data.target.text, data.target.id,
      (data.target.tokens or 1) > 1 and (", first of %d tokens"):format(data.target.tokens) or "")
  end
  local o = {
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    -- nothing may load from anywhere: the page is one file
    [[<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">]],
    "<title>" .. esc(data.title) .. "</title>", "<style>" .. CSS .. "</style>", "</head>", "<body>",
    "<header>", "<h1>" .. esc(data.title) .. "</h1>", '<p class="meta">' .. esc(meta) .. "</p>",
    '<div class="controls" role="toolbar" aria-label="view settings">',
    '<label>Colour <select id="color">'
      .. '<option value="prob">top-1 probability</option><option value="entropy">entropy</option>'
      .. (data.target and '<option value="target">target probability</option>' or "") .. "</select></label>",
    '<label>Grid lens <select id="lens"><option value="norm">logit lens (final norm)</option>'
      .. '<option value="raw">raw early exit</option></select></label>',
    ('<label>Positions per row <input id="wrap" type="number" min="4" max="4096" value="%d"></label>'):format(data.wrap),
    '<span><span class="legend-gen"></span> generated tokens (red edge: where generation starts)</span>',
    "</div>",
    '<div id="colorbar" role="img"></div>',
    '<p class="sr-only">Arrow keys move between cells; each cell announces its top tokens. Escape hides the details.</p>',
    "</header>",
    '<main id="views"></main>',
    '<div id="tooltip" role="tooltip" hidden></div>',
    '<script type="application/json" id="slua-data">' .. embedded_json(data) .. "</script>",
    "<script>" .. page_js .. "</script>",
    "</body>", "</html>", "",
  }
  return table.concat(o, "\n")
end

return H
