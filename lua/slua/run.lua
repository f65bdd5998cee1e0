-- slua.run: the generation loop every recipe shares, so a recipe only says what is new about
-- its method (how scores are made, which processors run).
--
--   sl.generate{ recipe = "greedy", opt = opt,
--                session = {layers = ...},            -- options for model:session (optional)
--                amateurs = function(ctx) ... end,    -- extra sessions stepped in lockstep (optional)
--                scores = function(ctx) return scores, info end,  -- default: the final logits
--                chain = sl.chain{...},               -- default: processors from the options
--                                                     -- (or function(model, opt) returning one)
--                sample = bool,                       -- default: opt.do_sample
--                eos = {ids} or function(model) }     -- default: the model's EOS ids
--
-- ctx (also what processors receive): model, tokenizer, opt, session (the main session),
-- amateurs, out (this step's Output), amateur_outs, prompt_len, step (tokens generated so far),
-- max_new_tokens, generated (ids so far), rng.
--
-- Text mode streams the continuation as it is generated; JSON mode prints one object:
-- {model, recipe, options, prompt_ids, new_ids, text, stop_reason, steps = [{id, top, ...info}]}
-- where `top` holds the 8 best processed scores the choice was made from, among the tokens
-- still candidates (masked ones are left out; a NaN is written as null). Each step checks the final logits (finite) and what the scores function and the
-- processors return (a slua.Logits of the vocabulary's length). Ctrl-C still prints the
-- result, with stop_reason "interrupted".
local core = require "slua.core"
local batch = require "slua.batch"

local run = {}

-- Options every recipe that reads a prompt accepts, and those a generation recipe adds; their
-- rules are in slua.options.
run.input = {
  model = "",               -- model directory; "" = the bundled stories260K
  prompt = "Once upon a time",
  prompt_ids = "",          -- comma-separated ids, used as-is (no BOS added)
  truncate_prompt = false,  -- keep the end of a prompt that does not fit the context
  threads = 0,              -- 0 = all CPUs
  weights = "stored",       -- stored | q8_0 (lossy, not HF-exact)
  mmap = false,             -- map the checkpoint instead of reading it into memory
  format = "text",          -- text | json
}
run.common = {
  max_new_tokens = 64,
  seed = 42,
  stop = "",                -- stop string(s), separated by "|"
  n_ctx = 0,                -- context length; 0 = max_position_embeddings (RoPE runs past it)
  kv_type = "f32",          -- KV cache storage: f32 | f16 (lossy)
}
for k, v in pairs(require("slua.chat_options").common) do run.input[k] = v end  -- --chat, --messages, ...
for k, v in pairs(run.input) do run.common[k] = v end

-- In-process runs (run.invoke): the model to use and the results collected instead of printed,
-- per coroutine, so that the jobs slua.batch runs side by side each have their own.
local hosts = setmetatable({}, { __mode = "k" })
local function current_host() return hosts[coroutine.running()] end

-- A coroutine started on behalf of the running code (slua.batch) runs under its host.
function run.inherit_host(co) hosts[co] = current_host() end

-- sl.run_options(arg, own [, "input"]): the options of a recipe, its own merged over the common
-- ones of a generation recipe (or, with "input", of a recipe that only reads a prompt).
function run.options(argv, own, kind)
  local sl = require "slua"
  local declared = {}
  for k, v in pairs(kind == "input" and run.input or run.common) do declared[k] = v end
  for k, v in pairs(own or {}) do declared[k] = v end
  local chat_options = require "slua.chat_options"
  chat_options.apply_generation_config(argv, declared)  -- HF: the file's values, then flags
  local opt = sl.options(argv, declared)
  chat_options.check(opt)
  local host = current_host()
  if host and host.probe then error(setmetatable({ options = opt }, host.probe), 0) end
  return opt
end

-- The prompt as ids: --prompt-ids as given, else the tokenizer's encoding of --prompt with its
-- special tokens (BOS) as the tokenizer adds them. A prompt longer than the model's context is
-- a usage error unless --truncate-prompt, which drops tokens from the start (as HF's
-- truncation_side = "left") so that the prompt and --max-new-tokens fit, keeping at least half
-- the context for the prompt.
function run.prompt_ids(model, opt)
  local sl = require "slua"
  local ids, what
  if opt.prompt_ids and opt.prompt_ids ~= "" then
    ids, what = sl.parse_ids(opt.prompt_ids, "prompt_ids"), "prompt-ids"
    for _, id in ipairs(ids) do
      if id >= model.n_vocab then
        sl.fail(("option --prompt-ids: id %d out of range [0, %d]"):format(id, model.n_vocab - 1), 2)
      end
    end
  elseif require("slua.chat_options").wants_chat(opt) then
    ids, what = require("slua.chat_options").prompt_ids(model, opt), "chat"
  else
    local tok = model.tokenizer
    if not tok then sl.fail(model.path .. ": no tokenizer.json (use --prompt-ids)") end
    ids, what = tok:encode(opt.prompt, { special = true }), "prompt"
    if #ids == 0 then sl.fail("option --prompt: encodes to no tokens", 2) end
  end
  local context = (opt.n_ctx or 0) > 0 and opt.n_ctx or model.config.max_position
  local keep = context - math.min(opt.max_new_tokens or 0, context // 2)
  if #ids > context and not opt.truncate_prompt then
    sl.fail(("option --%s: %d tokens do not fit the model's context of %d (--truncate-prompt keeps the last %d)")
      :format(what, #ids, context, keep), 2)
  end
  if opt.truncate_prompt and #ids > keep then
    io.stderr:write(("slua: prompt truncated to its last %d of %d tokens\n"):format(keep, #ids))
    ids = table.move(ids, #ids - keep + 1, #ids, 1, {})
  end
  return ids
end

local function split_stops(text)
  local out = {}
  for s in (text or ""):gmatch("[^|]+") do out[#out + 1] = s end
  return out
end

local function emit(opt, s)
  if not current_host() and opt.format == "text" and s ~= "" then
    io.write(s)
    io.flush()
  end
end

-- HF's text of new tokens: decode(prompt + new)[len(decode(prompt)):], so that the first new
-- token keeps the space a SentencePiece decoder strips only at the start of a text.
function run.continuation_text(tok, prompt, new)
  if not tok then return "" end
  local all = table.move(new, 1, #new, #prompt + 1, table.move(prompt, 1, #prompt, 1, {}))
  local head = tok:decode(prompt, { skip_special = true })
  local full = tok:decode(all, { skip_special = true })
  if full:sub(1, #head) == head then return full:sub(#head + 1) end
  local chars = utf8.len(head)
  local at = chars and utf8.len(full) and utf8.offset(full, chars + 1)
  return full:sub(at or #head + 1)
end

-- Final logits that are NaN or infinite come from the model (bad weights, overflow), not from
-- the method: stop at the step where they appear, naming the model.
function run.check_finite(logits, path, step)
  local nan, pos, neg = logits:nonfinite()
  if nan + pos + neg == 0 then return end
  local parts = {}
  if nan > 0 then parts[#parts + 1] = ("NaN in %d"):format(nan) end
  if pos > 0 then parts[#parts + 1] = ("+inf in %d"):format(pos) end
  if neg > 0 then parts[#parts + 1] = ("-inf in %d"):format(neg) end
  require("slua").fail(("%s: logits are not finite at step %d (%s of %d entries)")
    :format(path, step, table.concat(parts, ", "), #logits))
end

-- The host raises the plain string "interrupted" on Ctrl-C (sl.try keeps it as a message).
local function is_interrupt(err)
  return (type(err) == "table" and err.message or err) == "interrupted"
end

-- The model of a run: the one an in-process caller (run.invoke) gave, else --model's (or the
-- bundled one), with --threads applied.
function run.model(opt)
  local sl = require "slua"
  sl.set_threads(opt.threads)
  local host = current_host()
  return host and host.model
    or sl.check(sl.load(opt.model ~= "" and opt.model or nil, { weights = opt.weights, mmap = opt.mmap }))
end

-- Hands over the result of a run: to the in-process caller (run.invoke), else as one JSON
-- object, else through write_text(result) in text mode.
function run.emit_result(result, opt, write_text)
  local host = current_host()
  if host then
    host.results[#host.results + 1] = result
  elseif opt.format == "json" then
    io.write(core.json_encode(result), "\n")
  elseif write_text then
    write_text(result)
  end
  io.flush()
  return result
end

-- A to-be-closed guard over a run (local g <close> = run.guard(opt, finish, streamed)): Ctrl-C
-- (the host raises "interrupted") calls finish() so that what was generated is still handed
-- over, then the host exits with 130; another failure ends a streamed text line, so that its
-- message starts a line. g.finished = true once the run has handed its result over itself.
function run.guard(opt, finish, streamed)
  return setmetatable({ finished = false }, { __close = function(g, err)
    if err == nil or g.finished then return end
    if is_interrupt(err) then
      g.finished = true
      finish()
    elseif streamed and opt.format == "text" and not current_host() then
      io.write("\n")
      io.flush()
    end
  end })
end

function run.generate(spec)
  local sl = require "slua"
  local opt = spec.opt
  local model = spec.model or run.model(opt)
  local tok = model.tokenizer
  sl.check_options(opt, model)
  local session_opts = type(spec.session) == "function" and spec.session(model, opt) or spec.session
  local ctx = {
    model = model, tokenizer = tok, opt = opt, prompt_len = 0, step = 0,
    max_new_tokens = opt.max_new_tokens, generated = {}, rng = sl.rng(opt.seed),
  }
  if opt.n_ctx > 0 or opt.kv_type ~= "f32" then
    local with_ctx = { n_ctx = opt.n_ctx, kv_type = opt.kv_type }
    for k, v in pairs(session_opts or {}) do with_ctx[k] = v end
    session_opts = with_ctx
  end
  -- A host's prefix cache (run.invoke with opts.sessions): the main session of the previous
  -- generation with the same model and session options is continued from the longest prefix
  -- it shares with this prompt. Recipes with amateur sessions always start afresh. The pool's
  -- optional `siblings` are the pools of the other slots of a batch.
  local host = current_host()
  local pool, reused = host and host.sessions, nil
  local pool_key = pool and not spec.amateurs and (model.path .. core.json_encode(session_opts or {}))
  if pool_key and pool.key == pool_key and pool.model == model then reused = pool.session end
  -- A fresh pool of a batch slot (slua.batch) starts from a copy of a sibling slot's session,
  -- so that a prefix every prompt shares (a few-shot demo) is evaluated once, not per slot.
  if pool_key and not reused then
    for _, other in pairs(pool.siblings or {}) do
      if other ~= pool and other.key == pool_key and other.model == model and other.session then
        reused = other.session:clone()
        break
      end
    end
  end
  ctx.session = reused or model:session(session_opts)
  if pool_key then pool.key, pool.model, pool.session = pool_key, model, ctx.session end
  ctx.amateurs = spec.amateurs and spec.amateurs(ctx) or {}
  local chain = spec.chain
  if type(chain) == "function" then chain = chain(model, opt) end
  chain = chain or sl.chain(sl.processors.standard(opt))
  local sample = spec.sample
  if sample == nil then sample = opt.do_sample end
  local scores_of = spec.scores or function(c) return c.out.logits end
  local stops = split_stops(opt.stop)
  local eos = {}
  local eos_ids = spec.eos or model.eos
  if type(eos_ids) == "function" then eos_ids = eos_ids(model) end
  for _, id in ipairs(eos_ids) do eos[id] = true end

  local prompt = run.prompt_ids(model, opt)
  ctx.prompt_len = #prompt
  -- the stream starts with the prompt, so the first new token is decoded in its context
  local stream = tok and tok:stream{ skip_special = true }
  local prompt_text = {}
  for _, id in ipairs(prompt) do prompt_text[#prompt_text + 1] = stream and stream:put(id) or nil end
  emit(opt, stream and table.concat(prompt_text) or table.concat(prompt, " "))

  local steps, text, stop_reason = {}, {}, "max_new_tokens"
  local function result_of()
    local result = {
      model = model.path, recipe = spec.recipe, options = opt, prompt_ids = prompt,
      new_ids = ctx.generated, stop_reason = stop_reason, steps = steps,
      text = run.continuation_text(tok, prompt, ctx.generated),
    }
    for k, v in pairs(spec.extra or {}) do result[k] = v end
    return result
  end
  local function finish()
    if stream then emit(opt, stream:finish()) end
    return run.emit_result(result_of(), opt, function() io.write("\n") end)
  end
  local guard <close> = run.guard(opt, function() stop_reason = "interrupted"; finish() end, true)

  -- The main session and the amateurs in one pass (a fork joins at its branch), which under
  -- slua.batch is also the pass of the other running generations.
  local function eval_all(ids, amateur_ids)
    local requests = { { ctx.session, ids } }
    for i, a in ipairs(ctx.amateurs) do requests[i + 1] = { a, amateur_ids } end
    local outs = batch.eval(requests)
    ctx.out, ctx.amateur_outs = outs[1], table.move(outs, 2, #outs, 1, {})
  end

  local max_pos = opt.n_ctx > 0 and opt.n_ctx or model.config.max_position
  local n_vocab = model.n_vocab
  local who = ("the scores function of %s"):format(spec.recipe or "the recipe")
  if opt.max_new_tokens > 0 then
    local keep = 0
    if reused then
      local held = ctx.session:tokens()
      while keep < #prompt - 1 and held[keep + 1] == prompt[keep + 1] do keep = keep + 1 end
      ctx.session:rewind(keep)
    end
    eval_all(keep == 0 and prompt or table.move(prompt, keep + 1, #prompt, 1, {}), prompt)
  end
  for step = 0, opt.max_new_tokens - 1 do
    ctx.step = step
    run.check_finite(ctx.out.logits, model.path, step)
    for i, a in ipairs(ctx.amateur_outs) do run.check_finite(a.logits, "the amateur of " .. model.path, step) end
    local scores, info = scores_of(ctx)
    scores = sl.check_scores(scores, n_vocab, who)
    scores = chain(ctx, scores) or scores
    local id = sample and scores:sample(ctx.rng) or scores:argmax()
    if id < 0 then sl.fail(("%s: every processed score is NaN at step %d"):format(model.path, step)) end
    local record = info or {}
    -- tokens masked to -inf (a relative-top or top-k cut) were never candidates: left out
    local top = scores:top(8)
    for k = #top, 1, -1 do if top[k][2] == -math.huge then table.remove(top, k) end end
    record.id, record.top = id, top
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
    eval_all(id, id)
  end
  guard.finished = true
  local result = finish()
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

-- run.options_of(recipe, argv) -> the recipe's full option set for these flags, without running
-- it (the recipe stops in run.options); raises the recipe's clean failure on a bad flag.
local Probe = {}
function run.options_of(recipe, argv)
  local ok, e = pcall(run.invoke, recipe, argv, { probe = Probe })
  if not ok and getmetatable(e) == Probe then return e.options end
  if not ok then error(e, 0) end
  require("slua").fail(("recipe %s does not read its options through sl.run_options"):format(recipe))
end

-- run.invoke(recipe, argv, {model = m}) -> results
-- Runs a recipe script in this process with the given flags (a list, or an options table for
-- run.argv) against an already loaded model (opts.model; else the recipe loads its own), and
-- returns the result of every generation it made — the tables JSON mode prints — instead of
-- printing them. Errors propagate to the caller. Invocations nest. opts.sessions, a table the
-- caller keeps between invocations, is a prefix cache: the next generation continues the last
-- one's session from the prefix the two prompts share (same results, less prefill).
function run.invoke(recipe, argv, opts)
  local path = run.recipe_path(recipe)
  local chunk, err = loadfile(path)
  if not chunk then require("slua").fail(err) end
  if #argv == 0 and next(argv) ~= nil then argv = run.argv(argv) end
  local recipe_arg = { [0] = path }
  for i, v in ipairs(argv) do recipe_arg[i] = v end
  local co = coroutine.running()
  local saved_arg, saved_host = _G.arg, hosts[co]
  local mine = { model = opts and opts.model, probe = opts and opts.probe, sessions = opts and opts.sessions,
                 results = {} }
  _G.arg, hosts[co] = recipe_arg, mine
  local ok, e = pcall(chunk, table.unpack(recipe_arg))
  _G.arg, hosts[co] = saved_arg, saved_host
  if not ok then error(e, 0) end
  return mine.results
end

return run
