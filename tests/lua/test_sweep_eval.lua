-- slua sweep over evaluation tasks: each (point, item) equals `slua eval` run alone with the same
-- options — per item the same record (scores, MC1/MC2/MC3, token counts), the same settings —
-- and the report's metrics equal the eval summary; a generating task matches the same way.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local dir = T.run("mktemp -d"):gsub("%s+$", "")

local write, lines_of = T.write, T.json_lines

-- `slua eval ARGS --output FILE`: its summary and its result lines.
local function eval_alone(args, output)
  local out, ok = T.run(("%s eval %s --threads 1 --progress never --output %s"):format(slua, args, output))
  if not ok then error("slua eval " .. args .. " failed:\n" .. out, 2) end
  return assert(sl.json.decode(out:match("[^\n]*\n?$")), out), lines_of(output)
end

local function sweep(args)
  local out, ok = T.run(("%s sweep %s"):format(slua, args))
  if not ok then error("slua sweep " .. args .. " failed:\n" .. out, 2) end
  return out
end

-- The sweep lines of one setting, in item order.
local function lines_where(records, layers)
  local out = {}
  for _, r in ipairs(records) do
    if table.concat(r.options.early_exit_layers, ",") == layers then out[#out + 1] = r end
  end
  return out
end

local LIMIT = 4
local LAYERS = { "2,5", "0,2,4,5" }   -- static and dynamic DoLa on the 5-layer model

write(dir .. "/tfqa.lua", ([[
return {
  name = "tfqa", task = { name = "truthfulqa_mc", limit = %d },
  fixed = { threads = 1 },
  grid = { early_exit_layers = { "%s", "%s" } },
}
]]):format(LIMIT, LAYERS[1], LAYERS[2]))
local log = sweep(("%s/tfqa.lua --out %s/tfqa --quiet"):format(dir, dir))
local swept = lines_of(dir .. "/tfqa/results.jsonl")
local report = assert(sl.json.decode(sweep(("report %s/tfqa --format json"):format(dir))))

T.case("a TruthfulQA-MC sweep runs one line per (point, item)", function()
  T.truthy(log:find(("%d runs made"):format(#LAYERS * LIMIT), 1, true), log)
  T.eq(#swept, #LAYERS * LIMIT, "2 settings x 4 items")
  T.eq(report.task, "truthfulqa_mc", "the report names the task")
  T.eq(table.concat(report.metrics, ","), "MC1,MC2,MC3", "the task's metrics")
  T.truthy(sweep(("%s/tfqa.lua --out %s/tfqa --quiet"):format(dir, dir)):find("0 runs made", 1, true), "resumes")
end)

for p, layers in ipairs(LAYERS) do
  T.case(("--early-exit-layers %s: every item and the summary equal slua eval alone"):format(layers), function()
    local summary, alone = eval_alone(("truthfulqa_mc --limit %d --early-exit-layers %s"):format(LIMIT, layers),
      ("%s/eval-%d.jsonl"):format(dir, p))
    local mine = lines_where(swept, layers)
    T.eq(#mine, LIMIT, "items of this setting")
    T.eq(#alone, LIMIT, "items of the CLI run")
    T.eq(sl.json.encode(mine[1].options), sl.json.encode(summary.settings), "the same settings")
    for i, want in ipairs(alone) do
      local got = mine[i]
      T.eq(got.item, want.id, "item order")
      for _, k in ipairs({ "scores_true", "scores_false", "MC1", "MC2", "MC3", "n_forwarded", "n_tokens", "index" }) do
        T.eq(sl.json.encode(got[k]), sl.json.encode(want[k]), ("item %s: %s"):format(want.id, k))
      end
      for _, m in ipairs({ "MC1", "MC2", "MC3" }) do
        T.eq(got.metrics[m], want[m], ("item %s: metrics.%s"):format(want.id, m))
      end
    end
    local row = report.points[p]
    T.eq(row.n, LIMIT, "report: items of the point")
    for _, m in ipairs({ "MC1", "MC2", "MC3" }) do
      T.near(row.metrics[m].mean, summary.metrics[m], 1e-15, "report " .. m .. " = eval summary")
    end
  end)
end

T.case("a generating task (GSM8K) with a recipe option equals slua eval alone", function()
  write(dir .. "/gsm.lua", [[
return {
  name = "gsm", task = { name = "gsm8k", limit = 2 },
  fixed = { threads = 1, max_new_tokens = 6, n_ctx = 2048 },
  grid = { early_exit_layers = { "-1", "2,5" }, repetition_penalty = { 1.2 } },
}
]])
  sweep(("%s/gsm.lua --out %s/gsm --quiet"):format(dir, dir))
  local mine = lines_where(lines_of(dir .. "/gsm/results.jsonl"), "2,5")
  local summary, alone = eval_alone("gsm8k --limit 2 --max-new-tokens 6 --n-ctx 2048 --early-exit-layers 2,5 "
    .. "--repetition-penalty 1.2", dir .. "/eval-gsm.jsonl")
  T.eq(mine[1].options.recipe, "dola", "DoLa layers run the dola recipe, as in slua eval")
  T.eq(sl.json.encode(mine[1].options), sl.json.encode(summary.settings), "the same settings")
  for i, want in ipairs(alone) do
    for _, k in ipairs({ "completion", "model_answer", "is_correct", "n_new_tokens", "stop_reason" }) do
      T.eq(sl.json.encode(mine[i][k]), sl.json.encode(want[k]), ("item %s: %s"):format(want.id, k))
    end
    T.eq(mine[i].metrics.accuracy, want.is_correct and 1.0 or 0.0, "per-item accuracy")
  end
end)

os.execute("rm -rf '" .. dir .. "'")
T.finish()
