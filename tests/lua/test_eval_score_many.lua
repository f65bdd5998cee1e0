-- Batched answer scores (core.lm_score_many / ev.lm_score_many): several continuations of one
-- prefix as the rows of shared passes give, bit for bit, what core.lm_score gives per answer:
-- every term, sum, premature layer and top-k list, in the three modes, on every architecture
-- family (GQA, sliding windows shorter than the answers, softcaps, longrope's switch, MoE),
-- with a prefix the session already holds, answers of 1 to 12 tokens, prefixes that differ,
-- several sessions in one call and an F16 KV cache. `slua eval` writes the same result files
-- with and without it, one or four questions at a time. CTest runs this file at the native
-- kernel level and again with SL_NO_AVX512=1 and with SL_NO_AVX2=1.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local core = require "slua.core"
local ev = require "slua.eval"

local slua = arg[1] or "build/slua"
local level = os.getenv("SL_NO_AVX2") and "generic" or os.getenv("SL_NO_AVX512") and "avx2" or "native"
local tmp = T.tmpdir()

-- A fixed xorshift, so that the sequences are the same on every run.
local state = 88172645463325252
local function rand(n)
  state = state ~ (state << 13)
  state = state ~ (state >> 7)
  state = state ~ (state << 17)
  return (state >> 1) % n
end

local function tokens(n, vocab)
  local t = {}
  for i = 1, n do t[i] = 1 + rand(vocab - 1) end
  return t
end

local function concat(a, b)
  local t = table.move(a, 1, #a, 1, {})
  return table.move(b, 1, #b, #t + 1, t)
end

-- One prompt's answers: lengths 1, 3, 7 and 12 (longer than the 8-token windows), an empty
-- one, and one whose boundary lies 2 tokens further (its own n_prefix).
local function answers_of(prefix, vocab)
  local out = {}
  for _, len in ipairs{ 3, 1, 12, 7 } do
    out[#out + 1] = { full_ids = concat(prefix, tokens(len, vocab)), n_prefix = #prefix }
  end
  out[#out + 1] = { full_ids = table.move(prefix, 1, #prefix, 1, {}), n_prefix = #prefix }
  out[#out + 1] = { full_ids = concat(prefix, tokens(5, vocab)), n_prefix = #prefix + 2 }
  return out
end

local function bits(x) return string.pack("<d", x) end

-- Bit-for-bit equality of two results (NaN-safe, as the bytes are compared).
local function same(got, want, what)
  T.eq(bits(got.log_prob), bits(want.log_prob), what .. ": log_prob " .. want.log_prob .. " vs " .. got.log_prob)
  T.eq(#got.per_token, #want.per_token, what .. ": terms")
  for i, t in ipairs(want.per_token) do T.eq(bits(got.per_token[i]), bits(t), what .. ": term " .. i) end
  T.eq(table.concat(got.premature_layers, ","), table.concat(want.premature_layers, ","), what .. ": premature")
  T.eq(sl.json.encode(got.top or false), sl.json.encode(want.top or false), what .. ": top_k")
end

local function per_answer(session, list, opts)
  local out = {}
  for i, q in ipairs(list) do out[i] = core.lm_score(session, q.full_ids, q.n_prefix, opts) end
  return out
end

local function modes(N)
  return {
    { name = "baseline, top_k 4", opts = { mode = "baseline", top_k = 4 } },
    { name = "dola-static",
      opts = { mode = "dola-static", premature = { 1 }, relative_top = 0, post_softmax = false } },
    { name = "dola", opts = { mode = "dola", premature = { 0, 1, N - 1 }, relative_top = 0, post_softmax = false } },
    { name = "dola, relative_top 0.1, top_k 3", opts = { mode = "dola", premature = { 0, N - 1 }, top_k = 3,
                                                          mature_layer = N } },
  }
end

local models = {
  { "tiny-llama", SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama" },
  { "tiny-llama-tied", SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama-tied" },
  { "tiny-qwen2", SLUA_ROOT .. "/tests/data/hf-tiny/tiny-qwen2" },
}
for _, fam in ipairs{ "gemma2", "gemma3", "phi3", "qwen3", "olmo2", "mixtral", "qwen2moe" } do
  models[#models + 1] = { fam, SLUA_ROOT .. "/tests/data/arch/" .. fam }
end
models[#models + 1] = { "tiny-llama, Q8_0 weights", models[1][2], { weights = "q8_0" } }

for _, m in ipairs(models) do
  T.case(("%s (%s): batched scores equal per-answer scores bit for bit in every mode"):format(m[1], level), function()
    local model = sl.check(sl.load(m[2], m[3]))
    local V, N = model.config.n_vocab, model.config.n_layer
    local list = answers_of(tokens(12, V), V)
    for _, mode in ipairs(modes(N)) do
      local want = per_answer(model:session{}, list, mode.opts)
      local got = core.lm_score_many({ { model:session{}, list } }, mode.opts)[1]
      T.eq(#got, #list, "a result per answer")
      for i = 1, #list do same(got[i], want[i], ("%s, answer %d"):format(mode.name, i)) end
      T.eq(got[5].log_prob, 0.0, "an empty answer scores 0")
    end
  end)
end

T.case(("a prefix the session already holds is kept; fewer forwards, same bits (%s)"):format(level), function()
  local model = sl.check(sl.load(models[1][2]))
  local V = model.config.n_vocab
  local prefix = tokens(20, V)
  local list = answers_of(prefix, V)
  local opts = { mode = "dola", premature = { 0, 2 }, relative_top = 0, top_k = 2 }
  local want = per_answer(model:session{}, list, opts)
  local cold = core.lm_score_many({ { model:session{}, list } }, opts)[1]
  local warm_session = model:session{}
  core.lm_score(warm_session, concat(table.move(prefix, 1, 16, 1, {}), tokens(6, V)), 17, {})
  local warm = core.lm_score_many({ { warm_session, list } }, opts)[1]
  local n_cold, n_warm = 0, 0
  for i = 1, #list do
    same(cold[i], want[i], "cold, answer " .. i)
    same(warm[i], want[i], "warm, answer " .. i)
    n_cold, n_warm = n_cold + cold[i].n_forwarded, n_warm + warm[i].n_forwarded
  end
  T.eq(n_cold - n_warm, 16, "the 16 held positions are not evaluated again")
  T.eq(warm_session:pos(), 20, "the session holds the shared prefix")
  -- the same call again recomputes nothing of the prefix
  local again = core.lm_score_many({ { warm_session, list } }, opts)[1]
  local n_again = 0
  for i = 1, #list do
    same(again[i], want[i], "again, answer " .. i)
    n_again = n_again + again[i].n_forwarded
  end
  T.eq(n_again, n_warm - 3, "only the prefix's last row (it scores the answers' first tokens) and the answers' rows")
  -- without reuse the prefix is evaluated once, from position 0
  local fresh = core.lm_score_many({ { warm_session, list } },
    { mode = "dola", premature = { 0, 2 }, relative_top = 0, top_k = 2, reuse_prefix = false })[1]
  for i = 1, #list do same(fresh[i], want[i], "no reuse, answer " .. i) end
  T.eq(fresh[1].n_forwarded, again[1].n_forwarded + 19, "the whole prefix, counted towards the first answer")
end)

T.case(("several prompts and sessions in one call; prefixes that differ; F16 caches; 2 threads (%s)"):format(
  level), function()
  local model = sl.check(sl.load(models[3][2]))
  local V = model.config.n_vocab
  local a, b = answers_of(tokens(9, V), V), answers_of(tokens(30, V), V)
  -- a third prompt whose answers share only 4 tokens: the shared prefix is those 4
  local c, stem = {}, tokens(4, V)
  for i = 1, 3 do c[i] = { full_ids = concat(concat(stem, tokens(3 + i, V)), tokens(i, V)), n_prefix = 7 + i } end
  for _, kv in ipairs{ "f32", "f16" } do
    local opts = { mode = "dola-static", premature = { 1 }, relative_top = 0.1, top_k = 2 }
    local want = {}
    for g, list in ipairs{ a, b, c } do want[g] = per_answer(model:session{ kv_type = kv }, list, opts) end
    sl.set_threads(2) -- the batched pass on 2 threads, the reference on 1
    local got = core.lm_score_many({ { model:session{ kv_type = kv }, a }, { model:session{ kv_type = kv }, b },
                                     { model:session{ kv_type = kv }, c } }, opts)
    sl.set_threads(1)
    for g = 1, 3 do
      for i = 1, #want[g] do same(got[g][i], want[g][i], ("%s, prompt %d, answer %d"):format(kv, g, i)) end
    end
  end
end)

T.case(("groups share what their prompts share, whatever each session's context (%s)"):format(level), function()
  local model = sl.check(sl.load(models[1][2]))
  local V = model.config.n_vocab
  local demo = tokens(40, V)
  local a, b = answers_of(concat(demo, tokens(5, V)), V), answers_of(concat(demo, tokens(8, V)), V)
  local opts = { mode = "baseline", top_k = 2 }
  local want_a, want_b = per_answer(model:session{}, a, opts), per_answer(model:session{}, b, opts)
  -- the second session's context holds its own sequences but not the first prompt's
  local small = model:session{ n_ctx = #b[3].full_ids }
  local got = core.lm_score_many({ { model:session{}, a }, { small, b } }, opts)
  for i = 1, #a do same(got[1][i], want_a[i], "first prompt, answer " .. i) end
  for i = 1, #b do same(got[2][i], want_b[i], "second prompt, answer " .. i) end
  -- two fresh sessions: the demo runs once, in the first group, and the second copies it
  local c, d = answers_of(concat(demo, tokens(6, V)), V), answers_of(concat(demo, tokens(3, V)), V)
  local sa, sb = model:session{}, model:session{}
  local first = core.lm_score_many({ { sa, c }, { sb, d } }, opts)
  local rows_c, rows_d = 0, 0
  for i = 1, #c do rows_c = rows_c + first[1][i].n_forwarded end
  for i = 1, #d do rows_d = rows_d + first[2][i].n_forwarded end
  local own_d = 0 -- the answers' rows: every position after the shared prefix (demo + 3)
  for i = 1, #d do own_d = own_d + math.max(#d[i].full_ids - 1 - (#demo + 3), 0) end
  T.eq(rows_d, own_d + 3, "the second group takes the 40 demo positions from the first, evaluates 3")
  T.truthy(rows_c > rows_d, "the first group evaluated the demo")
end)

T.case(("answers that take several passes: 800 rows, a 600-token answer, a context of 40 (%s)"):format(level),
  function()
  local model = sl.check(sl.load(models[2][2]))
  local V = model.config.n_vocab
  local prefix = tokens(10, V)
  local many = {}
  for i = 1, 40 do many[i] = { full_ids = concat(prefix, tokens(20, V)), n_prefix = 10 } end
  local long = { { full_ids = concat(prefix, tokens(600, V)), n_prefix = 10 }, many[1], many[2] }
  local opts = { mode = "dola-static", premature = { 2 }, relative_top = 0, top_k = 1 }
  local cases = {
    { "800 rows in passes of 512", many, {} },
    { "one answer longer than a pass", long, { n_ctx = 700 } },
    { "a context of 40: one answer per pass", table.move(many, 1, 5, 1, {}), { n_ctx = 40 } },
  }
  for _, case in ipairs(cases) do
    local want = per_answer(model:session(case[3]), case[2], opts)
    local got = core.lm_score_many({ { model:session(case[3]), case[2] } }, opts)[1]
    for i = 1, #want do same(got[i], want[i], ("%s, answer %d"):format(case[1], i)) end
  end
end)

T.case("a session with an intervention scores its answers one by one, with the same results", function()
  local model = sl.check(sl.load(models[1][2]))
  local V = model.config.n_vocab
  local D = model.config.n_embd
  local v = {}
  for i = 1, D do v[i] = (i % 7) / 7 - 0.4 end
  local iv = model:intervention(sl.json.encode{ { hook = "blocks.1.hook_resid_pre", op = "add", vector = v } })
  local list = answers_of(tokens(10, V), V)
  local want = per_answer(model:session{ intervene = iv }, list, { mode = "baseline" })
  local got = core.lm_score_many({ { model:session{ intervene = iv }, list } }, { mode = "baseline" })[1]
  for i = 1, #list do same(got[i], want[i], "answer " .. i) end
  local plain = per_answer(model:session{}, list, { mode = "baseline" })
  T.truthy(plain[1].log_prob ~= want[1].log_prob, "the intervention changes the scores")
end)

T.case("ev.lm_score_many equals ev.lm_score; batched = false is the per-answer path", function()
  local model = sl.check(sl.load(models[1][2]))
  local V = model.config.n_vocab
  local list = answers_of(tokens(15, V), V)
  local opts = { mode = "dola", candidate_layers = { 0, 2 }, relative_top = 0 }
  local want = {}
  for i, q in ipairs(list) do want[i] = ev.lm_score(model, q.full_ids, q.n_prefix, opts) end
  ev.drop_cache(model)
  local got = ev.lm_score_many(model, list, opts)
  local one = ev.lm_score_many(model, list, { mode = "dola", candidate_layers = { 0, 2 }, relative_top = 0,
                                              batched = false })
  for i = 1, #list do
    same(got[i], want[i], "batched, answer " .. i)
    same(one[i], want[i], "one by one, answer " .. i)
  end
end)

T.case("bad arguments give clear errors", function()
  local model = sl.check(sl.load(models[1][2]))
  local s, s2 = model:session{}, model:session{}
  local ok = { full_ids = { 1, 5, 6 }, n_prefix = 2 }
  T.raises(function() core.lm_score_many({}, {}) end, "give 1 to 65536 groups")
  T.raises(function() core.lm_score_many({ 5 }) end, "group 1 is not a {session, answers} table")
  T.raises(function() core.lm_score_many({ { s, 5 } }) end, "group 1: answers must be a table")
  T.raises(function() core.lm_score_many({ { 7, { ok } } }) end, "group 1: its first entry must be an open session")
  T.raises(function() core.lm_score_many({ { s, { ok, { full_ids = { 1, 2 }, n_prefix = 3 } } } }) end,
    "group 1, item 2: n_prefix must be an integer in [1, #full_ids = 2]")
  T.raises(function() core.lm_score_many({ { s, { { full_ids = { 1, "x" }, n_prefix = 1 } } } }) end,
    "group 1, item 1: full_ids[2] is not an integer")
  T.raises(function() core.lm_score_many({ { s, { { full_ids = {}, n_prefix = 1 } } } }) end, "full_ids is empty")
  T.raises(function() core.lm_score_many({ { s, { ok } }, { s, { ok } } }) end,
    "group 2 repeats the session of group 1")
  T.raises(function() core.lm_score_many({ { s, { ok } }, { s2, { { full_ids = { 1, 99999 }, n_prefix = 1 } } } }) end,
    "group 2, item 1: token id 99999 out of range")
  T.raises(function() core.lm_score_many({ { s, { ok } } }, { mode = "dola" }) end, "no premature layer")
  T.raises(function() core.lm_score_many({ { s, { ok } } }, { mode = "greedy" }) end, "invalid option 'greedy'")
  T.raises(function() core.lm_score_many({ { s, { ok } } }, { top_k = -1 }) end, "top_k must be in [0, 1024]")
  T.raises(function() ev.lm_score_many(model, { { full_ids = { 1, 2 } } }) end,
    "sequence 1 must be {full_ids = {...}, n_prefix = n}")
  T.raises(function() ev.lm_score_many(model, { ok }, { mode = "dola" }) end, "candidate_layers")
  -- nothing was scored: the sessions are still usable
  same(core.lm_score_many({ { s, { ok } } })[1][1], core.lm_score(s2, ok.full_ids, ok.n_prefix), "after errors")
end)

---------------------------------------------------------------------------- slua eval

local fixtures = slua:gsub("[^/]+$", "") .. "data/evals/"
local tf = T.json_file(fixtures .. "tiny-llama/tfqa_mc.json")
local items = tmp .. "/tfqa.jsonl"
T.write_json_lines(items, require("eval_items").tfqa(tf))
local factor_items = tmp .. "/factor.jsonl"
T.write_json_lines(factor_items, require("eval_items").factor(T.json_file(fixtures .. "tiny-llama/factor.json")))
local model_dir = SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama"

local function eval(task, file, args, out)
  local text, ok = T.run(("%s eval %s --model %s --items %s --progress never --output %s %s"):format(
    slua, task, model_dir, file, out, args))
  if not ok then error("slua eval " .. args .. " failed:\n" .. text, 2) end
  return T.read(out)
end

-- Each line in item order, without the one field that differs between runs of one setting by
-- design: n_forwarded, the forwards counted (the prefix cache a batch slot's session holds, and
-- where a session grew its context, depend on what ran before).
local function decided(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do
    local r = assert(sl.json.decode(line))
    r.n_forwarded = nil
    t[#t + 1] = { r.index, sl.json.encode(r) }
  end
  table.sort(t, function(a, b) return a[1] < b[1] end)
  for i, x in ipairs(t) do t[i] = x[2] end
  return table.concat(t, "\n")
end

for _, layers in ipairs{ "-1", "4,8", "4,6,8" } do
  T.case(("slua eval truthfulqa_mc and factor --early-exit-layers %s: the same result files batched or not, "
          .. "--batch 1 or 4 (%s)"):format(layers, level), function()
    for _, t in ipairs{ { "truthfulqa_mc", items }, { "factor", factor_items } } do
      local tag = t[1] .. layers:gsub(",", "_")
      local common = "--early-exit-layers " .. layers .. " --details"
      local one = eval(t[1], t[2], common .. " --no-batched-score", ("%s/%s-one.out"):format(tmp, tag))
      T.truthy(#one > 0, "results written")
      local runs = { { "batched", "" }, { "--batch 4, batched", "--batch 4" },
                     { "--batch 4, one by one", "--batch 4 --no-batched-score" } }
      for k, run in ipairs(runs) do
        local got = eval(t[1], t[2], common .. " " .. run[2], ("%s/%s-%d.out"):format(tmp, tag, k))
        T.eq(decided(got), decided(one), ("%s: %s"):format(t[1], run[1]))
      end
    end
  end)
end

T.finish()
