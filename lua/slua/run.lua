-- slua.run: the generation loop every recipe shares, so a recipe only says what is new about
-- its method (how scores are made, which processors run). It runs a recipe value
-- (slua.recipe) for one run context:
--
--   ctx = { recipe = R, opt = options, model = m | nil (loaded from --model),
--           sessions = prefix cache | nil, cli = true (print) | nil (return only), extra = {} }
--   run.execute(R, ctx) -> result (the table JSON mode prints)
--
-- The hooks of a recipe (see slua.recipe) all take ctx. Besides the fields above it carries
-- model, tokenizer, opt, session (the main session), amateurs, out (this step's Output),
-- amateur_outs, prompt_len, step (tokens generated so far), max_new_tokens, generated (ids so
-- far), rng and extra (fields a hook adds to the result, e.g. skip_span); processors get it too.
--
-- Text mode streams the continuation as it is generated; JSON mode prints one object:
-- {model, recipe, options, prompt_ids, new_ids, text, stop_reason, steps = [{id, top, logprob,
-- top_logprobs?, ...info}], timings}
-- where `top` holds the 8 best processed scores the choice was made from, among the tokens
-- still candidates (masked ones are left out; a NaN is written as null), `logprob` the chosen
-- token's raw log-probability (log_softmax of the final logits before any processor) and,
-- with --logprobs K, `top_logprobs` the K best raw ones as [id, logprob]. Each step checks the final logits (finite) and what the scores function and the
-- processors return (a slua.Logits of the vocabulary's length). Ctrl-C still prints the
-- result, with stop_reason "interrupted". Only a run with ctx.cli prints anything.
local core = require "slua.core"
local util = require "slua.util"
local options = require "slua.options"
local processors = require "slua.processors"
local batch = require "slua.batch"
local chat_options = require "slua.chat.options"
local intervene = require "slua.intervene"

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
  compute = "exact",        -- exact | bf16 (lossy, not HF-exact)
  mmap = false,             -- map the checkpoint instead of reading it into memory
  format = "text",          -- text | json
  intervene = "",           -- JSON spec of activation interventions (slua.intervene)
  stats = false,            -- text mode: timings on stderr after the output
}
run.common = {
  max_new_tokens = 64,
  seed = 42,
  stop = "",                -- stop string(s), separated by "|"
  n_ctx = 0,                -- context length; 0 = max_position_embeddings (RoPE runs past it)
  kv_type = "f32",          -- KV cache storage: f32 | f16 (lossy)
  logprobs = 0,             -- JSON steps: the top K raw log-probabilities beside `logprob`
}
for k, v in pairs(chat_options.common) do run.input[k] = v end  -- --chat, --messages, ...
for k, v in pairs(run.input) do run.common[k] = v end

-- The options a recipe declares: its own over the common ones of a generation recipe (or,
-- with kind "input", of a recipe that only reads a prompt).
function run.declared(own, kind)
  local declared = {}
  for k, v in pairs(kind == "input" and run.input or run.common) do declared[k] = v end
  for k, v in pairs(own or {}) do declared[k] = v end
  return declared
end

-- sl.run_options(argv, own [, "input"]): the parsed options of a recipe (argv[0] names it in
-- messages and --help), generation_config.json's values as defaults, then the flags.
function run.options(argv, own, kind)
  local declared = run.declared(own, kind)
  chat_options.apply_generation_config(argv, declared)  -- HF: the file's values, then flags
  local opt = options.parse(argv, declared)
  chat_options.check(opt)
  return opt
end

-- The prompt as ids: --prompt-ids as given, else the tokenizer's encoding of --prompt with its
-- special tokens (BOS) as the tokenizer adds them. A prompt longer than the model's context is
-- a usage error unless --truncate-prompt, which drops tokens from the start (as HF's
-- truncation_side = "left") so that the prompt and --max-new-tokens fit, keeping at least half
-- the context for the prompt.
function run.prompt_ids(model, opt)
  local ids, what
  if opt.prompt_ids and opt.prompt_ids ~= "" then
    ids, what = util.parse_ids(opt.prompt_ids, "prompt_ids"), "prompt-ids"
    for _, id in ipairs(ids) do
      if id >= model.n_vocab then
        util.fail(("option --prompt-ids: id %d out of range [0, %d]"):format(id, model.n_vocab - 1), 2)
      end
    end
  elseif chat_options.wants_chat(opt) then
    ids, what = chat_options.prompt_ids(model, opt), "chat"
  else
    local tok = model.tokenizer
    if not tok then util.fail(model.path .. ": no tokenizer.json (use --prompt-ids)") end
    ids, what = tok:encode(opt.prompt, { special = true }), "prompt"
    if #ids == 0 then util.fail("option --prompt: encodes to no tokens", 2) end
  end
  local context = (opt.n_ctx or 0) > 0 and opt.n_ctx or model.config.max_position
  local keep = context - math.min(opt.max_new_tokens or 0, context // 2)
  if #ids > context and not opt.truncate_prompt then
    util.fail(("option --%s: %d tokens do not fit the model's context of %d (--truncate-prompt keeps the last %d)")
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

local function emit(ctx, s)
  if ctx.cli and ctx.opt.format == "text" and s ~= "" then
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
  util.fail(("%s: logits are not finite at step %d (%s of %d entries)")
    :format(path, step, table.concat(parts, ", "), #logits))
end

-- The model of a run: the one the caller gave (ctx.model), else --model's (or the bundled
-- one), with --threads applied.
function run.model(ctx)
  local opt = ctx.opt
  util.set_threads(opt.threads)
  local t0 = core.clock()
  local load_options = util.load_options(opt)
  local model = ctx.model or util.check(util.load(opt.model ~= "" and opt.model or nil, load_options))
  ctx.timing = { load_ms = (core.clock() - t0) * 1000, start = core.clock() }
  return model
end

---------------------------------------------------------------------------- timings

-- A run's timings: loading the model (0 for one the caller gave), then prefill from the start
-- of the work until the prompt's logits are ready (run.mark_prefill), then decode until the
-- result is handed over (or run.mark_decode). A run that marks nothing counts all its work as
-- prefill of its prompt.
function run.mark_prefill(ctx, n_tokens)
  local t = ctx.timing
  if not t or t.prefill_end then return end
  t.prefill_end, t.prefill_tokens = core.clock(), n_tokens
end

function run.mark_decode(ctx, n_tokens)
  local t = ctx.timing
  if not t or t.decode_end then return end
  t.decode_end, t.decode_tokens = core.clock(), n_tokens
end

local function rate(tokens, ms) return ms > 0 and tokens / ms * 1000 or 0 end

-- The "timings" object of a result: {load_ms, prefill_ms, prefill_tokens, prefill_tok_s,
-- decode_ms, decode_tokens, decode_tok_s}; tok_s = tokens / ms * 1000 (0 when ms is 0).
function run.timings(ctx, result)
  local t = ctx.timing or { load_ms = 0, start = core.clock() }
  local now = core.clock()
  local prefill_end = t.prefill_end or t.decode_end or now
  local decode_end = t.decode_end or now
  local prefill_tokens = t.prefill_tokens or (type(result.prompt_ids) == "table" and #result.prompt_ids) or 0
  local decode_tokens = t.decode_tokens or (type(result.new_ids) == "table" and #result.new_ids) or 0
  if not t.prefill_end and not t.decode_end then decode_tokens = 0 end
  local prefill_ms = (prefill_end - t.start) * 1000
  local decode_ms = math.max(0, decode_end - prefill_end) * 1000
  return {
    load_ms = t.load_ms, prefill_ms = prefill_ms, prefill_tokens = prefill_tokens,
    prefill_tok_s = rate(prefill_tokens, prefill_ms), decode_ms = decode_ms,
    decode_tokens = decode_tokens, decode_tok_s = rate(decode_tokens, decode_ms),
  }
end

-- --stats: text mode's one line of timings, on stderr.
function run.stats_line(tm)
  return ("slua: load %.1f ms; prefill %d tokens in %.1f ms (%.1f tok/s); decode %d tokens in %.1f ms (%.1f tok/s)")
    :format(tm.load_ms, tm.prefill_tokens, tm.prefill_ms, tm.prefill_tok_s, tm.decode_tokens, tm.decode_ms, tm.decode_tok_s)
end

-- Hands over the result of a run: printed when the run is the command line's (as one JSON
-- object, or through write_text(result) in text mode), else only returned.
function run.emit_result(result, ctx, write_text)
  ctx.emitted = true
  if type(result) == "table" then result.timings = run.timings(ctx, result) end
  if ctx.recipe and ctx.recipe.after then ctx.recipe.after(result, ctx) end
  if ctx.cli then
    if ctx.opt.format == "json" then
      io.write(core.json_encode(result), "\n")
    elseif write_text then
      write_text(result)
    end
    io.flush()
    if ctx.opt.format ~= "json" and ctx.opt.stats and type(result) == "table" then
      io.stderr:write(run.stats_line(result.timings), "\n")
    end
  end
  return result
end

-- A to-be-closed guard over a run (local g <close> = run.guard(ctx, finish, streamed)): Ctrl-C
-- (the host raises "interrupted") calls finish() so that what was generated is still handed
-- over, then the host exits with 130; another failure ends a streamed text line, so that its
-- message starts a line. g.finished = true once the run has handed its result over itself.
function run.guard(ctx, finish, streamed)
  return setmetatable({ finished = false }, { __close = function(g, err)
    if err == nil or g.finished then return end
    if util.is_interrupt(err) then
      g.finished = true
      finish()
    elseif streamed and ctx.cli and ctx.opt.format == "text" then
      io.write("\n")
      io.flush()
    end
  end })
end

-- The decoder of a one-token-at-a-time recipe for a run whose ctx has model and opt: the main
-- session's options, the processor chain, sampling or argmax, the scores function and the EOS
-- ids, each from the recipe's hook or its default. Also used by slua.chat.conversation.
function run.decoder(recipe, ctx)
  local opt, model = ctx.opt, ctx.model
  local session_opts = recipe.session
  if type(session_opts) == "function" then session_opts = session_opts(ctx) end
  if opt.n_ctx and (opt.n_ctx > 0 or opt.kv_type ~= "f32") then
    local with_ctx = { n_ctx = opt.n_ctx, kv_type = opt.kv_type }
    for k, v in pairs(session_opts or {}) do with_ctx[k] = v end
    session_opts = with_ctx
  end
  local chain = recipe.processors
  if type(chain) == "function" then chain = chain(ctx) end
  if chain == nil then chain = processors.standard(opt) end
  if not processors.is_chain(chain) then chain = processors.chain(chain) end
  local sample = recipe.sample
  if sample == nil then sample = opt.do_sample end
  local eos_ids = recipe.eos or model.eos
  if type(eos_ids) == "function" then eos_ids = eos_ids(ctx) end
  local eos = {}
  for _, id in ipairs(eos_ids) do eos[id] = true end
  return {
    session = session_opts, chain = chain, sample = sample, eos = eos, amateurs = recipe.amateurs,
    scores = recipe.scores or function(c) return c.out.logits end,
  }
end

-- A session of the run's model (or of `model`) with the run's --intervene, if any. Recipes that
-- make their own sessions call this (sl.session) so that --intervene reaches them.
function run.session(ctx, opts, model)
  model = model or ctx.model
  return model:session(intervene.session_options(ctx, opts, model))
end

-- A fresh run context's common fields.
local function start(ctx, model)
  local opt = ctx.opt
  ctx.model, ctx.tokenizer, ctx.prompt_len, ctx.step = model, model.tokenizer, 0, 0
  ctx.max_new_tokens, ctx.generated, ctx.rng = opt.max_new_tokens, {}, util.rng(opt.seed or 42)
  ctx.extra = ctx.extra or {}
  return ctx
end
run.start = start

-- The loop of a one-token-at-a-time recipe: prefill, then score, process, choose and evaluate
-- one token per step, streaming in text mode.
function run.generate(recipe, ctx)
  local opt = ctx.opt
  local model = run.model(ctx)
  local tok = model.tokenizer
  start(ctx, model)
  util.check_options(opt, model)
  intervene.of_run(ctx)  -- a bad spec fails before anything is printed
  local d = run.decoder(recipe, ctx)
  -- A caller's prefix cache (ctx.sessions): the main session of the previous generation with
  -- the same model and session options is continued from the longest prefix it shares with
  -- this prompt. Recipes with amateur sessions always start afresh. The pool's optional
  -- `siblings` are the pools of the other slots of a batch.
  local pool, reused = ctx.sessions, nil
  local pool_key = pool and not d.amateurs
    and (model.path .. core.json_encode(d.session or {}) .. intervene.key(ctx))
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
  ctx.session = reused or run.session(ctx, d.session)
  if pool_key then pool.key, pool.model, pool.session = pool_key, model, ctx.session end
  ctx.amateurs = d.amateurs and d.amateurs(ctx) or {}
  local chain, sample, scores_of, eos = d.chain, d.sample, d.scores, d.eos
  local stops = split_stops(opt.stop)

  local prompt = run.prompt_ids(model, opt)
  ctx.prompt_len = #prompt
  -- the stream starts with the prompt, so the first new token is decoded in its context
  local stream = tok and tok:stream{ skip_special = true }
  local prompt_text = {}
  for _, id in ipairs(prompt) do prompt_text[#prompt_text + 1] = stream and stream:put(id) or nil end
  emit(ctx, stream and table.concat(prompt_text) or table.concat(prompt, " "))

  local steps, text, stop_reason = {}, {}, "max_new_tokens"
  local function result_of()
    local result = {
      model = model.path, recipe = recipe.name, options = opt, prompt_ids = prompt,
      new_ids = ctx.generated, stop_reason = stop_reason, steps = steps,
      text = run.continuation_text(tok, prompt, ctx.generated),
    }
    for k, v in pairs(ctx.extra) do result[k] = v end
    return result
  end
  local function finish()
    if stream then emit(ctx, stream:finish()) end
    return run.emit_result(result_of(), ctx, function() io.write("\n") end)
  end
  local guard <close> = run.guard(ctx, function() stop_reason = "interrupted"; finish() end, true)

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
  local who = ("the scores function of %s"):format(recipe.name or "the recipe")
  if opt.max_new_tokens > 0 then
    local keep = 0
    if reused then
      local held = ctx.session:tokens()
      while keep < #prompt - 1 and held[keep + 1] == prompt[keep + 1] do keep = keep + 1 end
      ctx.session:rewind(keep)
    end
    -- "prompt" and "generated" positions of interventions: the whole prompt, reused or not
    ctx.session:set_prompt_length(#prompt)
    eval_all(keep == 0 and prompt or table.move(prompt, keep + 1, #prompt, 1, {}), prompt)
    run.mark_prefill(ctx, #prompt - keep)
  end
  for step = 0, opt.max_new_tokens - 1 do
    ctx.step = step
    run.check_finite(ctx.out.logits, model.path, step)
    for _, a in ipairs(ctx.amateur_outs) do run.check_finite(a.logits, "the amateur of " .. model.path, step) end
    -- the model's own log-probabilities of this step, before any processor
    local logprobs = ctx.out.logits:clone():log_softmax()
    local scores, info = scores_of(ctx)
    scores = util.check_scores(scores, n_vocab, who)
    scores = chain(ctx, scores) or scores
    local id = sample and scores:sample(ctx.rng) or scores:argmax()
    if id < 0 then util.fail(("%s: every processed score is NaN at step %d"):format(model.path, step)) end
    local record = info or {}
    -- tokens masked to -inf (a relative-top or top-k cut) were never candidates: left out
    local top = scores:top(8)
    for k = #top, 1, -1 do if top[k][2] == -math.huge then table.remove(top, k) end end
    record.id, record.top, record.logprob = id, top, logprobs:get(id)
    if ctx.opt.logprobs and ctx.opt.logprobs > 0 then record.top_logprobs = logprobs:top(ctx.opt.logprobs) end
    steps[#steps + 1] = record
    ctx.generated[#ctx.generated + 1] = id
    local piece = stream and stream:put(id) or (" " .. id)
    text[#text + 1] = piece
    emit(ctx, piece)
    if ctx.progress then ctx.progress(step + 1) end
    if ctx.on_token and ctx.on_token(id, logprobs, ctx) == "stop" then stop_reason = "stop"; break end
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
  return finish(), ctx
end

-- Runs a recipe value for a run context: its own loop (recipe.run(ctx) -> result, printed
-- here unless it printed itself, in text mode through recipe.text(result, ctx)), else the
-- shared one-token-at-a-time loop.
function run.execute(recipe, ctx)
  ctx.recipe = recipe
  ctx.extra = ctx.extra or {}
  if not recipe.run then return (run.generate(recipe, ctx)) end
  start(ctx, run.model(ctx))
  util.check_options(ctx.opt, ctx.model)
  intervene.of_run(ctx)
  local result = recipe.run(ctx)
  if not ctx.emitted then
    run.emit_result(result, ctx, recipe.text and function(r) recipe.text(r, ctx) end)
  end
  return result
end

-- sl.generate{recipe = NAME, opt = opt, session, amateurs, scores, chain, sample, eos, extra}:
-- the loop run from a plain script (one that returns no recipe value), printing as the command
-- line does. Its hooks keep the script form's arguments: session(model, opt), chain (a chain,
-- or function(model, opt) returning one), eos (ids or function(model)); amateurs and scores
-- take ctx as a recipe's do.
function run.script_generate(spec)
  local recipe = { name = spec.recipe, amateurs = spec.amateurs, scores = spec.scores, sample = spec.sample }
  local function adapt(hook, call)
    if type(hook) ~= "function" then return hook end
    return function(ctx) return call(hook, ctx) end
  end
  recipe.session = adapt(spec.session, function(f, ctx) return f(ctx.model, ctx.opt) end)
  recipe.processors = adapt(spec.chain, function(f, ctx) return f(ctx.model, ctx.opt) end)
  recipe.eos = adapt(spec.eos, function(f, ctx) return f(ctx.model) end)
  return run.generate(recipe, { opt = spec.opt, model = spec.model, extra = spec.extra, cli = true })
end

-- {max_new_tokens = 8, dola_layers = "high"} -> {"--dola-layers", "high", "--max-new-tokens", "8"}
-- (sorted by name, so the same options always give the same flags).
function run.argv(options_table)
  local keys = {}
  for k in pairs(options_table) do keys[#keys + 1] = k end
  table.sort(keys)
  local argv = {}
  for _, k in ipairs(keys) do
    argv[#argv + 1] = "--" .. k:gsub("_", "-")
    argv[#argv + 1] = tostring(options_table[k])
  end
  return argv
end

return run
