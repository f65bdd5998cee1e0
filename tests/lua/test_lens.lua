-- The logit-lens recipe and module: the final row is the model's own prediction, divergences
-- and language ratios behave, and the SVG heatmap is well-formed and renders.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local lens = require "slua.decoders.lens"

local slua = arg[1] or "build/slua"
local ref = T.json_file(SLUA_ROOT .. "/tests/data/stories260K/reference_outputs.json")

T.case("final layer row is the teacher-forced argmax", function()
  local model <close> = sl.check(sl.load())
  local ids = ref.prompt.input_ids
  local profile = lens.profile(model, ids, { lens = "norm", lang = "en" })
  local N = model.n_layer
  T.eq(#profile.layers, N + 1, "layers 0..N")
  for t, want in ipairs(ref.prompt.argmax_per_position) do
    T.eq(profile.positions[t].cells[N + 1].id, want, "final top-1 at position " .. t)
  end
  T.near(profile.divergence[N + 1], 0, 1e-7, "final layer diverges from itself by 0")
  for l = 1, N do T.truthy(profile.divergence[l] > 0, "layer " .. (l - 1) .. " divergence > 0") end
  for _, r in ipairs(profile.lang_ratio) do T.truthy(r > 0.5 and r <= 1, "English ratio in (0.5, 1]") end
  -- With tied embeddings the normed embedding's lens peaks on the input token itself.
  for t, id in ipairs(ids) do T.eq(profile.positions[t].cells[1].id, id, "layer 0 top-1 = input at " .. t) end
end)

T.case("script detection", function()
  T.truthy(lens.in_script("中国", "zh") and not lens.in_script("China", "zh"), "zh")
  T.truthy(lens.in_script("Привет", "ru") and lens.in_script("한국", "ko") and lens.in_script("カタ", "ja"), "ru ko ja")
  T.truthy(lens.in_script("नमस्ते", "hi") and lens.in_script("سلام", "ar") and lens.in_script(" the", "en"), "hi ar en")
  T.raises(function() lens.in_script("x", "xx") end, "unknown language 'xx'")
end)

T.case("svg heatmap renders", function()
  local svg = os.tmpname() .. ".svg"
  local out, ok = T.run(("%s %s/recipes/logit_lens.lua --prompt-ids 1,403,407,261 --svg %s --color entropy"):format(
    slua, SLUA_ROOT, svg))
  T.truthy(ok, out)
  local f = assert(io.open(svg))
  local text = f:read("a")
  f:close()
  T.truthy(text:find("^<svg ") and text:find("</svg>%s*$"), "an svg document")
  local _, cells = text:gsub('<rect x="', "")
  T.eq(cells, 6 * 4, "one cell per layer and position")
  T.truthy(text:find(">upon<", 1, true), "cell text holds top-1 tokens")
  local png = svg .. ".png"
  local msg, rendered = T.run(("rsvg-convert %s -o %s"):format(svg, png))
  T.truthy(rendered, "rsvg-convert renders it: " .. msg)
  local p = assert(io.open(png, "rb"))
  T.eq(p:read(8), "\137PNG\r\n\26\n", "a PNG came out")
  p:close()
  os.remove(svg)
  os.remove(png)
end)
T.finish()
