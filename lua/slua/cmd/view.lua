-- slua view RUN.json: the interactive HTML view (slua.view) of a run saved with --format json —
-- a generation recipe's result (prompt_ids, new_ids; DoLa's and SkipLayerCD's per-step details
-- become strips under the grid), logits' or logit_lens' — recomputed on the run's model.
--
-- Usage: slua view RUN.json [--out RUN.html] [--model DIR] [--target TEXT | --target-id N]
--          [--view-top 5] [--wrap 16] [--threads N]
-- --model defaults to the model the run names. The page is one file: no network, inline style
-- and script.
local sl = require "slua"
local view = require "slua.view"

local argv = arg
local declared = {
  out = { default = "", type = "string", help = 'the HTML file ("" = RUN.json with .html for .json)' },
  model = { default = "", type = "string", help = 'model directory ("" = the one the run names)' },
  threads = 0,
}
for k, v in pairs(view.options) do if k ~= "html" then declared[k] = v end end
local path = argv[1]
if path == "--help" then sl.options({ [0] = argv[0], "--help" }, declared) end
if path == nil or path:match("^%-%-") then
  sl.fail("usage: slua view RUN.json [--out RUN.html] [--model DIR] [--target TEXT] (see --help)", 2)
end
local rest = { [0] = argv[0] }
for i = 2, #argv do rest[#rest + 1] = argv[i] end
local opt = sl.options(rest, declared)

local f = io.open(path, "rb") or sl.fail(("%s: cannot open"):format(path))
local text = f:read("a")
f:close()
local ok, result = pcall(sl.json.decode, text)
if not ok or type(result) ~= "table" then
  sl.fail(("%s: not a JSON object of a run (save one with --format json)"):format(path))
end
local ids, prompt_len = view.ids_of(result)
if #ids == 0 and type(result.positions) == "table" then   -- a logit_lens profile without its ids
  for i, p in ipairs(result.positions) do ids[i] = p.token end
  prompt_len = #ids
end
if #ids == 0 then sl.fail(("%s: no prompt_ids (nor positions) to view"):format(path)) end
for i, id in ipairs(ids) do
  if math.type(id) ~= "integer" or id < 0 then sl.fail(("%s: token %d is not a token id (%s)"):format(path, i, tostring(id))) end
end
local model_dir = opt.model ~= "" and opt.model or result.model
if type(model_dir) ~= "string" then sl.fail(("%s: names no model (give --model DIR)"):format(path), 2) end
sl.set_threads(opt.threads)
local model = sl.check(sl.load(model_dir))
for i, id in ipairs(ids) do
  if id >= model.n_vocab then
    sl.fail(("%s: token %d (id %d) is outside the vocabulary of %s (%d ids)"):format(path, i, id, model_dir, model.n_vocab))
  end
end
local out = opt.out ~= "" and opt.out or (path:gsub("%.json$", "") .. ".html")
local name = result.recipe or (result.positions and "logit_lens") or (result.final and "logits") or "run"
view.write(out, view.data(model, ids, {
  prompt_len = prompt_len, top = opt.view_top, target = opt.target, target_id = opt.target_id, wrap = opt.wrap,
  recipe = name, result = result, title = ("%s: %s"):format(name, model.path:match("[^/]*$")),
}))
io.stderr:write(("slua view: wrote %s\n"):format(out))
