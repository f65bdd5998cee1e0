-- Every recipe's result carries "timings" {load_ms, prefill_ms, prefill_tokens, prefill_tok_s,
-- decode_ms, decode_tokens, decode_tok_s}, and --stats prints them on stderr in text mode. The
-- checks are on presence, types, token counts and the relation tok_s = tokens / ms * 1000, never
-- on how long anything took.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local cli = T.cli(slua, tmp)

local function check_timings(tm, what, prefill_tokens, decode_tokens)
  T.truthy(type(tm) == "table", what .. ": timings is an object")
  for _, k in ipairs{ "load_ms", "prefill_ms", "prefill_tok_s", "decode_ms", "decode_tok_s" } do
    T.truthy(math.type(tm[k]) ~= nil, ("%s: timings.%s is a number (got %s)"):format(what, k, type(tm[k])))
    T.truthy(tm[k] >= 0, ("%s: timings.%s >= 0"):format(what, k))
  end
  T.eq(math.type(tm.prefill_tokens), "integer", what .. ": prefill_tokens")
  T.eq(math.type(tm.decode_tokens), "integer", what .. ": decode_tokens")
  if prefill_tokens then T.eq(tm.prefill_tokens, prefill_tokens, what .. ": prefill_tokens") end
  if decode_tokens then T.eq(tm.decode_tokens, decode_tokens, what .. ": decode_tokens") end
  for _, phase in ipairs{ "prefill", "decode" } do
    local ms, n, rate = tm[phase .. "_ms"], tm[phase .. "_tokens"], tm[phase .. "_tok_s"]
    local want = ms > 0 and n / ms * 1000 or 0
    T.near(rate, want, 1e-9 * math.max(1, want), ("%s: %s_tok_s = tokens / ms * 1000"):format(what, phase))
  end
end

T.case("every recipe's JSON output has timings whose rates are tokens over time", function()
  for _, name in ipairs{ "greedy", "sample", "dola", "skiplayer_slh", "skiplayer_sld", "repetition_penalty",
                         "eos_reward", "llama_samplers", "contrastive_search", "contrastive", "custom_processor" } do
    local r = cli.json{ name, "--format", "json", "--max-new-tokens", "5", "--prompt", "Once upon a time" }
    check_timings(r.timings, name, #r.prompt_ids, #r.new_ids)
  end
  for _, name in ipairs{ "beam_search", "speculative" } do
    local r = cli.json{ name, "--format", "json", "--max-new-tokens", "5" }
    -- speculative verifies the last prompt token together with the first drafts
    check_timings(r.timings, name, #r.prompt_ids - (name == "speculative" and 1 or 0), #r.new_ids)
  end
  local r = cli.json{ "logits", "--format", "json", "--prompt-ids", "1,400,500" }
  check_timings(r.timings, "logits", 3, 0)
  T.eq(r.timings.decode_tok_s, 0, "logits: no decode")
  r = cli.json{ "logit_lens", "--format", "json", "--prompt-ids", "1,400,500", "--max-new-tokens", "2" }
  check_timings(r.timings, "logit_lens", 3, #r.positions - 3)
end)

T.case("--stats prints one line of timings on stderr in text mode, nothing without it", function()
  local out, err, code = cli.exec{ "greedy", "--max-new-tokens", "4", "--prompt-ids", "1,400", "--stats" }
  T.eq(code, 0, "exit status")
  T.truthy(out ~= "", "the text still goes to stdout")
  local line = err:match("slua: load [%d.]+ ms; prefill (%d+) tokens in [%d.]+ ms %([%d.]+ tok/s%); decode (%d+) tokens in [%d.]+ ms %([%d.]+ tok/s%)\n$")
  T.truthy(line, "stats line on stderr: " .. err)
  T.eq(err:match("prefill (%d+) tokens"), "2", "prefill tokens")
  T.eq(err:match("decode (%d+) tokens"), "4", "decode tokens")
  out, err = cli.exec{ "greedy", "--max-new-tokens", "4", "--prompt-ids", "1,400" }
  T.eq(err, "", "no stats without --stats")
end)

T.case("recipe:run results carry timings", function()
  local model <close> = sl.check(sl.load())
  local r = sl.recipe.load("greedy"):run({ max_new_tokens = 3, prompt_ids = "1,400" }, { model = model })
  check_timings(r.timings, "greedy:run", 2, 3)
end)

T.remove_tmpdirs()
T.finish()
