-- slua.view: a run as one self-contained HTML page (slua.view.html) — the logit-lens grid over
-- the prompt and the generated tokens (both lenses, top-k with probabilities, entropy, a target
-- token's rank), DoLa's premature layer and JS divergences per step, SkipLayerCD's span and
-- entropies per step. The numbers come from C (out:lens_view); this module only walks the
-- tokens and gathers them.
--
--   view.options                      -- the options a recipe with --html declares
--   view.data(model, ids, opts)       -- the page's data: opts {prompt_len, top, target, target_id,
--                                     --   wrap, title, recipe, result}
--   view.write(path, data)            -- writes the HTML file
--   view.after(result, ctx)           -- a recipe's `after` hook: --html FILE writes the page
local sl = require "slua.util"
local intervene = require "slua.intervene"
local html = require "slua.view.html"

local V = {}

V.options = {
  html = { default = "", type = "string", help = "write an interactive HTML view of the run to this file" },
  target = { default = "", type = "string", help = "HTML view: the rank and probability of this string's first token in every cell" },
  target_id = { default = -1, min = -1, help = "HTML view: the same for a token id (-1 = none)" },
  view_top = { default = 5, min = 1, max = 50, help = "HTML view: tokens listed per cell" },
  wrap = { default = 16, min = 4, max = 4096, help = "HTML view and SVG: positions per row" },
}

-- The options of a recipe with an HTML view: its own, then these (its own win).
function V.with_options(own)
  local out = {}
  for k, v in pairs(V.options) do out[k] = v end
  for k, v in pairs(own or {}) do out[k] = v end
  return out
end

-- Rounded so that the page stays small: probabilities and entropies keep 8 significant digits
-- (errors far below 1e-6).
local function round(v)
  if v == nil or v ~= v then return nil end
  return tonumber(("%.8g"):format(v))
end

-- The target token: --target-id, else the first token of --target's encoding (no BOS).
function V.target(model, opts)
  if opts.target_id and opts.target_id >= 0 then
    if opts.target_id >= model.n_vocab then
      sl.option_error("target_id", ("an id in [0, %d]"):format(model.n_vocab - 1), opts.target_id)
    end
    local tok = model.tokenizer
    return { id = opts.target_id, text = tok and tok:decode({ opts.target_id }) or tostring(opts.target_id), tokens = 1 }
  end
  if opts.target and opts.target ~= "" then
    local tok = model.tokenizer or sl.fail(model.path .. ": no tokenizer.json (use --target-id)")
    local ids = tok:encode(opts.target, { special = false })
    -- a SentencePiece encoding may open with a bare word-boundary piece ("▁"): the target is the
    -- first piece with text of its own
    local first = 1
    while first < #ids and tok:decode({ ids[first] }):match("^%s*$") do first = first + 1 end
    if #ids == 0 then sl.option_error("target", "a string that encodes to at least one token", opts.target) end
    return { id = ids[first], text = tok:decode({ ids[first] }), string = opts.target, tokens = #ids - first + 1 }
  end
  return nil
end

local function lens_cell(c, used)
  if not c then return nil end
  local p = {}
  for i, v in ipairs(c.p) do p[i] = round(v) end
  for _, id in ipairs(c.ids) do used[id] = true end
  return { i = c.ids, p = p, h = round(c.entropy), r = c.rank, t = round(c.target_p) }
end

-- The DoLa strip of a result: one entry per step, at the position whose logits it used.
local function dola_steps(result)
  if type(result) ~= "table" or type(result.steps) ~= "table" then return nil end
  local out, any = {}, false
  for i, s in ipairs(result.steps) do
    if s.premature_layer ~= nil then
      any = true
      local js = {}
      if type(s.js_divs) == "table" then for k, v in ipairs(s.js_divs) do js[k] = round(v) end end
      out[i] = { layer = s.premature_layer, candidates = s.candidate_layers, js = js,
                 kept = type(s.relative_top_kept) == "number" and s.relative_top_kept or nil }
    end
  end
  return any and out or nil
end

-- The SkipLayerCD strip: the span, where it came from, the SL-D entropy profile and per step the
-- expert's and the amateur's entropies and the plausible tokens kept.
local function skip_info(result)
  if type(result) ~= "table" or type(result.skip_span) ~= "table" then return nil end
  local steps = {}
  for i, s in ipairs(result.steps or {}) do
    steps[i] = { expert = round(s.expert_entropy), amateur = round(s.amateur_entropy), kept = s.n_kept }
  end
  local profile
  if type(result.entropy_profile) == "table" then
    profile = {}
    for i, v in ipairs(result.entropy_profile) do profile[i] = round(v) end
  end
  return { span = result.skip_span, source = result.span_source, profile = profile, steps = steps }
end

-- V.data(model, ids, opts) -> the page's data. Walks ids one position at a time with every
-- layer's raw and normed logits (the logit lens at position t predicts token t + 1).
function V.data(model, ids, opts)
  opts = opts or {}
  local k = opts.top or 5
  local target = V.target(model, opts)
  local layers = {}
  for l = 0, model.n_layer do layers[#layers + 1] = l end
  local s <close> = model:session{ layers = layers, raw = true, norm = true, hidden = false,
                                   intervene = opts.intervention }
  s:set_prompt_length(opts.prompt_len or #ids) -- "prompt" / "generated" ops as in the run
  local used, cells = {}, {}
  for t, id in ipairs(ids) do
    local out = t == 1 and s:prefill{ id } or s:step(id)
    local view = out:lens_view(layers, { top = k, target = target and target.id or nil })
    local column = {}
    for i, c in ipairs(view) do
      column[i] = { n = lens_cell(c.norm, used), r = lens_cell(c.raw, used), d = round(c.divergence) }
    end
    cells[t] = column
  end
  local tok = model.tokenizer
  local function text(id) return tok and tok:decode({ id }) or tostring(id) end
  local tokens = {}
  for t, id in ipairs(ids) do tokens[t] = { id = id, text = text(id) } end
  local vocab = {}
  for id in pairs(used) do vocab[tostring(id)] = text(id) end
  return {
    title = opts.title or ("slua view: " .. model.path:match("[^/]*$")), model = model.path, recipe = opts.recipe,
    layers = layers, k = k, wrap = opts.wrap or 16, prompt_len = opts.prompt_len or #ids,
    tokens = tokens, vocab = vocab, target = target, cells = cells,
    dola = dola_steps(opts.result), skip = skip_info(opts.result),
    interventions = opts.intervention and opts.intervention:hooks() or nil,
  }
end

function V.write(path, data)
  local f = io.open(path, "wb") or sl.fail(("option --html: cannot write %s"):format(path))
  f:write(html.page(data))
  f:close()
end

-- The ids a result covers: its prompt and the generated tokens.
function V.ids_of(result)
  local ids = {}
  for _, id in ipairs(result.prompt_ids or {}) do ids[#ids + 1] = id end
  local prompt_len = #ids
  for _, id in ipairs(result.new_ids or {}) do ids[#ids + 1] = id end
  return ids, prompt_len
end

-- A recipe's `after` hook: with --html FILE, the page of this run.
function V.after(result, ctx)
  local opt = ctx.opt
  if not opt.html or opt.html == "" then return end
  local ids, prompt_len = V.ids_of(result)
  V.write(opt.html, V.data(ctx.model, ids, {
    prompt_len = prompt_len, top = opt.view_top, target = opt.target, target_id = opt.target_id, wrap = opt.wrap,
    recipe = ctx.recipe and ctx.recipe.name, result = result, intervention = intervene.of_run(ctx),
    title = ("%s: %s"):format(ctx.recipe and ctx.recipe.name or "slua", ctx.model.path:match("[^/]*$")),
  }))
end

return V
