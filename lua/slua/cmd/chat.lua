-- Chat with a model in the terminal, through its chat template, keeping the KV cache between turns.
--
-- Usage: slua chat [--model DIR] [--recipe greedy|sample|dola|skiplayer_sld|...] [--system TEXT]
--        [--chat-template FILE|NAME] [--max-new-tokens 256] [--stats] [the recipe's flags]
-- Each line you type is a user turn; the reply streams as it is decoded by the recipe's decoder
-- (its scores, processors and sampling; default greedy). Only the new turn is evaluated: the
-- re-rendered conversation is compared with the cached tokens and evaluated from the first
-- difference. Commands: /reset (forget the conversation), /system TEXT (set the system prompt),
-- /save FILE.json (the messages, as --messages reads them), /stats, /quit. Ctrl-C stops a reply
-- and keeps the chat; Ctrl-D or /quit leaves. --stats prints token counts after each reply.
-- A reply cut by the end of the context says so. --context-shift (the default; --no-context-shift
-- turns it off) drops the oldest turns after the system prompt when the conversation no longer
-- leaves room for a reply, and says how many.
local sl = require "slua"
local recipe_of = require "slua.recipe"
local conversation = require "slua.chat.conversation"

-- Flags of the chat itself; the rest go to the recipe, which validates them.
local recipe, system, show_stats, context_shift, recipe_argv = "greedy", "", false, true, {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local v = a:match("^%-%-recipe=(.*)$")
    if v then recipe = v
    elseif a == "--recipe" then recipe = arg[i + 1] or sl.fail("option --recipe needs a value", 2); i = i + 1
    elseif a:match("^%-%-system=") then system = a:match("^%-%-system=(.*)$")
    elseif a == "--system" then system = arg[i + 1] or sl.fail("option --system needs a value", 2); i = i + 1
    elseif a == "--stats" then show_stats = true
    elseif a == "--context-shift" then context_shift = true
    elseif a == "--no-context-shift" then context_shift = false
    elseif a == "--help" then
      local f = io.open(arg[0])
      for line in f:lines() do
        if not line:match("^%-%-") then break end
        io.write((line:gsub("^%-%-%s?", "")), "\n")
      end
      f:close()
      os.exit(0, true)
    else recipe_argv[#recipe_argv + 1] = a end
    i = i + 1
  end
end
local has_max = false
for _, a in ipairs(recipe_argv) do if a:match("^%-%-max[-_]new[-_]tokens") then has_max = true end end
if not has_max then table.insert(recipe_argv, "--max-new-tokens"); table.insert(recipe_argv, "256") end

-- The recipe's value gives the decoder (its session, scores, processors and sampling); one with
-- a loop of its own (beam search, speculative decoding) cannot take turns.
local loaded, decoder = pcall(recipe_of.load, recipe)
if not loaded then
  sl.fail(("--recipe %s: %s"):format(recipe, type(decoder) == "table" and decoder.message or tostring(decoder)), 2)
end
if decoder.spec.run then
  sl.fail(("--recipe %s: the recipe runs its own decoding loop, not the one-token loop, so it cannot take turns in a chat")
    :format(recipe), 2)
end
local opt = decoder:options(recipe_argv)
if opt.chat ~= "" or opt.messages ~= "" then sl.fail("slua chat reads the turns from the terminal (no --chat / --messages)", 2) end
sl.set_threads(opt.threads)
local model = sl.check(sl.load(opt.model ~= "" and opt.model or nil, sl.load_options(opt)))
if not model.tokenizer then sl.fail(model.path .. ": no tokenizer.json") end
local template = opt.chat_template ~= "" and opt.chat_template or nil
do -- fail now, not at the first turn, when there is no template to use
  local cfg = sl.check(sl.chat.config(model.path))
  if not (template and template:find("{", 1, true)) then sl.check(sl.chat.select_template(cfg, template, false)) end
end
local conv = conversation.new(model, decoder, opt, { system = system, template = template,
                                                    context_shift = context_shift })

local function stats_line()
  local s = conv.stats
  return ("[turns %d, tokens in cache %d: reused %d, prefilled %d, stepped %d, rewound %d]"):format(
    s.turns, conv.ctx.session:pos(), s.reused, s.prefilled, s.stepped, s.rewound)
end

io.write(("slua chat: %s, decoder %s (/quit to leave, Ctrl-C stops a reply)\n"):format(model.path, recipe))
while true do
  io.write("> ")
  io.flush()
  local ok, line = pcall(io.read, "l")
  if not ok then
    io.write("\n(Ctrl-D or /quit leaves)\n")
    goto continue
  end
  if line == nil then io.write("\n"); break end
  line = line:gsub("^%s+", ""):gsub("%s+$", "")
  if line == "" then goto continue end
  if line:sub(1, 1) == "/" then
    local cmd, rest = line:match("^/(%S+)%s*(.*)$")
    if cmd == "quit" or cmd == "exit" then break
    elseif cmd == "reset" then conv:reset(); io.write("(conversation cleared)\n")
    elseif cmd == "system" then conv.system = rest; io.write(rest == "" and "(no system prompt)\n" or "(system prompt set)\n")
    elseif cmd == "save" then
      if rest == "" then io.write("usage: /save FILE.json\n")
      else
        local f, err = io.open(rest, "w")
        if not f then io.write("cannot save: ", err, "\n")
        else f:write(conv:to_json(), "\n"); f:close(); io.write(("(saved %d messages to %s)\n"):format(#conv.messages, rest)) end
      end
    elseif cmd == "stats" then io.write(stats_line(), "\n")
    else io.write("commands: /reset, /system TEXT, /save FILE.json, /stats, /quit\n") end
    goto continue
  end
  conv:add("user", line)
  do
    local reply, why = conv:reply(function(piece) io.write(piece); io.flush() end, function(dropped)
      io.write(("(%d oldest turn%s dropped to make room in the context)\n"):format(dropped, dropped == 1 and "" or "s"))
    end)
    if reply == nil then
      table.remove(conv.messages)
      io.write("slua: ", why, "\n")
    else
      io.write(why == "interrupted" and " [stopped]\n"
        or why == "context_full" and " [cut: the context is full]\n" or "\n")
      io.stdout:flush()   -- the reply's line ends before the stats line when both go to one file
      if show_stats then io.stderr:write(stats_line(), "\n") end
    end
  end
  ::continue::
end
io.stdout:flush()
if show_stats then io.stderr:write(stats_line(), "\n") end
