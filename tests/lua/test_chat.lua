-- Chatting: tokenizer_config.json templates and special tokens, model:apply_chat_template, the
-- chat flags of every recipe, generation_config.json defaults, KV reuse across turns (a 5-turn
-- conversation evaluates each token once) and `slua chat` in a pseudo-terminal.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local conversation = require "slua.chat.conversation"

local slua = arg[1] or "build/slua"
local STORIES = SLUA_ROOT .. "/models/stories260K"
local LLAMA2 = sl.chat.bundled_template("llama-2")
local CHATML = sl.chat.bundled_template("chatml")

local write = T.write

-- A copy of stories260K (weights linked) with the given tokenizer_config / generation_config.
local function model_dir(tokenizer_config, generation_config)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute(("mkdir -p %q"):format(dir)))
  for _, f in ipairs({ "config.json", "model.safetensors", "tokenizer.json" }) do
    assert(os.execute(("ln -s %q %q"):format(STORIES .. "/" .. f, dir .. "/" .. f)))
  end
  if tokenizer_config then write(dir .. "/tokenizer_config.json", tokenizer_config) end
  if generation_config then write(dir .. "/generation_config.json", generation_config) end
  return dir
end

local function json_string(s) return sl.json.encode(s) end

local function run_json(args)
  local out, ok = T.run(("%s %s --format json"):format(slua, args))
  if not ok then error("failed:\n" .. out, 2) end
  return assert(sl.json.decode(out:match("[^\n]*$") ~= "" and out:match("[^\n]*$") or out:match("([^\n]*)\n$")))
end

local function expect_failure(args, needle)
  local out, ok = T.run(("%s %s"):format(slua, args))
  T.truthy(not ok, args .. " fails")
  T.truthy(out:find("^slua: ") and out:find(needle, 1, true), "message: " .. out)
  T.truthy(not out:find("traceback", 1, true), "no traceback: " .. out)
end

local tc_llama2 = ('{"bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"}, "eos_token": "</s>",'
  .. ' "unk_token": "<unk>", "pad_token": null, "add_bos_token": true, "chat_template": %s}'):format(json_string(LLAMA2))
local dir_llama2 = model_dir(tc_llama2)

T.case("apply_chat_template: one BOS when the template writes it", function()
  local model <close> = assert(sl.load(dir_llama2))
  local text, ids = model:apply_chat_template({ { role = "user", content = "Hi there" } }, { add_generation_prompt = true })
  T.eq(text, "<s>[INST] Hi there [/INST]", "text")
  T.eq(ids[1], model.tokenizer:bos(), "starts with BOS")
  T.truthy(ids[2] ~= model.tokenizer:bos(), "a single BOS")
  T.eq(table.concat(ids, ","), table.concat(model.tokenizer:encode(text:sub(4), { special = true }), ","),
    "the rest encodes as the text after the BOS")
  local cfg = assert(sl.chat.config(dir_llama2))
  T.eq(cfg.special.bos_token, "<s>", "AddedToken content")
  T.eq(cfg.special.pad_token, nil, "null token left out")
  T.eq(cfg.add_bos_token, true, "add_bos_token")
  local none, err = model:apply_chat_template({ { role = "assistant", content = "x" } })
  T.eq(none, nil, "rejected")
  T.eq(err, "Conversation roles must alternate user/assistant/user/assistant/...", "raise_exception message")
end)

T.case("named templates: default, tool_use with tools, and a choice by name", function()
  local tc = ('{"eos_token": "</s>", "chat_template": [{"name": "default", "template": "D{{ messages | length }}"},'
    .. ' {"name": "tool_use", "template": "T{{ tools | tojson }}"}, {"name": "rag", "template": "R"}]}')
  local dir = model_dir(tc)
  local model <close> = assert(sl.load(dir))
  T.eq((model:apply_chat_template({ { role = "user", content = "a" } })), "D1", "default")
  T.eq((model:apply_chat_template({}, { tools = { { name = "f" } } })), 'T[{"name": "f"}]', "tool_use when tools are given")
  T.eq((model:apply_chat_template({}, { template = "rag" })), "R", "by name")
  T.eq((model:apply_chat_template({}, { template = "{{ eos_token }}!" })), "</s>!", "template text")
  T.eq((model:apply_chat_template({ { role = "user", content = "q" } }, { template = "chatml", add_generation_prompt = true })),
    "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", "bundled template")
  local _, err = model:apply_chat_template({}, { template = "nope" })
  T.truthy(err:find("'nope' is not a template", 1, true), err)
  local dir2 = model_dir('{"chat_template": [{"name": "tool_use", "template": "x"}]}')
  local m2 <close> = assert(sl.load(dir2))
  local _, err2 = m2:apply_chat_template({})
  T.truthy(err2:find("none is 'default'", 1, true), err2)
  local dir3 = model_dir('{"chat_template": 5}')
  local m3 <close> = assert(sl.load(dir3))
  local _, err3 = m3:apply_chat_template({})
  T.truthy(err3:find("chat_template must be a string", 1, true), err3)
end)

T.case("--chat, --system, --messages, --chat-template, --no-chat-template", function()
  local r = run_json(("greedy --model %s --chat 'Hi there' --max-new-tokens 3"):format(dir_llama2))
  local model <close> = assert(sl.load(dir_llama2))
  local _, ids = model:apply_chat_template({ { role = "user", content = "Hi there" } }, { add_generation_prompt = true })
  T.eq(table.concat(r.prompt_ids, ","), table.concat(ids, ","), "prompt ids are the template's")
  T.eq(r.options.chat, "Hi there", "listed in options")
  local s = run_json(("greedy --model %s --chat 'Hi' --system 'Be brief.' --max-new-tokens 2"):format(dir_llama2))
  local _, ids2 = model:apply_chat_template({ { role = "system", content = "Be brief." }, { role = "user", content = "Hi" } },
    { add_generation_prompt = true })
  T.eq(table.concat(s.prompt_ids, ","), table.concat(ids2, ","), "system turn first")
  local file = os.tmpname()
  write(file, '{"messages": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}], "tools": [{"z": 1, "a": 2}]}')
  local tpl = os.tmpname()
  write(tpl, "{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}{{ tools | tojson }}")
  local m = run_json(("greedy --messages %s --chat C --chat-template %s --max-new-tokens 2"):format(file, tpl))
  local plain = sl.load_tokenizer(STORIES .. "/tokenizer.json")
  T.eq(table.concat(m.prompt_ids, ","),
    table.concat(plain:encode('user=A;assistant=B;user=C;[{"z": 1, "a": 2}]', { special = false }), ","),
    "messages file, appended turn, tools in key order")
  local n = run_json(("greedy --chat Hello --system Sys --no-chat-template --max-new-tokens 2"))
  T.eq(table.concat(n.prompt_ids, ","), table.concat(plain:encode("Sys\n\nHello", { special = true }), ","), "plain text")
  os.remove(file)
  os.remove(tpl)
  expect_failure("greedy --chat hi", "has no chat template")
  expect_failure("greedy --chat hi --chat-template nope", "'nope' is not a template")
  expect_failure("greedy --system hi", "option --system needs --chat")
  expect_failure("greedy --messages /nonexistent.json", "cannot read '/nonexistent.json'")
  expect_failure(("greedy --model %s --chat hi --chat-template llama-2 --messages %s"):format(dir_llama2, STORIES .. "/config.json"),
    "expected a list of messages")
  expect_failure("greedy --chat hi --chat-template '{% if %}'", "line 1, column 7")
  expect_failure(("greedy --model %s --messages %s"):format(dir_llama2, (function()
    local f = os.tmpname(); write(f, '[{"role": "assistant", "content": "x"}]'); return f end)()),
    "chat template: Conversation roles must alternate")
end)

T.case("generation_config.json defaults, overridden by flags", function()
  local dir = model_dir(nil, '{"do_sample": true, "temperature": 0.7, "top_k": 5, "top_p": 0.9, "max_new_tokens": 6,'
    .. ' "repetition_penalty": 1.1, "eos_token_id": [2, 7], "bos_token_id": 1}')
  local r = run_json(("sample --model %s --prompt 'Once'"):format(dir))
  T.eq(r.options.temperature, 0.7, "temperature")
  T.eq(r.options.top_k, 5, "top_k")
  T.eq(r.options.top_p, 0.9, "top_p")
  T.eq(r.options.repetition_penalty, 1.1, "repetition_penalty")
  T.eq(r.options.max_new_tokens, 6, "max_new_tokens")
  T.truthy(#r.new_ids <= 6, "max_new_tokens applies")
  local o = run_json(("sample --model %s --prompt 'Once' --temperature 1.3 --max-new-tokens 3 --top-k 0"):format(dir))
  T.eq(o.options.temperature, 1.3, "flag wins")
  T.eq(o.options.top_k, 0, "flag wins over top_k")
  T.eq(#o.new_ids <= 3, true, "flag max_new_tokens")
  local g = run_json(("greedy --model %s --prompt 'Once'"):format(dir))
  T.eq(g.options.temperature, nil, "greedy has no temperature")
  T.eq(g.options.max_new_tokens, 6, "greedy takes max_new_tokens")
  local d = run_json(("dola --model %s --prompt 'Once' --dola-layers 2"):format(dir))
  T.eq(d.options.do_sample, true, "dola takes do_sample")
  local cs = run_json(("contrastive_search --model %s --prompt 'Once'"):format(dir))
  T.eq(cs.options.eos_token_id, "2,7", "eos ids listed where the recipe takes --eos-token-id")
  local cs2 = run_json(("contrastive_search --model %s --prompt 'Once' --eos-token-id 5"):format(dir))
  T.eq(cs2.options.eos_token_id, "5", "the flag wins")
  local bad = model_dir(nil, '{"temperature": "hot"}')
  expect_failure(("sample --model %s"):format(bad), "'temperature' must be number")
  local broken = model_dir(nil, '{"temperature": ')
  expect_failure(("greedy --model %s"):format(broken), "generation_config.json")
end)

T.case("five turns evaluate each conversation token once", function()
  local model <close> = assert(sl.load())
  local opt = sl.run_options({ "--max-new-tokens", "12" }, {})
  local conv = conversation.new(model, sl.recipe{ name = "greedy", sample = false }, opt,
                                { template = CHATML, system = "You tell stories." })
  local pos_before = 0
  for i, text in ipairs({ "Hi", "Tell me about a cat.", "What happened next?", "And the dog?", "The end?" }) do
    conv:add("user", text)
    local reused_before = conv.stats.reused
    local reply, why = conv:reply()
    T.truthy(reply and #reply > 0, "turn " .. i .. " replies (" .. tostring(why) .. ")")
    T.eq(conv.stats.reused - reused_before, pos_before, "turn " .. i .. " reuses the whole cache")
    pos_before = conv.ctx.session:pos()
  end
  local s = conv.stats
  T.eq(s.turns, 5, "turns")
  T.eq(s.rewound, 0, "nothing rewound")
  T.eq(s.prefilled + s.stepped, conv.ctx.session:pos(), "every cached token evaluated once")
  -- the cache is the prefix of the conversation as the template renders it now
  local _, ids = model:apply_chat_template(conv:turns(), { template = CHATML })
  local cached = conv.ctx.session:tokens()
  for k = 1, #cached do T.eq(cached[k], ids[k], "cached token " .. k) end
  -- a changed system prompt re-evaluates from the first difference only
  conv.system = "You tell long stories."
  conv:add("user", "Again")
  local prefix = 0
  local _, ids2 = model:apply_chat_template(conv:turns(), { template = CHATML, add_generation_prompt = true })
  while cached[prefix + 1] == ids2[prefix + 1] do prefix = prefix + 1 end
  local reused = s.reused
  conv:reply()
  T.eq(s.reused - reused, prefix, "reuse up to the first difference")
  T.truthy(prefix > 0 and s.rewound > 0, "rewound after the edit")
end)

T.case("slua chat in a pseudo-terminal: streaming, Ctrl-C, /save", function()
  local out = os.tmpname()
  local log, ok = T.run(("bash %s/tests/lua/chat_pty.sh %s %s --chat-template chatml --recipe %s --max-new-tokens 120 --stats")
    :format(SLUA_ROOT, slua, out, SLUA_ROOT .. "/tests/data/chat/slow_greedy.lua"))
  T.truthy(ok, "pty script: " .. log)
  local f = assert(io.open(out))
  local transcript = f:read("a")
  f:close()
  T.truthy(transcript:find("[stopped]", 1, true), "Ctrl-C stopped the reply")
  T.truthy(transcript:find("turns 2, tokens in cache", 1, true), "the chat went on")
  local saved = T.json_file(out .. ".saved.json")
  T.eq(#saved.messages, 4, "saved messages")
  T.eq(saved.messages[3].content, "again", "user turn saved")
  os.remove(out)
  os.remove(out .. ".saved.json")
end)

T.case("slua chat with DoLa's decoder, piped", function()
  local saved = os.tmpname()
  local out, ok = T.run(("printf 'Hi\\n/system Be kind.\\nMore\\n/save %s\\n/reset\\n/stats\\n' | %s chat --chat-template llama-2"
    .. " --recipe dola --dola-layers 2 --max-new-tokens 6 --stats --system 'Be brief.'"):format(saved, slua))
  T.truthy(ok, out)
  T.truthy(out:find("decoder dola", 1, true), out)
  T.truthy(out:find("(system prompt set)", 1, true), out)
  T.truthy(out:find("(conversation cleared)", 1, true), out)
  T.truthy(out:find("turns 2", 1, true), out)
  local conv = T.json_file(saved)
  T.eq(conv.messages[1].role, "system", "system turn first")
  T.eq(conv.messages[1].content, "Be kind.", "/system replaced --system")
  T.eq(#conv.messages, 5, "system + 2 exchanges")
  os.remove(saved)
  local bad, ok2 = T.run(("printf 'Hi\\n' | %s chat --recipe nope"):format(slua))
  T.truthy(not ok2 and bad:find("^slua: "), bad)
  local own, ok4 = T.run(("printf 'Hi\\n' | %s chat --chat-template chatml --recipe beam_search"):format(slua))
  T.truthy(not ok4 and own:find("runs its own decoding loop", 1, true) and not own:find("Once upon", 1, true), own)
  local none, ok3 = T.run(("printf 'Hi\\n' | %s chat"):format(slua))
  T.truthy(not ok3 and none:find("has no chat template", 1, true), none)
end)

T.finish()
