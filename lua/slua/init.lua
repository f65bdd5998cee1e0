-- slua: the Lua front end over the C core (slua.core).
--
--   local sl = require "slua"
--   local model <close> = sl.check(sl.load("models/stories260K"))
--   local s <close> = model:session{ layers = {2, 4}, raw = true }
--   local out = s:prefill(model.tokenizer:encode("Once upon a time", { special = true }))
--   print(out.logits:argmax(), out:layer_logits(2):argmax())
--
-- Conventions: token ids are 0-based as in tokenizer.json (logits:get(id)); token sequences are
-- ordinary Lua arrays; layers follow HF hidden_states numbering (0 = embeddings, N = final).
-- Environment failures return nil, message, code; misuse raises.
local util = require "slua.util"

-- Everything of the bottom layer (failures, loading, options, processors and chains), then
-- what is built on it.
local M = {}
for k, v in pairs(util) do M[k] = v end

M.chat = require "slua.chat"  -- chat templates (model:apply_chat_template calls sl.chat.apply)

---------------------------------------------------------------------------- recipes and generation

local run = require "slua.run"
local recipe = require "slua.recipe"
M.recipe = recipe            -- sl.recipe{...}: a recipe value; sl.recipe.load(name): a recipe file's
M.run_options = run.options  -- sl.options over the flags every generation recipe shares
M.prompt_ids = run.prompt_ids
M.session = run.session  -- sl.session(ctx, opts [, model]): a session with the run's --intervene
M.intervene = require "slua.intervene"  -- intervention specs: sl.intervene.load(model, file | ops)
M.generate = run.script_generate  -- the loop, run from a plain script (printing as the command line)
M.generate_many = recipe.generate_many  -- many runs of a recipe, batched (slua.batch)
M.mark_prefill = run.mark_prefill  -- a run hook's timings: the prompt is prefilled (n tokens)
M.mark_decode = run.mark_decode    -- ... and generation is done (n new tokens)

-- sl.invoke(recipe, flags, {model, sessions}) -> {result}: sl.recipe.load(recipe):run(...) as a
-- list of one result (the older form of a recipe run in this process).
function M.invoke(name, flags, opts) return { recipe.load(name):run(flags, opts) } end

return M
