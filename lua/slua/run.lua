-- slua.run: the generation loop every recipe shares, so a recipe only says what is new about
-- its method (how scores are made, which processors run).
--
--   sl.generate{ recipe = "greedy", opt = opt,
--                session = {layers = ...},            -- options for model:session (optional)
--                amateurs = function(ctx) ... end,    -- extra sessions stepped in lockstep (optional)
--                scores = function(ctx) return scores, info end,  -- default: the final logits
--                chain = sl.chain{...},               -- default: processors from the options
--                sample = bool }                      -- default: opt.do_sample
--
-- ctx (also what processors receive): model, tokenizer, opt, session (the main session),
-- amateurs, out (this step's Output), amateur_outs, prompt_len, step (tokens generated so far),
-- max_new_tokens, generated (ids so far), rng.
--
-- Text mode streams the continuation as it is generated; JSON mode prints one object:
-- {model, recipe, options, prompt_ids, new_ids, text, stop_reason, steps = [{id, top, ...info}]}
-- where `top` holds the 8 best processed scores the choice was made from.
local core = require "slua.core"

local run = {}

-- Options every generation recipe accepts (merged under the recipe's own).
run.common = {
  model = "",               -- model directory; "" = the bundled stories260K
  prompt = "Once upon a time",
  prompt_ids = "",          -- comma-separated ids, used as-is (no BOS added)
  max_new_tokens = 64,
  seed = 42,
  threads = 0,              -- 0 = all CPUs
  format = "text",          -- text | json
  stop = "",                -- stop string(s), separated by "|"
}
for k, v in pairs(require("slua.chat_options").common) do run.common[k] = v end  -- --chat, --messages, ...

function run.options(argv, own)
  local sl = require "slua"
  local defaults = {}
  for k, v in pairs(run.common) do defaults[k] = v end
  for k, v in pairs(own or {}) do defaults[k] = v end
  local chat_options = require "slua.chat_options"
  local eos = chat_options.apply_generation_config(argv, defaults)  -- HF: the file's values, then flags
  local opt = sl.options(argv, defaults)
  chat_options.check(opt)
  opt.eos_token_id = eos
  if opt.format ~= "text" and opt.format ~= "json" then
    sl.fail(("option --format must be text or json (got '%s')"):format(opt.format))
  end
  if opt.max_new_tokens < 0 then sl.fail("option --max-new-tokens must be >= 0") end
  return opt
end

-- The prompt as ids: --prompt-ids as given, else the tokenizer's encoding of --prompt with its
-- special tokens (BOS) as the tokenizer adds them.
function run.prompt_ids(model, opt)
  local sl = require "slua"
  if opt.prompt_ids and opt.prompt_ids ~= "" then
    local ids = sl.parse_ints(opt.prompt_ids, "prompt-ids")
    for _, id in ipairs(ids) do
      if id < 0 or id >= model.n_vocab then
        sl.fail(("option --prompt-ids: id %d out of range [0, %d]"):format(id, model.n_vocab - 1))
      end
    end
    return ids
  end
  if require("slua.chat_options").wants_chat(opt) then return require("slua.chat_options").prompt_ids(model, opt) end
  local tok = model.tokenizer
  if not tok then sl.fail(model.path .. ": no tokenizer.json (use --prompt-ids)") end
  local ids = tok:encode(opt.prompt, { special = true })
  if #ids == 0 then sl.fail("option --prompt: encodes to no tokens") end
  return ids
end

local function split_stops(text)
  local out = {}
  for s in (text or ""):gmatch("[^|]+") do out[#out + 1] = s end
  return out
end

-- In-process runs (run.invoke): the model to use and the results collected instead of printed.
local host = nil

local function emit(opt, s)
  if not host and opt.format == "text" and s ~= "" then
    io.write(s)
    io.flush()
  end
end

function run.generate(spec)
  local sl = require "slua"
  local opt = spec.opt
  sl.set_threads(opt.threads)
  local model = spec.model or (host and host.model)
    or sl.check(sl.load(opt.model ~= "" and opt.model or nil))
  local tok = model.tokenizer
  local session_opts = type(spec.session) == "function" and spec.session(model, opt) or spec.session
  local ctx = {
    model = model, tokenizer = tok, opt = opt, prompt_len = 0, step = 0,
    max_new_tokens = opt.max_new_tokens, generated = {}, rng = sl.rng(opt.seed),
  }
  ctx.session = model:session(session_opts)
  ctx.amateurs = spec.amateurs and spec.amateurs(ctx) or {}
  local chain = spec.chain or sl.chain(sl.processors.standard(opt))
  local sample = spec.sample
  if sample == nil then sample = opt.do_sample end
  local scores_of = spec.scores or function(c) return c.out.logits end
  local stops = split_stops(opt.stop)
  local eos = {}
  for _, id in ipairs(model.eos) do eos[id] = true end

  local prompt = run.prompt_ids(model, opt)
  ctx.prompt_len = #prompt
  local stream = tok and tok:stream{ skip_special = true }
  if opt.format == "text" then
    emit(opt, tok and tok:decode(prompt, { skip_special = true }) or table.concat(prompt, " "))
  end

  local steps, text, stop_reason = {}, {}, "max_new_tokens"
  local max_pos = model.config.max_position
  if opt.max_new_tokens > 0 then
    ctx.out = ctx.session:prefill(prompt)
    ctx.amateur_outs = {}
    for i, a in ipairs(ctx.amateurs) do ctx.amateur_outs[i] = a:prefill(prompt) end
  end
  for step = 0, opt.max_new_tokens - 1 do
    ctx.step = step
    local scores, info = scores_of(ctx)
    scores = chain(ctx, scores) or scores
    local id = sample and scores:sample(ctx.rng) or scores:argmax()
    local record = info or {}
    record.id, record.top = id, scores:top(8)
    steps[#steps + 1] = record
    ctx.generated[#ctx.generated + 1] = id
    local piece = stream and stream:put(id) or (" " .. id)
    text[#text + 1] = piece
    emit(opt, piece)
    if eos[id] then stop_reason = "eos"; break end
    if #stops > 0 then
      local so_far = table.concat(text)
      local hit = false
      for _, s in ipairs(stops) do
        if so_far:find(s, math.max(1, #so_far - #piece - #s + 1), true) then hit = true end
      end
      if hit then stop_reason = "stop_string"; break end
    end
    if step == opt.max_new_tokens - 1 then break end
    if ctx.session:pos() >= max_pos then stop_reason = "context_full"; break end
    ctx.out = ctx.session:step(id)
    for i, a in ipairs(ctx.amateurs) do ctx.amateur_outs[i] = a:step(id) end
  end
  if stream then emit(opt, stream:finish()) end

  local result = {
    model = model.path, recipe = spec.recipe, options = opt, prompt_ids = prompt,
    new_ids = ctx.generated, stop_reason = stop_reason, steps = steps,
    text = tok and tok:decode(ctx.generated, { skip_special = true }) or "",
  }
  for k, v in pairs(spec.extra or {}) do result[k] = v end
  if host then
    host.results[#host.results + 1] = result
  elseif opt.format == "json" then
    io.write(core.json_encode(result), "\n")
  else
    io.write("\n")
  end
  return result, ctx
end

-- A recipe's path: a file path as given, else recipes/<name>.lua under the slua root.
function run.recipe_path(recipe)
  if recipe:find("/", 1, true) then return recipe end
  local sl = require "slua"
  return ("%s/recipes/%s%s"):format(sl.root, recipe, recipe:match("%.lua$") and "" or ".lua")
end

-- {max_new_tokens = 8, dola_layers = "high"} -> {"--dola-layers", "high", "--max-new-tokens", "8"}
-- (sorted by name, so the same options always give the same flags).
function run.argv(options)
  local keys = {}
  for k in pairs(options) do keys[#keys + 1] = k end
  table.sort(keys)
  local argv = {}
  for _, k in ipairs(keys) do
    argv[#argv + 1] = "--" .. k:gsub("_", "-")
    argv[#argv + 1] = tostring(options[k])
  end
  return argv
end

-- run.invoke(recipe, argv, {model = m}) -> results
-- Runs a recipe script in this process with the given flags (a list, or an options table for
-- run.argv) against an already loaded model (opts.model; else the recipe loads its own), and
-- returns the result of every generation it made — the tables JSON mode prints — instead of
-- printing them. Errors propagate to the caller. Invocations nest.
function run.invoke(recipe, argv, opts)
  local path = run.recipe_path(recipe)
  local chunk, err = loadfile(path)
  if not chunk then require("slua").fail(err) end
  if #argv == 0 and next(argv) ~= nil then argv = run.argv(argv) end
  local recipe_arg = { [0] = path }
  for i, v in ipairs(argv) do recipe_arg[i] = v end
  local saved_arg, saved_host = _G.arg, host
  local mine = { model = opts and opts.model, results = {} }
  _G.arg, host = recipe_arg, mine
  local ok, e = pcall(chunk, table.unpack(recipe_arg))
  _G.arg, host = saved_arg, saved_host
  if not ok then error(e, 0) end
  return mine.results
end

return run
