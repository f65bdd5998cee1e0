-- slua eval TASK: the DoLa paper's evaluations with the official protocol (voidism/DoLa
-- tfqa_mc_eval.py, factor_eval.py, gsm8k_eval.py, strqa_eval.py) and MGSM (dgme-syz/SkipLayerCD).
--
-- Usage: slua eval truthfulqa_mc|factor|gsm8k|strategyqa|mgsm [--model DIR]
--          [--data PATH | --items FILE.jsonl] [--early-exit-layers -1 | a,b | a,b,...,N]
--          [--limit N] [--shard I/N] [--output results.jsonl] [--no-prefix-cache] [--details]
--          [--relative-top X] [--relative-top-value V] [--post-softmax true|false]
--          [--recipe NAME] [--recipe-options JSON] [--max-new-tokens 256] [--repetition-penalty P]
--          [--lang zh] [--n-ctx N] [--threads N] [--progress auto|always|never] [--pause SECONDS]
--        slua eval --merge a.jsonl b.jsonl ... [--output merged.jsonl]
--
-- --early-exit-layers as the official scripts read it: one entry = baseline, two = static DoLa
-- (premature, mature), three or more = dynamic DoLa (candidates in order, mature last), mature
-- written explicitly (N). Scoring tasks default to their script's relative_top/post_softmax;
-- generating tasks run --recipe (default: greedy for the baseline, dola otherwise, with the
-- official repetition penalty 1.0 / 1.2) through the shared generation loop, so any recipe can be
-- evaluated. --data defaults to the copy bundled under data/. --items takes pre-tokenised items
-- (TruthfulQA: {id, prompt_ids|n_prefix, answers=[{kind, full_ids}], ref_true, ref_best};
-- FACTOR: {id, prompt_ids|n_prefix, full_ids=[true, false...]}). Each finished item is one line
-- of --output, fsync'd; a rerun with the same output resumes, and refuses other settings. The
-- summary JSON goes to stdout; a progress line to stderr when it is a terminal.
local sl = require "slua"
local ev = require "slua.eval"
local runner = require "slua.eval.runner"
local data = require "slua.eval.data"

local argv = arg

if argv[1] == "--merge" then
  local paths, output = {}, nil
  local i = 2
  while i <= #argv do
    if argv[i] == "--output" then
      output = argv[i + 1] or sl.fail("option --output needs a value")
      i = i + 1
    elseif argv[i]:match("^%-%-") then
      sl.fail(("--merge: unknown option %s"):format(argv[i]))
    else
      paths[#paths + 1] = argv[i]
    end
    i = i + 1
  end
  if #paths == 0 then sl.fail("--merge needs result files") end
  io.write(sl.json.encode(runner.merge(paths, output)), "\n")
  return
end

local task_name = argv[1]
if task_name == nil or task_name:match("^%-%-") then
  if task_name == "--help" then
    sl.options({ [0] = argv[0], "--help" }, {})
  end
  sl.fail("usage: slua eval TASK [options] (tasks: " .. table.concat(ev.task_names, ", ") .. "; see --help)")
end
local task = ev.tasks[task_name]
if not task then sl.fail(("unknown task '%s' (tasks: %s)"):format(task_name, table.concat(ev.task_names, ", ")), 2) end

local rest = { [0] = argv[0] }
for i = 2, #argv do rest[#rest + 1] = argv[i] end
local opt = sl.options(rest, {
  model = "", data = "", items = "", early_exit_layers = "-1",
  limit = { default = 0, min = 0, help = "the first N items (0 = all)" },
  shard = "", output = "",
  prefix_cache = true, details = false, relative_top = "", relative_top_value = "", post_softmax = "",
  recipe = "", recipe_options = "", max_new_tokens = 256, repetition_penalty = "", lang = "zh", seed = 42,
  threads = 0, progress = { default = "auto", choices = { "auto", "always", "never" } },
  pause = { default = 0.0, min = 0 }, n_ctx = 0,
})
if opt.data ~= "" and opt.items ~= "" then sl.fail("give --data or --items, not both", 2) end
local shard = runner.parse_shard(opt.shard)
sl.set_threads(opt.threads)

local function number_or(text, default, name)
  if text == "" then return default end
  return tonumber(text) or sl.fail(("option --%s expects a number (got '%s')"):format(name, text))
end

local model = sl.check(sl.load(opt.model ~= "" and opt.model or nil))
local N = model.n_layer
local layers = sl.parse_ints(opt.early_exit_layers, "early-exit-layers")
if #layers == 0 then sl.fail("option --early-exit-layers: give -1, a,b or a,b,...,N") end
if #layers >= 2 then
  for _, l in ipairs(layers) do
    if l < 0 or l > N then sl.fail(("option --early-exit-layers: layer %d out of range [0, %d]"):format(l, N)) end
  end
end
local mode = ev.layers_setting(layers)

-- Everything that decides the results goes into the settings (and its hash).
local settings = { task = task.name, model = model.path, early_exit_layers = #layers >= 2 and layers or { -1 },
                   mode = mode.mode }
local setting = { details = opt.details }
for k, v in pairs(mode) do setting[k] = v end

if task.kind == "score" then
  setting.relative_top = number_or(opt.relative_top, task.settings.relative_top, "relative-top")
  setting.relative_top_value = number_or(opt.relative_top_value, task.settings.relative_top_value, "relative-top-value")
  if opt.post_softmax == "" then
    setting.post_softmax = task.settings.post_softmax
  elseif opt.post_softmax == "true" or opt.post_softmax == "false" then
    setting.post_softmax = opt.post_softmax == "true"
  else
    sl.fail(("option --post-softmax expects true or false (got '%s')"):format(opt.post_softmax))
  end
  if setting.relative_top < 0 then sl.fail("option --relative-top must be >= 0") end
  setting.prefix_cache = opt.prefix_cache
  settings.relative_top, settings.relative_top_value, settings.post_softmax =
    setting.relative_top, setting.relative_top_value, setting.post_softmax
else
  local recipe = opt.recipe ~= "" and opt.recipe or (mode.mode == "baseline" and "greedy" or "dola")
  local ro = {}
  if opt.recipe_options ~= "" then
    local v, err = sl.json.decode(opt.recipe_options)
    if type(v) ~= "table" then sl.fail("option --recipe-options: " .. (err or "not a JSON object")) end
    ro = v
  end
  if recipe == "greedy" or recipe == "dola" then
    if ro.repetition_penalty == nil then
      ro.repetition_penalty = number_or(opt.repetition_penalty, mode.mode == "baseline" and 1.0 or 1.2,
        "repetition-penalty")
    end
  elseif opt.repetition_penalty ~= "" then
    ro.repetition_penalty = number_or(opt.repetition_penalty, 1.0, "repetition-penalty")
  end
  if recipe == "dola" and mode.mode ~= "baseline" and ro.dola_layers == nil then
    ro.dola_layers = table.concat(mode.candidate_layers or { mode.premature_layer }, ",")
    if mode.mature_layer ~= N then ro.mature_layer = mode.mature_layer end
    ro.relative_top = ro.relative_top or 0.1
  end
  if opt.n_ctx > 0 then ro.n_ctx = opt.n_ctx end
  setting.recipe, setting.recipe_options = recipe, ro
  setting.max_new_tokens, setting.seed, setting.lang = opt.max_new_tokens, opt.seed, opt.lang
  setting.prefix_cache = opt.prefix_cache
  settings.recipe, settings.recipe_options, settings.max_new_tokens, settings.seed =
    recipe, ro, opt.max_new_tokens, opt.seed
end

local items
if opt.items ~= "" then
  if not task.from_ids then sl.fail(("task %s generates text; --items is for scoring tasks"):format(task.name)) end
  items = {}
  for i, obj in ipairs(data.jsonl(opt.items)) do
    local item = task.from_ids(obj, ("%s:%d"):format(opt.items, i))
    if item.id == "nil" then item.id = tostring(i - 1) end -- no id: the line number (0-based)
    item.index = item.index or i - 1
    items[i] = item
  end
  settings.items = opt.items
else
  local path = opt.data
  if path == "" then
    path = data.root .. "/" .. (task.name == "mgsm" and task.data_for(opt.lang) or task.data)
  end
  items = task.load(path)
  settings.data = path:match("[^/]+$")
  if task.name == "mgsm" then settings.lang = opt.lang end
end
local seen = {}
for _, item in ipairs(items) do
  if seen[item.id] then sl.fail(("item id '%s' appears twice"):format(item.id)) end
  seen[item.id] = true
end
if opt.limit > 0 then
  local limited = {}
  for i = 1, math.min(opt.limit, #items) do limited[i] = items[i] end
  items = limited
end

local summary = sl.try(runner.run, {
  task = task, model = model, items = items, setting = setting, settings = settings,
  output = opt.output ~= "" and opt.output or nil, shard = shard, progress = opt.progress, pause = opt.pause,
})
io.write(sl.json.encode(summary), "\n")
