-- The search and sampler recipes (beam_search, contrastive_search, speculative, llama_samplers,
-- sample's HF warpers) on the command line as every recipe behaves: option rules checked where
-- they are parsed (one line, exit 2) and listed by --help, texts that keep the space after the
-- prompt, non-finite logits named, Ctrl-C handing over the complete JSON, and sl.invoke
-- returning results instead of printing them.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local q, read = T.q, T.read

-- exec(args) runs slua (a recipe name or path first); json_run(args) decodes what it printed.
local cli = T.cli(slua, tmp)
local exec, json_run = cli.exec, cli.json

T.case("each option family of the decoders is checked where it is parsed: one line, exit 2", function()
  local cases = {
    { { "beam_search", "--num-beams", "0" }, "option --num-beams must be >= 1 (got 0)" },
    { { "beam_search", "--num-beams", "2", "--num-return-sequences", "3" },
      "option --num-return-sequences must be <= --num-beams (2) (got 3)" },
    { { "beam_search", "--num-return-sequences", "0" }, "option --num-return-sequences must be >= 1 (got 0)" },
    { { "beam_search", "--num-beam-groups", "3", "--diversity-penalty", "0.5" },
      "option --num-beams must be a multiple of --num-beam-groups (3) (got 4)" },
    { { "beam_search", "--num-beam-groups", "0" }, "option --num-beam-groups must be >= 1 (got 0)" },
    { { "beam_search", "--num-beam-groups", "2" },
      "option --diversity-penalty must be > 0 when --num-beam-groups > 1 (got 0)" },
    { { "beam_search", "--diversity-penalty", "-1" }, "option --diversity-penalty must be >= 0 (got -1)" },
    { { "beam_search", "--early-stopping", "maybe" },
      "option --early-stopping must be one of false, true, never (got 'maybe')" },
    { { "beam_search", "--length-penalty", "x" }, "option --length-penalty expects a number (got 'x')" },
    { { "beam_search", "--eos-token-id", "-1" },
      "option --eos-token-id expects comma-separated non-negative integers such as 1,2,3 (got '-1')" },
    { { "beam_search", "--eos-decay-factor", "0" }, "option --eos-decay-factor must be > 0 (got 0)" },
    { { "beam_search", "--no-repeat-ngram-size", "-2" }, "option --no-repeat-ngram-size must be >= 0 (got -2)" },
    { { "contrastive_search", "--top-k", "0" }, "option --top-k must be >= 1 (got 0)" },
    { { "contrastive_search", "--penalty-alpha", "1.5" }, "option --penalty-alpha must be in [0, 1] (got 1.5)" },
    { { "contrastive_search", "--eos-token-id", "2,x" },
      "option --eos-token-id expects comma-separated non-negative integers such as 1,2,3 (got '2,x')" },
    { { "speculative", "--draft-tokens", "0" }, "option --draft-tokens must be >= 1 (got 0)" },
    { { "speculative", "--draft-skip-blocks", "2-4" },
      "option --draft-skip-blocks must be blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16 (got '2-4')" },
    { { "speculative", "--draft-skip-blocks", "9" },
      "option --draft-skip-blocks must be blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16, in [0, 4], not all of them (got '9')" },
    { { "speculative", "--draft-skip-blocks", "0:5" },
      "option --draft-skip-blocks must be blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16, in [0, 4], not all of them (got '0:5')" },
    -- the older name takes its older form (closed ranges) and becomes --draft-skip-blocks
    { { "speculative", "--draft-skip-layers", "2-x" },
      "option --draft-skip-layers must be blocks or ranges such as 2,3 or 8-15 (older form of --draft-skip-blocks 2,3 or 8:16) (got '2-x')" },
    { { "speculative", "--draft-skip-layers", "9" },
      "option --draft-skip-blocks must be blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16, in [0, 4], not all of them (got '9')" },
    { { "speculative", "--draft-skip-layers", "0-4" },
      "option --draft-skip-blocks must be blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16, in [0, 4], not all of them (got '0:5')" },
    { { "speculative", "--do-sample", "--temperature", "0" }, "option --temperature must be > 0 when sampling (got 0)" },
    { { "speculative", "--top-p", "2" }, "option --top-p must be in [0, 1] (got 2)" },
    { { "llama_samplers", "--temperature", "0" }, "option --temperature must be > 0 when sampling (got 0)" },
    { { "llama_samplers", "--dry-base", "0.5" }, "option --dry-base must be >= 1 (got 0.5)" },
    { { "llama_samplers", "--dry-allowed-length", "0" }, "option --dry-allowed-length must be >= 1 (got 0)" },
    { { "llama_samplers", "--dry-penalty-last-n", "-1" }, "option --dry-penalty-last-n must be >= 0 (got -1)" },
    { { "llama_samplers", "--mirostat-tau", "-1" }, "option --mirostat-tau must be >= 0 (got -1)" },
    { { "llama_samplers", "--xtc-probability", "2" }, "option --xtc-probability must be in [0, 1] (got 2)" },
    { { "llama_samplers", "--xtc-threshold", "-0.5" }, "option --xtc-threshold must be in [0, 1] (got -0.5)" },
    { { "llama_samplers", "--top-n-sigma", "-1" }, "option --top-n-sigma must be >= 0 (got -1)" },
    { { "sample", "--typical-p", "0" }, "option --typical-p must be in (0, 1] (got 0)" },
    { { "sample", "--epsilon-cutoff", "1" }, "option --epsilon-cutoff must be in [0, 1) (got 1)" },
    { { "sample", "--eta-cutoff", "-0.1" }, "option --eta-cutoff must be in [0, 1) (got -0.1)" },
  }
  for _, c in ipairs(cases) do
    local out, err, code = exec(c[1])
    local what = table.concat(c[1], " ")
    T.eq(code, 2, what .. ": exit status")
    T.eq(out, "", what .. ": stdout")
    T.eq(err, "slua: " .. c[2] .. "\n", what .. ": message")
  end
  -- HF's JSON booleans work for --early-stopping in a --config file
  local conf = tmp .. "/conf.json"
  local f = assert(io.open(conf, "w"))
  f:write('{"early_stopping": true, "max_new_tokens": 2}')
  f:close()
  T.eq(json_run{ "beam_search", "--config", conf, "--format", "json" }.options.early_stopping, "true", "true")
end)

T.case("--help lists each decoder option with its help and its rule", function()
  local want = {
    beam_search = { "%-%-num%-beams%s+4%s+beams kept at each step %[>= 1; a multiple of %-%-num%-beam%-groups%]",
                    "%-%-num%-return%-sequences%s+1%s+sequences returned, best first %[>= 1; <= %-%-num%-beams%]",
                    "%-%-diversity%-penalty%s+0%s+diverse beam search: .- %[>= 0; > 0 when %-%-num%-beam%-groups > 1%]",
                    "%-%-early%-stopping%s+false%s+.- %[one of false, true, never%]",
                    "%-%-eos%-token%-id%s+%S+%s+end%-of%-sequence ids", "%-%-eos%-decay%-factor%s+1%s+EOS reward" },
    contrastive_search = { "%-%-top%-k%s+4%s+candidates evaluated at each step %[>= 1%]",
                           "%-%-penalty%-alpha%s+0%.6%s+contrastive search: .- %[in %[0, 1%]%]" },
    speculative = { "%-%-draft%-tokens%s+4%s+tokens the draft proposes per round %[>= 1%]",
                    "%-%-draft%-skip%-blocks%s+\"\"%s+blocks the draft skips.- %[N, A:B = blocks A to B%-1, or a list of them%]",
                    "%-%-draft%-skip%-layers%s+\"\"%s+older name of %-%-draft%-skip%-blocks", "%-%-draft%-model%s+\"\"" },
    llama_samplers = { "%-%-dry%-base%s+1%.75%s+DRY: .- %[>= 1%]", "%-%-mirostat%-tau%s+0%s+mirostat v2: .- %[>= 0%]",
                       "%-%-xtc%-threshold%s+0%.1%s+XTC: .- %[in %[0, 1%]%]", "%-%-dry%-breakers%s+\\n|:|\"|%*%s+DRY" },
    sample = { "%-%-typical%-p%s+1%s+.- %[in %(0, 1%]%]", "%-%-epsilon%-cutoff%s+0%s+.- %[in %[0, 1%)%]",
               "%-%-eta%-cutoff%s+0%s+.- %[in %[0, 1%)%]" },
  }
  for recipe, patterns in pairs(want) do
    local out, _, code = exec{ recipe, "--help" }
    T.eq(code, 0, recipe .. " --help exit status")
    for _, p in ipairs(patterns) do T.truthy(out:find(p), recipe .. " lists " .. p .. ":\n" .. out) end
  end
end)

T.case("search results keep the space after the prompt (HF decode(prompt + new) past the prompt)", function()
  for _, recipe in ipairs{ "beam_search", "speculative" } do
    local out, err, code = exec{ recipe, "--prompt", "Once upon a time,", "--max-new-tokens", "4" }
    T.eq(code, 0, recipe .. ": " .. err)
    T.eq(out, "Once upon a time, there was a little\n", recipe .. " text")
    local r = json_run{ recipe, "--prompt", "Once upon a time,", "--max-new-tokens", "4", "--format", "json" }
    T.eq(r.text, " there was a little", recipe .. " JSON text")
    T.eq(r.sequences[1].text, r.text, recipe .. " sequence text")
  end
end)

T.case("non-finite logits stop beam search and speculative decoding, naming the model", function()
  local dir = tmp .. "/nan"
  assert(os.execute(("rm -rf %s && cp -r %s %s"):format(q(dir), q(SLUA_ROOT .. "/models/stories260K"), q(dir))))
  local f = assert(io.open(dir .. "/model.safetensors", "r+b"))
  local n = string.unpack("<I8", f:read(8))
  local header = assert(sl.json.decode(f:read(n)))
  f:seek("set", 8 + n + header["model.norm.weight"].data_offsets[1])
  f:write(string.pack("<I4", 0x7fc00000)) -- one NaN in the final norm
  f:close()
  local cases = { beam_search = dir, speculative = "the draft of " .. dir, contrastive_search = dir }
  for recipe, who in pairs(cases) do
    local out, err, code = exec{ recipe, "--model", dir, "--format", "json" }
    T.eq(code, 1, recipe .. " exit status")
    T.eq(out, "", recipe .. " prints no JSON")
    T.eq(err, ("slua: %s: logits are not finite at step 0 (NaN in 512 of 512 entries)\n"):format(who), recipe .. " message")
  end
end)

-- Starts tests/data/recipes/slow_beam.lua with SLUA_PROGRESS set and sends SIGINT once it has
-- announced `steps` complete steps (a count, not a delay); returns stdout, stderr without the
-- step lines, status.
local function interrupted(args, steps)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = q(a) end
  os.remove(tmp .. "/out")   -- the wait below must not see the step lines of an earlier run
  os.remove(tmp .. "/err")
  local cmd = ("SLUA_PROGRESS=1 %s %s/tests/data/recipes/slow_beam.lua %s >%s/out 2>%s/err & pid=$!; "
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

T.case("Ctrl-C during a beam search prints the complete JSON so far and exits with 130", function()
  local out, err, code = interrupted({ "--format", "json", "--max-new-tokens", "400", "--num-return-sequences", "2" }, 3)
  T.eq(code, 130, "exit status")
  T.eq(err, "slow_beam: started\n\nslua: interrupted\n", "stderr")
  local r = assert(sl.json.decode(out), "one JSON object: " .. out)
  T.eq(r.stop_reason, "interrupted", "stop reason")
  T.eq(r.recipe, "slow_beam", "recipe")
  T.eq(#r.sequences, 2, "the best hypotheses so far")
  T.truthy(#r.new_ids > 0 and #r.new_ids < 400, "part of the search: " .. #r.new_ids)
  T.eq(table.concat(r.new_ids, ","), table.concat(r.sequences[1].new_ids, ","), "new_ids = the best sequence")
  T.truthy(r.text:find("^, there was") and r.sequences[1].text == r.text, "its text: " .. r.text)
  out, err, code = interrupted({ "--max-new-tokens", "400" }, 3)
  T.eq(code, 130, "text mode exit status: " .. err)
  T.truthy(out:find("^Once upon a time, there was") and out:sub(-1) == "\n", "text mode keeps the text: " .. out)
end)

T.case("sl.invoke of beam_search returns its result table and prints nothing", function()
  local cli = json_run{ "beam_search", "--max-new-tokens", "6", "--num-beams", "3", "--num-return-sequences", "2",
                        "--format", "json" }
  local script = tmp .. "/invoke.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local sl = require "slua"
local model <close> = sl.check(sl.load())
local results = sl.invoke("beam_search", { max_new_tokens = 6, num_beams = 3, num_return_sequences = 2 },
                          { model = model })
io.stderr:write(sl.json.encode(results))
]])
  f:close()
  local out, err, code = exec{ script }
  T.eq(code, 0, "exit status: " .. err)
  T.eq(out, "", "nothing printed")
  local results = assert(sl.json.decode(err), err)
  T.eq(#results, 1, "one search")
  local r = results[1]
  T.eq(r.recipe, "beam_search", "recipe")
  T.eq(#r.sequences, 2, "two sequences")
  for k = 1, 2 do
    T.eq(table.concat(r.sequences[k].new_ids, ","), table.concat(cli.sequences[k].new_ids, ","), "sequence " .. k)
    T.eq(r.sequences[k].score, cli.sequences[k].score, "score " .. k)
  end
  T.eq(r.text, cli.text, "same text")
  T.eq(r.options.num_beams, 3, "options as given")
end)

os.execute("rm -rf " .. q(tmp))
T.finish()
