-- slua.eval.setting: one evaluation setting from options, shared by `slua eval` and sweeps, so
-- a sweep point and the CLI with the same options evaluate exactly the same way.
--
--   local setting, settings = evs.build(task, model, opts)
--   local items, extra = evs.items(task, { data = PATH | items = FILE, limit = N, lang = "zh" })
--
-- opts (nil or "" = the default; numbers and booleans may be given as text, as flags give them):
--   early_exit_layers  "-1" | "a,b" | "a,b,...,N" or a list      (default -1, the baseline)
--   scoring tasks:     relative_top, relative_top_value, post_softmax (task defaults), prefix_cache, details,
--                      batched_score (true: a prompt's answers in shared passes; same results, not hashed)
--   both:              intervene (a JSON spec of activation interventions, slua.intervene)
--   generating tasks:  recipe (greedy for the baseline, else dola), recipe_options (table or JSON),
--                      repetition_penalty, max_new_tokens (256), seed (42), lang, n_ctx, prefix_cache
-- `setting` is what task.evaluate receives; `settings` is everything that decides the results
-- (hashed by the eval runner). Bad values fail as "option --<name>: ...".
local sl = require "slua.util"
local ev = require "slua.eval"
local data = require "slua.eval.data"
local intervene = require "slua.intervene"

local evs = {}

-- Option names each kind of task accepts (the sweep checks its keys against these).
evs.keys = {
  score = { early_exit_layers = true, relative_top = true, relative_top_value = true, post_softmax = true,
            prefix_cache = true, details = true, intervene = true, batched_score = true },
  generate = { early_exit_layers = true, recipe = true, recipe_options = true, repetition_penalty = true,
               max_new_tokens = true, seed = true, n_ctx = true, prefix_cache = true, details = true,
               intervene = true },
}

local function given(v) return v ~= nil and v ~= "" end

local function number_or(v, default, name)
  if not given(v) then return default end
  return tonumber(v) or sl.fail(("option --%s expects a number (got '%s')"):format(name, tostring(v)), 2)
end

local function integer_or(v, default, name)
  local n = number_or(v, default, name)
  return math.tointeger(n) or sl.fail(("option --%s expects an integer (got '%s')"):format(name, tostring(v)), 2)
end

local function boolean_or(v, default, name)
  if not given(v) then return default end
  if v == true or v == "true" then return true end
  if v == false or v == "false" then return false end
  sl.fail(("option --%s expects true or false (got '%s')"):format(name, tostring(v)), 2)
end

-- "-1" | "a,b" | {a, b} -> list of layers, checked against the model's N.
function evs.layers(v, n_layer)
  local layers
  if type(v) == "table" then
    layers = {}
    for i, l in ipairs(v) do
      layers[i] = math.tointeger(l) or sl.fail(("option --early-exit-layers: '%s' is not a layer"):format(tostring(l)), 2)
    end
  else
    layers = sl.parse_ints(given(v) and tostring(v) or "-1", "early-exit-layers")
  end
  if #layers == 0 then sl.fail("option --early-exit-layers: give -1, a,b or a,b,...,N", 2) end
  if #layers == 1 then
    -- one entry is the baseline: -1, or the final layer written out
    if layers[1] ~= -1 and layers[1] ~= n_layer then
      sl.fail(("option --early-exit-layers: one entry is the baseline, -1 or %d (got %d; layers are 0..%d, "
        .. "premature,mature for DoLa)"):format(n_layer, layers[1], n_layer), 2)
    end
    return { -1 }
  end
  for _, l in ipairs(layers) do
    if l < 0 or l > n_layer then
      sl.fail(("option --early-exit-layers: layer %d out of range [0, %d]"):format(l, n_layer), 2)
    end
  end
  local mature = layers[#layers]
  for i = 1, #layers - 1 do
    if layers[i] >= mature then
      sl.fail(("option --early-exit-layers: premature layer %d is not below the mature layer %d (the last "
        .. "entry; premature layers are 0..%d)"):format(layers[i], mature, mature - 1), 2)
    end
  end
  return layers
end

function evs.build(task, model, opts)
  local N = model.n_layer
  local layers = evs.layers(opts.early_exit_layers, N)
  local mode = ev.layers_setting(layers)
  local settings = { task = task.name, model = model.path, early_exit_layers = #layers >= 2 and layers or { -1 },
                     mode = mode.mode }
  local setting = { details = boolean_or(opts.details, false, "details") }
  for k, v in pairs(mode) do setting[k] = v end
  -- an intervention spec (--intervene FILE): checked now, hashed by its content
  if given(opts.intervene) then
    setting.intervention, setting.intervene = intervene.load(model, opts.intervene), opts.intervene
    settings.intervene = intervene.identity(opts.intervene)
  end
  local prefix_cache = boolean_or(opts.prefix_cache, true, "prefix-cache")

  if task.kind == "score" then
    local defaults = task.settings or {}
    setting.relative_top = number_or(opts.relative_top, defaults.relative_top, "relative-top")
    setting.relative_top_value = number_or(opts.relative_top_value, defaults.relative_top_value, "relative-top-value")
    setting.post_softmax = boolean_or(opts.post_softmax, defaults.post_softmax, "post-softmax")
    if setting.relative_top and setting.relative_top < 0 then sl.fail("option --relative-top must be >= 0", 2) end
    setting.prefix_cache = prefix_cache
    setting.batched_score = boolean_or(opts.batched_score, true, "batched-score")
    settings.relative_top, settings.relative_top_value, settings.post_softmax =
      setting.relative_top, setting.relative_top_value, setting.post_softmax
    return setting, settings
  end

  local recipe = given(opts.recipe) and opts.recipe or (mode.mode == "baseline" and "greedy" or "dola")
  local ro = {}
  if type(opts.recipe_options) == "table" then
    for k, v in pairs(opts.recipe_options) do ro[k] = v end
  elseif given(opts.recipe_options) then
    local v, err = sl.json.decode(opts.recipe_options)
    if type(v) ~= "table" then sl.fail("option --recipe-options: " .. (err or "not a JSON object"), 2) end
    ro = v
  end
  if recipe == "greedy" or recipe == "dola" then
    if ro.repetition_penalty == nil then
      ro.repetition_penalty = number_or(opts.repetition_penalty, mode.mode == "baseline" and 1.0 or 1.2,
        "repetition-penalty")
    end
  elseif given(opts.repetition_penalty) then
    ro.repetition_penalty = number_or(opts.repetition_penalty, 1.0, "repetition-penalty")
  end
  if recipe == "dola" and mode.mode ~= "baseline" and ro.dola_layers == nil then
    ro.dola_layers = table.concat(mode.candidate_layers or { mode.premature_layer }, ",")
    if mode.mature_layer ~= N then ro.mature_layer = mode.mature_layer end
    ro.relative_top = ro.relative_top or 0.1
  end
  local n_ctx = integer_or(opts.n_ctx, 0, "n-ctx")
  if n_ctx < 0 then sl.fail("option --n-ctx must be >= 0", 2) end
  if n_ctx > 0 then ro.n_ctx = n_ctx end
  local max_new_tokens = integer_or(opts.max_new_tokens, 256, "max-new-tokens")
  if max_new_tokens < 0 then sl.fail("option --max-new-tokens must be >= 0", 2) end
  local seed = integer_or(opts.seed, 42, "seed")
  setting.recipe, setting.recipe_options = recipe, ro
  setting.max_new_tokens, setting.seed, setting.lang = max_new_tokens, seed, given(opts.lang) and opts.lang or "zh"
  setting.prefix_cache = prefix_cache
  settings.recipe, settings.recipe_options, settings.max_new_tokens, settings.seed =
    recipe, ro, max_new_tokens, seed
  return setting, settings
end

-- The task's items: pre-tokenised (opts.items, scoring tasks), else its data file (opts.data,
-- default the copy under data/); the first opts.limit of them when limit > 0; ids unique.
-- Returns the items and the settings they add (items | data, lang).
function evs.items(task, opts)
  local items, extra = nil, {}
  if given(opts.data) and given(opts.items) then sl.fail("give --data or --items, not both", 2) end
  if given(opts.items) then
    if not task.from_ids then sl.fail(("task %s generates text; --items is for scoring tasks"):format(task.name), 2) end
    items = {}
    for i, obj in ipairs(data.jsonl(opts.items)) do
      local item = task.from_ids(obj, ("%s:%d"):format(opts.items, i))
      if item.id == "nil" then item.id = tostring(i - 1) end -- no id: the line number (0-based)
      item.index = item.index or i - 1
      items[i] = item
    end
    extra.items = opts.items
  else
    local path = opts.data
    if not given(path) then
      local lang = given(opts.lang) and opts.lang or "zh"
      if task.languages then
        local known = false
        for _, l in ipairs(task.languages) do known = known or l == lang end
        if not known then
          sl.fail(("option --lang: task %s has no language '%s' (languages: %s)"):format(task.name, lang,
            table.concat(task.languages, ", ")), 2)
        end
      end
      local rel = task.data_for and task.data_for(lang) or task.data
      path = rel and data.root .. "/" .. rel   -- a task of its own may bring its items itself
    end
    items = task.load(path)
    extra.data = path and path:match("[^/]+$")
    if task.data_for then extra.lang = given(opts.lang) and opts.lang or "zh" end
  end
  local seen = {}
  for _, item in ipairs(items) do
    if seen[item.id] then sl.fail(("item id '%s' appears twice"):format(item.id)) end
    seen[item.id] = true
  end
  local limit = integer_or(opts.limit, 0, "limit")
  if limit < 0 then sl.fail("option --limit must be >= 0", 2) end
  if limit > 0 then
    local limited = {}
    for i = 1, math.min(limit, #items) do limited[i] = items[i] end
    items = limited
  end
  return items, extra
end

return evs
