-- The HTML view (slua.view) and the static logit-lens SVG, without a browser: the page is one
-- self-contained file whose data holds, per cell, the top-k of both lenses with probabilities
-- equal to recipes/logits.lua's softmax (computed here, in plain Lua, from its JSON), the
-- target's rank and probability, DoLa's and SkipLayerCD's per-step details; `slua view` of a
-- saved run gives the same page as --html; a 100-token x 32-layer page at top-5 stays under
-- 2 MB. tests/lua/test_view_browser.lua opens the pages in Chromium.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local html = require "slua.view.html"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local cli = T.cli(slua, tmp)
local PROMPT = "Once upon a time, there was a little girl named"

-- The data object embedded in a page.
local function page_data(path)
  local page = T.read(path)
  local json = page:match('<script type="application/json" id="slua%-data">(.-)</script>')
  return assert(sl.json.decode(assert(json, "no data script in " .. path))), page
end

-- softmax of a logits vector in double, and its top k (value order, ties by lower id)
local function softmax_top(z, k)
  local m = -math.huge
  for _, v in ipairs(z) do m = math.max(m, v) end
  local sum = 0
  for _, v in ipairs(z) do sum = sum + math.exp(v - m) end
  local order = {}
  for i = 1, #z do order[i] = i end
  table.sort(order, function(a, b) return z[a] > z[b] or (z[a] == z[b] and a < b) end)
  local top = {}
  for i = 1, k do top[i] = { id = order[i] - 1, p = math.exp(z[order[i]] - m) / sum } end
  return top, function(id) return math.exp(z[id + 1] - m) / sum end, function(id)
    local rank = 1
    for i, v in ipairs(z) do if v > z[id + 1] or (v == z[id + 1] and i - 1 < id) then rank = rank + 1 end end
    return rank
  end
end

T.case("logit_lens --html: one self-contained page whose top-k equal logits.lua's softmax to 1e-6", function()
  local page_path = tmp .. "/lens.html"
  local _, err, code = cli.exec{ "logit_lens", "--prompt", PROMPT, "--html", page_path, "--target", " girl", "--view-top", "5" }
  T.eq(code, 0, err)
  local data, page = page_data(page_path)
  T.truthy(not page:find("https?://"), "no URL anywhere in the page")
  T.truthy(not page:find("%ssrc="), "nothing loaded by src")
  T.truthy(not page:find("%shref="), "nothing linked by href")
  T.truthy(page:find("<style>", 1, true) and page:find("<script>", 1, true), "inline style and script")
  T.truthy(page:find("default-src 'none'", 1, true), "a policy that forbids loading anything")
  local logits = cli.json{ "logits", "--prompt", PROMPT, "--layers", "0,1,2,3,4,5", "--format", "json" }
  local n = #logits.prompt_ids
  T.eq(#data.tokens, n, "one column per prompt token")
  T.eq(data.prompt_len, n, "no generation")
  T.eq(#data.cells[n], 6, "layers 0..5")
  T.eq(data.target.text, "g", "the target's first token with text of its own")
  local checked = 0
  for l = 0, 5 do
    for key, lens in pairs{ n = "norm", r = "raw" } do
      local cell = data.cells[n][l + 1][key]
      local top, prob, rank = softmax_top(logits.layers[tostring(l)][lens], 5)
      for k = 1, 5 do
        T.eq(cell.i[k], top[k].id, ("layer %d %s: top-%d id"):format(l, lens, k))
        T.near(cell.p[k], top[k].p, 1e-6, ("layer %d %s: top-%d probability"):format(l, lens, k))
        checked = checked + 1
      end
      T.eq(cell.r, rank(data.target.id), ("layer %d %s: target rank"):format(l, lens))
      T.near(cell.t, prob(data.target.id), 1e-6, ("layer %d %s: target probability"):format(l, lens))
    end
  end
  T.eq(checked, 60, "6 layers x 2 lenses x top-5")
  -- the final layer's normed lens is the model's own next-token distribution
  local final = softmax_top(logits.final[n], 1)
  T.eq(data.cells[n][6].n.i[1], final[1].id, "layer 5 norm: the final logits' argmax")
end)

T.case("dola and skiplayer --html carry their per-step strips; slua view RUN.json gives the same page", function()
  local a = tmp .. "/dola.html"
  local out, err, code = cli.exec{ "dola", "--max-new-tokens", "6", "--dola-layers", "0,2,4", "--format", "json", "--html", a }
  T.eq(code, 0, err)
  T.write(tmp .. "/run.json", out)
  local run = assert(sl.json.decode(out))
  local data = page_data(a)
  T.eq(#data.tokens, #run.prompt_ids + #run.new_ids, "prompt and generated tokens")
  T.eq(data.prompt_len, #run.prompt_ids, "where generation starts")
  T.eq(#data.dola, #run.steps, "a strip entry per step")
  for i, s in ipairs(data.dola) do
    T.eq(s.layer, run.steps[i].premature_layer, "premature layer of step " .. i)
    T.eq(#s.js, 3, "a divergence per candidate")
    T.near(s.js[1], run.steps[i].js_divs[1], 1e-8 * math.max(1, run.steps[i].js_divs[1]), "JS divergence")
  end
  _, err, code = cli.exec{ "view", tmp .. "/run.json", "--out", tmp .. "/again.html" }
  T.eq(code, 0, err)
  T.eq(T.read(tmp .. "/again.html"), T.read(a), "slua view of the saved run = --html")
  local s = tmp .. "/slh.html"
  out, err, code = cli.exec{ "skiplayer_slh", "--max-new-tokens", "5", "--format", "json", "--html", s }
  T.eq(code, 0, err)
  run = assert(sl.json.decode(out))
  local sd = page_data(s)
  T.eq(table.concat(sd.skip.span, ","), table.concat(run.skip_span, ","), "the skipped span")
  T.eq(#sd.skip.steps, #run.steps, "a strip entry per step")
  for i, st in ipairs(sd.skip.steps) do
    T.truthy(st.expert > 0 and st.amateur > 0, "entropies of step " .. i)
    T.near(st.expert, run.steps[i].expert_entropy, 1e-6, "expert entropy")
  end
end)

T.case("--intervene: the page names the active hooks and shows the intervened model's lens", function()
  local v = {}
  for i = 1, 64 do v[i] = 0.5 end
  T.write(tmp .. "/steer.json", sl.json.encode{ { hook = "blocks.2.hook_resid_post", op = "add", vector = v, scale = 4 } })
  local plain, steered = tmp .. "/plain.html", tmp .. "/steered.html"
  for path, extra in pairs{ [plain] = {}, [steered] = { "--intervene", tmp .. "/steer.json" } } do
    local args = { "logits", "--prompt", PROMPT, "--html", path }
    for _, a in ipairs(extra) do args[#args + 1] = a end
    local _, err, code = cli.exec(args)
    T.eq(code, 0, err)
  end
  local a, b = page_data(plain), page_data(steered)
  T.eq(a.interventions, nil, "no intervention, none named")
  T.eq(sl.json.encode(b.interventions), '["blocks.2.hook_resid_post"]', "the hook named")
  local N = #a.layers
  local function lenses(c) return sl.json.encode{ c.n, c.r } end -- (d compares with the final layer)
  T.eq(lenses(b.cells[1][3]), lenses(a.cells[1][3]), "layer 2 (the input of the steered block) unchanged")
  T.truthy(lenses(a.cells[1][N]) ~= lenses(b.cells[1][N]), "the final layer moved")
end)

T.case("a 100-token page of a 32-layer model at top-5 is under 2 MB", function()
  local ids = { 1 }
  for i = 2, 100 do ids[i] = 256 + (i * 37) % 250 end
  local model <close> = sl.check(sl.load())
  local data = require("slua.view").data(model, ids, { top = 5, target_id = 300, prompt_len = 60 })
  -- 33 layers (embeddings and 32 blocks): the real cells repeated, as large as real ones
  for _, column in ipairs(data.cells) do
    local n = #column
    for l = n + 1, 33 do column[l] = column[(l - 1) % n + 1] end
  end
  data.layers = {}
  for l = 0, 32 do data.layers[l + 1] = l end
  local page = html.page(data)
  T.truthy(#page <= 2 * 1024 * 1024, ("page of %d bytes"):format(#page))
  T.truthy(#page > 200 * 1024, "and it holds the cells")
end)

T.case("the SVG wraps into blocks, marks the generated tokens and has a colour bar", function()
  local path = tmp .. "/lens.svg"
  local _, err, code = cli.exec{ "logit_lens", "--prompt", PROMPT, "--max-new-tokens", "12", "--wrap", "10", "--svg", path }
  T.eq(code, 0, err)
  local svg = T.read(path)
  T.eq(select(2, svg:gsub(">positions %d+–%d+<", "")), 3, "27 positions in blocks of 10")
  T.eq(select(2, svg:gsub('class="generated"', "")), 12, "the generated tokens are marked")
  T.eq(select(2, svg:gsub('class="generation%-start"', "")), 1, "one line where generation starts")
  T.truthy(svg:find('class="colorbar"', 1, true) and svg:find("linearGradient", 1, true), "a colour bar")
  local width = tonumber(svg:match('<svg[^>]- width="(%d+)"'))
  T.eq(width, 120 + 64 * 10 + 20, "as wide as one block of 10 cells")
  if os.execute("command -v rsvg-convert >/dev/null") then
    T.truthy(os.execute(("rsvg-convert %s -o %s/lens.png"):format(path, tmp)), "rsvg-convert renders it")
  end
end)

T.case("bad view input: one line, the right exit status", function()
  cli.usage_error({ "logit_lens", "--html", tmp .. "/x.html", "--target-id", "9999" },
    "slua: option --target-id must be an id in [0, 511] (got 9999)")
  local _, err, code = cli.exec{ "view", tmp .. "/missing.json" }
  T.eq(code, 1, "a missing run file")
  T.eq(err, ("slua: %s/missing.json: cannot open\n"):format(tmp), "its message")
  T.write(tmp .. "/nomodel.json", '{"prompt_ids":[1,2]}')
  _, err, code = cli.exec{ "view", tmp .. "/nomodel.json" }
  T.eq(code, 2, "no model named")
  T.truthy(err:find("names no model", 1, true), err)
  T.write(tmp .. "/bad.json", '{"prompt_ids":[1,"x"],"model":"models/stories260K"}')
  _, err, code = cli.exec{ "view", tmp .. "/bad.json" }
  T.eq(code, 1, "a bad id")
  T.truthy(err:find("token 2 is not a token id", 1, true), err)
  _, err, code = cli.exec{ "logit_lens", "--html", "/nonexistent-dir/x.html" }
  T.eq(code, 1, "an unwritable page")
  T.truthy(err:find("option --html: cannot write /nonexistent-dir/x.html", 1, true), err)
end)

T.remove_tmpdirs()
T.finish()
