-- The command line as a new user meets it: the headline SkipLayerCD command on the bundled
-- model, text that keeps the space after the prompt (HF tokenizers goldens), option values
-- checked with one-line messages and exit 2, thread limits, non-finite logits, scores of the
-- wrong shape, Ctrl-C, help generated from the options a recipe reads, --list and --config.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local q, read = T.q, T.read

-- exec(args) runs slua (a recipe name or path first); json_run(args) decodes what it printed;
-- usage_error(args, line) checks exit 2 with one line on stderr.
local cli = T.cli(slua, tmp)
local exec, json_run, usage_error = cli.exec, cli.json, cli.usage_error

-- A copy of the bundled model in tmp/name, for damaging.
local function model_copy(name)
  local dir = tmp .. "/" .. name
  assert(os.execute(("rm -rf %s && cp -r %s %s"):format(q(dir), q(SLUA_ROOT .. "/models/stories260K"), q(dir))))
  return dir
end

T.case("the headline SkipLayerCD commands produce text on the bundled 5-layer model", function()
  for _, recipe in ipairs{ "skiplayer_sld", "skiplayer_slh" } do
    local out, err, code = exec{ recipe }
    T.eq(code, 0, recipe .. " exit status: " .. err)
    T.truthy(#out > #"Once upon a time" + 20 and out:find("^Once upon a time"), recipe .. " text: " .. out)
    T.truthy(err:find("small-model span: the model has 5 layers, SL-H needs at least 10; using [2, 3)", 1, true),
      recipe .. " announces the small-model span on stderr: " .. err)
    local r = json_run{ recipe, "--format", "json", "--max-new-tokens", "4" }
    T.eq(r.span_source, "small-model span: the model has 5 layers, SL-H needs at least 10", "span_source")
    T.eq(table.concat(r.skip_span, ","), "2,3", "the middle block")
  end
  local out, err, code = exec{ "skiplayer_slh", "--small-model-span", "none" }
  T.eq(code, 1, "the official failure on request")
  T.eq(out, "", "no text")
  T.eq(err, "slua: SL-H: empty range for randrange() (4, 2, -2): needs at least 10 layers, the model has 5; "
    .. "--skip-blocks START:END takes 0 <= START < END <= 5\n", "the message names the valid spans")
  local r = json_run{ "skiplayer_sld", "--skip-layers", "1,3", "--format", "json", "--max-new-tokens", "2" }
  T.eq(r.span_source, "explicit", "an explicit span still wins")
end)

T.case("block sets: --skip-blocks and --draft-skip-blocks read one grammar; the older names are aliases", function()
  local function run(args)
    local r = json_run(args)
    r.options = sl.json.encode(r.options)
    return T.untimed_json(r)
  end
  local span = run{ "skiplayer_slh", "--skip-blocks", "1:3", "--format", "json", "--max-new-tokens", "4" }
  T.truthy(span:find('"skip_span":[1,3]', 1, true), "1:3 is the span [1, 3) of skip_span: " .. span)
  T.truthy(span:find('\\"skip_blocks\\":\\"1:3\\"', 1, true), "the options hold the new name: " .. span)
  T.eq(run{ "skiplayer_slh", "--skip-layers", "1,3", "--format", "json", "--max-new-tokens", "4" }, span,
    "--skip-layers 1,3 = --skip-blocks 1:3")
  local one = json_run{ "skiplayer_slh", "--skip-blocks", "2", "--format", "json", "--max-new-tokens", "2" }
  T.eq(table.concat(one.skip_span, ","), "2,3", "one block N is the span [N, N+1)")
  local set = run{ "speculative", "--draft-skip-blocks", "1:3", "--format", "json", "--max-new-tokens", "6" }
  T.eq(run{ "speculative", "--draft-skip-layers", "1-2", "--format", "json", "--max-new-tokens", "6" }, set,
    "--draft-skip-layers 1-2 = --draft-skip-blocks 1:3")
  local listed = json_run{ "speculative", "--draft-skip-blocks", "1,2", "--format", "json", "--max-new-tokens", "6" }
  local spanned = sl.json.decode(set)
  T.eq(sl.json.encode(listed.rounds), sl.json.encode(spanned.rounds), "1,2 is the set of blocks 1 and 2, as 1:3 (rounds)")
  T.eq(table.concat(listed.new_ids, ","), table.concat(spanned.new_ids, ","), "1,2 = 1:3 (tokens)")
  for recipe, names in pairs{ skiplayer_slh = { "skip" }, speculative = { "draft-skip" } } do
    local help = exec{ recipe, "--help" }
    local new, old = "--" .. names[1] .. "-blocks", "--" .. names[1] .. "-layers"
    T.truthy(help:find("\n  " .. new .. " ", 1, true), recipe .. " --help lists " .. new)
    local noted = false
    for line in help:gmatch("[^\n]+") do
      if line:sub(1, #old + 3) == "  " .. old .. " " and line:find("older name of " .. new, 1, true) then noted = true end
    end
    T.truthy(noted, recipe .. " --help notes the alias " .. old)
  end
end)

-- Goldens: @huggingface/tokenizers 0.2.0, decode(prompt + new)[len(decode(prompt)):] with
-- skip_special_tokens, on the bundled tokenizer.
T.case("the continuation keeps the space after the prompt, as HF decodes it", function()
  local cases = {
    { args = { "greedy", "--prompt", "Once upon", "--max-new-tokens", "5" }, prompt = "Once upon",
      new_ids = "261,378,432,383,286", text = " a time, there was" },
    { args = { "dola", "--prompt", "Q: What is a cat?\nA:", "--max-new-tokens", "8" }, prompt = "Q: What is a cat?\nA:",
      new_ids = "261,276,364,334,433,283,450,436", text = " are you okay?\"" },
    { args = { "sample", "--prompt", "Lily", "--max-new-tokens", "12", "--seed", "3" }, prompt = "Lily",
      new_ids = "310,286,261,358,412,421,413,415,422,268,414,422", text = "ily was a shealthy boy" },
  }
  for _, c in ipairs(cases) do
    local args = table.move(c.args, 1, #c.args, 1, {})
    local out, err, code = exec(args)
    T.eq(code, 0, "text mode: " .. err)
    T.eq(out, c.prompt .. c.text .. "\n", "streamed text")
    args[#args + 1], args[#args + 2] = "--format", "json"
    local r = json_run(args)
    T.eq(table.concat(r.new_ids, ","), c.new_ids, "the ids the golden text decodes")
    T.eq(r.text, c.text, "JSON text")
  end
end)

T.case("thread counts have a documented maximum; negative ones are refused", function()
  usage_error({ "greedy", "--threads", "100000" }, "slua: option --threads must be in [0, 256] (got 100000)")
  usage_error({ "greedy", "--threads", "-4" }, "slua: option --threads must be in [0, 256] (got -4)")
  T.raises(function() sl.set_threads(100000) end, "thread count must be in [0, 256] (got 100000)")
  T.raises(function() sl.set_threads(-1) end, "thread count must be in [0, 256] (got -1)")
  local out, err, code = exec{ "greedy", "--threads", "256", "--max-new-tokens", "3" }
  T.eq(code, 0, "the maximum works: " .. err)
  T.eq(out, "Once upon a time, there was\n", "and gives the same text")
end)

T.case("option values are checked where they are parsed, with HF's rules", function()
  local cases = {
    { { "sample", "--temperature", "0" }, "option --temperature must be > 0 when sampling (got 0)" },
    { { "sample", "--top-p", "-1" }, "option --top-p must be in [0, 1] (got -1)" },
    { { "sample", "--top-p", "2" }, "option --top-p must be in [0, 1] (got 2)" },
    { { "sample", "--min-p", "5" }, "option --min-p must be in [0, 1] (got 5)" },
    { { "sample", "--top-k", "-5" }, "option --top-k must be >= 0 (got -5)" },
    { { "sample", "--top-k", "1.5" }, "option --top-k expects an integer (got '1.5')" },
    { { "sample", "--temperature", "1e999" }, "option --temperature expects a finite number (got '1e999')" },
    { { "dola", "--relative-top", "5" }, "option --relative-top must be in [0, 1] (got 5)" },
    { { "greedy", "--repetition-penalty", "0" }, "option --repetition-penalty must be > 0 (got 0)" },
    { { "dola", "--mature-layer", "9" }, "option --mature-layer must be in [-1, 5] (got 9)" },
    { { "dola", "--dola-layers", "2,4", "--mature-layer", "3" },
      "option --mature-layer must be -1 unless --dola-layers names one layer (got 3)" },
    { { "dola", "--dola-layers", "middle" }, "option --dola-layers must be high, low or a list of layers (got 'middle')" },
    { { "dola", "--dola-layers", "2,9" }, "dola layers: layer 9 out of range [0, 4] (layer 5 is the mature layer)" },
    { { "skiplayer_sld", "--sld-rule", "bogus" }, "option --sld-rule must be one of official, community (got 'bogus')" },
    { { "skiplayer_slh", "--span-seed", "-1" }, "option --span-seed must be >= 0 (got -1)" },
    { { "skiplayer_slh", "--skip-blocks", "4:9" },
      "option --skip-blocks wants one span START:END (or one block N) with 0 <= START < END <= 5 (got '4:9')" },
    { { "skiplayer_slh", "--skip-blocks", "1,3" },
      "option --skip-blocks wants one span START:END (or one block N) with 0 <= START < END <= 5 (got '1,3')" },
    { { "skiplayer_slh", "--skip-blocks", "1-3" },
      "option --skip-blocks must be blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16 (got '1-3')" },
    -- the older name takes START,END and becomes --skip-blocks START:END
    { { "skiplayer_slh", "--skip-layers", "4,9" },
      "option --skip-blocks wants one span START:END (or one block N) with 0 <= START < END <= 5 (got '4:9')" },
    { { "skiplayer_slh", "--skip-layers", "4:9" },
      "option --skip-layers must be START,END (older form of --skip-blocks START:END) (got '4:9')" },
    { { "skiplayer_slh", "--alpha", "0" }, "option --alpha must be in (0, 1] (got 0)" },
    { { "logits", "--layers", "9" }, "option --layers must be layers in [0, 5] (got '9')" },
    { { "greedy", "--prompt-ids", ",,," },
      "option --prompt-ids expects comma-separated non-negative integers such as 1,2,3 (got ',,,')" },
    { { "greedy", "--prompt-ids", "0x10" },
      "option --prompt-ids expects comma-separated non-negative integers such as 1,2,3 (got '0x10')" },
    { { "greedy", "--prompt-ids", "1e2" },
      "option --prompt-ids expects comma-separated non-negative integers such as 1,2,3 (got '1e2')" },
    { { "greedy", "--prompt-ids", "1,999" }, "option --prompt-ids: id 999 out of range [0, 511]" },
    { { "repetition_penalty", "--exempt", "99999,-5" },
      "option --exempt expects comma-separated non-negative integers such as 1,2,3 (got '99999,-5')" },
    { { "repetition_penalty", "--exempt", "99999" }, "option --exempt must be token ids in [0, 511] (got '99999')" },
    { { "repetition_penalty", "--window", "-3" }, "option --window must be >= 0 (got -3)" },
    { { "eos_reward", "--factor", "-5" }, "option --factor must be > 0 (got -5)" },
    { { "eos_reward", "--mode", "cubic" }, "option --mode must be one of exp, linear (got 'cubic')" },
    { { "greedy", "--format", "xml" }, "option --format must be one of text, json (got 'xml')" },
    { { "greedy", "--max-new-tokens", "-1" }, "option --max-new-tokens must be >= 0 (got -1)" },
    { { "logit_lens", "--lang", "xx" }, "option --lang must be one of \"\", zh, ja, ko, ru, ar, hi, en (got 'xx')" },
    { { "skiplayer_sld", "--prefix-ids", "9999,3" }, "option --prefix-ids must be token ids in [0, 511] (got '9999,3')" },
    { { "skiplayer_sld", "--prefix-ids", "5" },
      "SL-D: the prefix has 1 tokens; the entropy profile needs 2 to 512 (--prefix-file, --prefix-ids)" },
    { { "logits", "--top", "0" }, "option --top must be >= 1 (got 0)" },
    { { "greedy", "--bogus", "1" }, ("unknown option --bogus (see %s/recipes/greedy.lua --help)"):format(SLUA_ROOT) },
  }
  for _, c in ipairs(cases) do usage_error(c[1], "slua: " .. c[2]) end
  -- a temperature of 0 is fine where nothing is sampled (HF only warns)
  local _, err, code = exec{ "dola", "--temperature", "0", "--max-new-tokens", "2" }
  T.eq(code, 0, "greedy DoLa ignores the temperature: " .. err)
end)

T.case("a prompt longer than the context says so and offers --truncate-prompt", function()
  local ids = {}
  for i = 1, 600 do ids[i] = 403 + i % 3 end
  local list = table.concat(ids, ",")
  usage_error({ "greedy", "--prompt-ids", list },
    "slua: option --prompt-ids: 600 tokens do not fit the model's context of 512 (--truncate-prompt keeps the last 448)")
  usage_error({ "logits", "--prompt-ids", list },
    "slua: option --prompt-ids: 600 tokens do not fit the model's context of 512 (--truncate-prompt keeps the last 512)")
  local r, err = json_run{ "greedy", "--prompt-ids", list, "--truncate-prompt", "--max-new-tokens", "32", "--format", "json" }
  T.eq(#r.prompt_ids, 480, "kept the last 512 - 32 tokens")
  T.eq(r.prompt_ids[1], ids[121], "from the left")
  T.eq(#r.new_ids, 32, "room for the new tokens")
  T.eq(err, "slua: prompt truncated to its last 480 of 600 tokens\n", "said so")
  -- the logit lens stops extending the prompt when the context is full
  r = json_run{ "logit_lens", "--prompt-ids", "1", "--max-new-tokens", "600", "--format", "json" }
  T.truthy(#r.positions <= 512, "within the context: " .. #r.positions)
end)

T.case("an eos_token_id outside the vocabulary is refused at load", function()
  local dir = model_copy("eos")
  local config = read(dir .. "/config.json"):gsub('"eos_token_id": 2', '"eos_token_id": 9999')
  local f = assert(io.open(dir .. "/config.json", "w"))
  f:write(config)
  f:close()
  local out, err, code = exec{ "greedy", "--model", dir }
  T.eq(code, 1, "exit status")
  T.eq(out, "", "stdout")
  T.eq(err, ("slua: %s/config.json: 'eos_token_id' 9999 is out of range (vocab_size 512)\n"):format(dir), "message")
end)

T.case("non-finite logits stop at the step where they appear", function()
  local dir = model_copy("nan")
  local f = assert(io.open(dir .. "/model.safetensors", "r+b"))
  local n = string.unpack("<I8", f:read(8))
  local header = assert(sl.json.decode(f:read(n)))
  f:seek("set", 8 + n + header["model.norm.weight"].data_offsets[1])
  f:write(string.pack("<I4", 0x7fc00000)) -- one NaN in the final norm
  f:close()
  for _, args in ipairs{ { "greedy" }, { "dola" }, { "skiplayer_slh", "--skip-layers", "2,4" } } do
    local recipe = args[1]
    local out, err, code = exec{ recipe, "--model", dir, "--format", "json", table.unpack(args, 2) }
    T.eq(code, 1, recipe .. " exit status")
    T.eq(out, "", recipe .. " prints no JSON")
    T.eq(err, ("slua: %s: logits are not finite at step 0 (NaN in 512 of 512 entries)\n"):format(dir), recipe .. " message")
  end
  local out, _, code = exec{ "greedy", "--model", dir }
  T.eq(code, 1, "text mode exit status")
  T.eq(out, "Once upon a time\n", "the streamed line ends before the message")
end)

T.case("what scores functions and processors return is checked, naming them", function()
  local script = SLUA_ROOT .. "/tests/data/recipes/bad_scores.lua"
  local cases = {
    short = "the scores function of bad_scores returned 10 scores, the vocabulary has 512",
    long = "the scores function of bad_scores returned 100000 scores, the vocabulary has 512",
    string = "the scores function of bad_scores returned a string, not a slua.Logits",
    ["nil"] = "the scores function of bad_scores returned nil, not a slua.Logits",
    p_short = "processor 1 (reshape) returned 10 scores, the vocabulary has 512",
    p_string = "processor 1 (reshape) returned a string, not a slua.Logits (or nil after changing the scores in place)",
  }
  for mode, message in pairs(cases) do
    local out, err, code = exec{ script, "--mode", mode, "--max-new-tokens", "3" }
    T.eq(code, 1, mode .. " exit status")
    T.eq(err, "slua: " .. message .. "\n", mode .. " message (stdout: " .. out .. ")")
  end
  local r = json_run{ script, "--mode", "p_nil", "--max-new-tokens", "3", "--format", "json" }
  T.eq(#r.new_ids, 3, "a processor working in place returns nil")
end)

-- Starts a slow generation with SLUA_PROGRESS set and sends SIGINT once it has announced
-- `steps` tokens (a count, not a delay); returns stdout, stderr without the step lines, status.
local function interrupted(args, steps)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = q(a) end
  os.remove(tmp .. "/out")   -- the wait below must not see the step lines of an earlier run
  os.remove(tmp .. "/err")
  local cmd = ("SLUA_PROGRESS=1 %s %s/tests/data/recipes/slow_greedy.lua %s >%s/out 2>%s/err & pid=$!; "
    .. "for i in $(seq 1200); do grep -qx 'slua: step %d' %s/err && break; sleep 0.05; done; kill -INT $pid; "
    .. "wait $pid; echo $? >%s/status"):format(q(slua), SLUA_ROOT, table.concat(quoted, " "), tmp, tmp, steps, tmp, tmp)
  os.execute(cmd)
  local out, err = read(tmp .. "/out"), read(tmp .. "/err")
  -- the progress lines count 1, 2, ... without a gap; the rest of stderr is returned
  local n = 0
  local rest = err:gsub("slua: step (%d+)\n", function(k)
    n = n + 1
    T.eq(tonumber(k), n, "step lines in order")
    return ""
  end)
  T.truthy(n >= steps, ("announced %d steps before the signal"):format(n))
  return out, rest, tonumber(read(tmp .. "/status"))
end

T.case("Ctrl-C prints what was generated and exits with 130", function()
  local out, err, code = interrupted({ "--format", "json", "--max-new-tokens", "500", "--delay", "0.02" }, 3)
  T.eq(code, 130, "exit status")
  T.eq(err, "slow_greedy: started\n\nslua: interrupted\n", "stderr")
  local r = assert(sl.json.decode(out), "one JSON object: " .. out)
  T.eq(r.stop_reason, "interrupted", "stop reason")
  T.truthy(#r.new_ids > 0 and #r.new_ids < 500, "part of the generation: " .. #r.new_ids)
  T.eq(#r.steps, #r.new_ids, "a step record per token")
  out, err, code = interrupted({ "--max-new-tokens", "500", "--delay", "0.02" }, 3)
  T.eq(code, 130, "text mode exit status: " .. err)
  T.truthy(out:find("^Once upon a time, there was") and out:sub(-1) == "\n", "text mode keeps the text: " .. out)
end)

T.case("help lists the options a recipe reads, with their rules, and --config", function()
  local out, _, code = exec{ "logits", "--help" }
  T.eq(code, 0, "exit status")
  for _, absent in ipairs{ "--max-new-tokens", "--seed", "--stop" } do
    T.truthy(not out:find(absent, 1, true), "logits does not read " .. absent)
  end
  T.truthy(out:find("--layers", 1, true) and out:find("--config FILE.json", 1, true), out)
  out = exec{ "logit_lens", "--help" }
  T.truthy(not out:find("--seed", 1, true) and not out:find("--stop", 1, true), "logit_lens reads neither")
  T.truthy(out:find("--max-new-tokens", 1, true), "but reads --max-new-tokens")
  out = exec{ "sample", "--help" }
  T.truthy(out:find("%-%-top%-p%s+1%s+keep the smallest set with probability >= p %(1 = off%) %[in %[0, 1%]%]"), out)
  T.truthy(out:find("%-%-threads%s+0%s+CPU threads, at most 256"), out)
  out = exec{ "--help" }
  T.truthy(out:find("--config FILE.json", 1, true), "the host's usage documents --config")
end)

T.case("--list shows each recipe's whole first paragraph", function()
  local out = exec{ "--list" }
  T.truthy(out:find("repetition_penalty%s+Greedy decoding with the CTRL repetition penalty %(Keskar et al. 2019, "
    .. "arXiv 1909.05858; HF RepetitionPenaltyLogitsProcessor%)%.\n"), out)
end)

T.case("--config reads options from a JSON object; flags override it", function()
  local conf = tmp .. "/conf.json"
  local f = assert(io.open(conf, "w"))
  f:write('{"max_new_tokens": 3, "top-k": 1, "prompt": "Lily"}')
  f:close()
  local r = json_run{ "sample", "--config", conf, "--max-new-tokens", "2", "--format", "json" }
  T.eq(#r.new_ids, 2, "the flag after --config wins")
  T.eq(r.options.top_k, 1, "dashes and underscores are the same")
  T.eq(r.options.prompt, "Lily", "strings")
  f = assert(io.open(conf, "w"))
  f:write('{"top_p": 2}')
  f:close()
  usage_error({ "sample", "--config", conf }, "slua: option --top-p must be in [0, 1] (got 2)")
  f = assert(io.open(conf, "w"))
  f:write('[1, 2]')
  f:close()
  usage_error({ "sample", "--config", conf }, ("slua: option --config: %s: not a JSON object"):format(conf))
end)

os.execute("rm -rf " .. q(tmp))
T.finish()
