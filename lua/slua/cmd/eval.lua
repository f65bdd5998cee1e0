-- slua eval TASK: the DoLa paper's evaluations with the official protocol (voidism/DoLa
-- tfqa_mc_eval.py, factor_eval.py, gsm8k_eval.py, strqa_eval.py) and MGSM (dgme-syz/SkipLayerCD).
--
-- Usage: slua eval truthfulqa_mc|factor|gsm8k|strategyqa|mgsm [--model DIR]
--          [--data PATH | --items FILE.jsonl] [--early-exit-layers -1 | a,b | a,b,...,N]
--          [--limit N] [--shard I/N] [--output results.jsonl] [--no-prefix-cache] [--no-batched-score] [--details]
--          [--relative-top X] [--relative-top-value V] [--post-softmax true|false]
--          [--recipe NAME] [--recipe-options JSON] [--max-new-tokens 256] [--repetition-penalty P]
--          [--lang zh] [--n-ctx N] [--threads N] [--progress auto|always|never] [--pause SECONDS]
--          [--batch N] [--weights stored|q8_0] [--compute exact|bf16] [--repair]
--          [--bootstrap 1000] [--seed 42]
--        slua eval --merge a.jsonl b.jsonl ... [--output merged.jsonl] [--bootstrap 1000] [--seed 42]
--        slua eval report A.jsonl B.jsonl ... [--format md|csv|json] [--svg FILE] [--bootstrap 1000] [--seed 42]
--
-- --early-exit-layers as the official scripts read it: one entry = baseline, two = static DoLa
-- (premature, mature), three or more = dynamic DoLa (candidates in order, mature last), mature
-- written explicitly (N). Scoring tasks default to their script's relative_top/post_softmax;
-- generating tasks run --recipe (default: greedy for the baseline, dola otherwise, with the
-- official repetition penalty 1.0 / 1.2) through the shared generation loop, so any recipe can be
-- evaluated. --data defaults to the copy bundled under data/. --items takes pre-tokenised items
-- (TruthfulQA: {id, prompt_ids|n_prefix, answers=[{kind, full_ids}], ref_true, ref_best};
-- FACTOR: {id, prompt_ids|n_prefix, full_ids=[true, false...]}). Each finished item is one line
-- of --output, fsync'd; a rerun with the same output resumes, and refuses other settings; a
-- second run on an output in use exits 2 naming the first. The summary JSON goes to stdout; a
-- progress line to stderr when it is a terminal (--progress always: plain lines otherwise). --batch N runs
-- the generations of N items together (continuous batching): the same tokens, each weight read
-- once per step for all of them (bench/README.md, "Many sequences"). Summaries and merges
-- report, beside `metrics`, `uncertainty`: each mean metric's standard error and a seeded 95 %
-- percentile bootstrap interval over the items. `report` compares result files of one task:
-- each run's metrics with their intervals, and every run after the first against the first by
-- the paired difference over the items both hold (slua.eval.report).
local sl = require "slua"
local ev = require "slua.eval"
local runner = require "slua.eval.runner"
local evs = require "slua.eval.setting"

local argv = arg

-- --bootstrap N and --seed S of --merge and report: integers, checked as sl.options would.
local function integer_flag(name, text, min)
  local v = math.tointeger(tonumber(text or ""))
  if v == nil then sl.fail(("option --%s expects an integer (got '%s')"):format(name, tostring(text)), 2) end
  if min and v < min then sl.fail(("option --%s must be >= %d (got %d)"):format(name, min, v), 2) end
  return v
end

if argv[1] == "report" then
  return require("slua.eval.report").main(argv, integer_flag)
end

if argv[1] == "--merge" then
  local paths, output, opts = {}, nil, { bootstrap = 1000, seed = 42 }
  local i = 2
  while i <= #argv do
    if argv[i] == "--output" then
      output = argv[i + 1] or sl.fail("option --output needs a value", 2)
      i = i + 1
    elseif argv[i] == "--bootstrap" or argv[i] == "--seed" then
      local name = argv[i]:sub(3)
      opts[name] = integer_flag(name, argv[i + 1], name == "bootstrap" and 0 or nil)
      i = i + 1
    elseif argv[i]:match("^%-%-") then
      sl.fail(("--merge: unknown option %s"):format(argv[i]), 2)
    else
      paths[#paths + 1] = argv[i]
    end
    i = i + 1
  end
  if #paths == 0 then sl.fail("--merge needs result files", 2) end
  local merged = runner.merge(paths, output, opts)
  io.write(sl.json.encode(merged), "\n")
  if merged.problems then
    -- as `slua sweep merge`: an incomplete or duplicated set is listed and exits 3
    for _, p in ipairs(merged.problems) do io.stderr:write("slua: eval --merge: ", p, "\n") end
    os.exit(3, true)
  end
  return
end

local task_name = argv[1]
if task_name == nil or task_name:match("^%-%-") then
  if task_name == "--help" then
    sl.options({ [0] = argv[0], "--help" }, {})
  end
  sl.fail("usage: slua eval TASK [options] (tasks: " .. table.concat(ev.task_names, ", ") .. "; see --help)", 2)
end
local task = ev.tasks[task_name]
if not task then sl.fail(("unknown task '%s' (tasks: %s)"):format(task_name, table.concat(ev.task_names, ", ")), 2) end

local rest = { [0] = argv[0] }
for i = 2, #argv do rest[#rest + 1] = argv[i] end
local opt = sl.options(rest, {
  model = { default = "", help = 'model directory ("" = the bundled stories260K)' },
  data = { default = "", help = "the task's data file (\"\" = the copy bundled under data/)" },
  items = { default = "", help = "pre-tokenised items, JSON Lines (scoring tasks)" },
  early_exit_layers = { default = "-1",
    help = "-1 = baseline; premature,mature = static DoLa; a,b,...,mature = dynamic DoLa (layers 0..N)" },
  limit = { default = 0, min = 0, help = "the first N items (0 = all)" },
  shard = { default = "", help = "I/N: items I, I+N, ... (0 <= I < N)" },
  output = { default = "", help = "results file, one JSON line per item; rerun to resume (locked while in use)" },
  repair = { default = false,
    help = "move damaged lines of --output to OUTPUT.damaged and run their items again" },
  prefix_cache = { default = true, help = "reuse the cached tokens shared with the previous sequence" },
  batched_score = { default = true,
    help = "score a question's answers as the rows of shared passes (same results; --no-batched-score: one by one)" },
  details = { default = false, help = "add per-token terms and premature layers to each line" },
  relative_top = { default = "", help = 'DoLa plausibility cut ("" = the task\'s default)' },
  relative_top_value = { default = "", help = 'score of tokens below the cut ("" = the task\'s default)' },
  post_softmax = { default = "", help = 'true|false: renormalise the contrast ("" = the task\'s default)' },
  recipe = { default = "", help = 'generating tasks: the decoder ("" = greedy for the baseline, else dola)' },
  recipe_options = { default = "", help = "generating tasks: the recipe's options as a JSON object" },
  intervene = { default = "",
    help = "activation interventions (a JSON spec, docs/spec/interventions.md), in the settings by content" },
  max_new_tokens = 256,
  repetition_penalty = { default = "", help = 'generating tasks ("" = 1.0 for the baseline, 1.2 for DoLa)' },
  lang = { default = "zh", help = "mgsm: the language (bn, de, en, es, fr, ja, ru, sw, te, th, zh)" },
  seed = 42,
  threads = 0,
  progress = { default = "auto", choices = { "auto", "always", "never" },
    help = "progress on stderr (auto: when it is a terminal; plain lines when it is not)" },
  pause = { default = 0.0, min = 0, help = "seconds to wait after each item (to share a machine)" },
  n_ctx = 0,
  batch = { default = 1, min = 1, max = 256,
            help = "generations run together, each weight read once for all (same tokens; scores up to float32 summation order)" },
  weights = { default = "stored", choices = { "stored", "q8_0" }, help = "q8_0: 8-bit weights (lossy, not HF-exact)" },
  compute = { default = "exact", choices = { "exact", "bf16" },
              help = "bf16: the matrix products' inputs rounded to BF16 (lossy, not HF-exact)" },
  bootstrap = { default = 1000, min = 0, max = 10000000,
                help = "resamples of the summary's 95 % bootstrap intervals (0 = standard errors only; seeded by --seed)" },
})
if opt.data ~= "" and opt.items ~= "" then sl.fail("give --data or --items, not both", 2) end
local shard = runner.parse_shard(opt.shard)
sl.set_threads(opt.threads)

local model = sl.check(sl.load(opt.model ~= "" and opt.model or nil, sl.load_options(opt)))
local setting, settings = evs.build(task, model, opt)
-- lossy weights and compute change the results, so they are part of the settings (and of the
-- hash); the exact defaults add nothing, which keeps the hashes of existing result files
if opt.weights ~= "stored" then settings.weights = opt.weights end
if opt.compute ~= "exact" then settings.compute = opt.compute end
local items, extra = evs.items(task, opt)
for k, v in pairs(extra) do settings[k] = v end

local summary = sl.try(runner.run, {
  task = task, model = model, items = items, setting = setting, settings = settings,
  output = opt.output ~= "" and opt.output or nil, shard = shard, progress = opt.progress, pause = opt.pause,
  batch = opt.batch, repair = opt.repair, bootstrap = opt.bootstrap, seed = opt.seed,
})
io.write(sl.json.encode(summary), "\n")
