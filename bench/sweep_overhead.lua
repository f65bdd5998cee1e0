-- Overhead of `slua sweep`: 100 short greedy runs (10 repetition penalties x 10 prompts) in one
-- sweep process, against the same 100 runs as one CLI invocation each.
--
-- Usage: build/slua bench/sweep_overhead.lua [--model DIR] [--max-new-tokens 32] [--threads 1]
--        [--repeats 3]
-- Reports, as medians over --repeats: the sweep's wall time (process start to exit, model
-- load and report included), the share of it spent inside the recipe runs (the results'
-- timings.run_s), the once-per-sweep cost (the same sweep rerun with every pair done), the
-- per-run cost outside generation, and the wall time and per-run cost of 100 CLI
-- invocations. Both ways must produce the same ids.
local sl = require "slua"

local opt = sl.options(arg, { model = sl.default_model, max_new_tokens = 32, threads = 1, repeats = 3 })
local exe = require("slua.core").fs.exe()
local starts = { "Once upon a time", "The cat", "Lily and Tom", "One day", "The sun was", "A big dog",
                 "There was a boy", "Mom said", "The little bird", "In the park" }
local penalties = { 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.7 }

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local prompts = {}
for i, p in ipairs(starts) do prompts[i] = ("{ prompt = %q }"):format(p) end
local file = dir .. "/overhead.lua"
local f = assert(io.open(file, "w"))
f:write(([[
return {
  name = "overhead", model = %q, recipe = "greedy",
  prompts = { %s },
  fixed = { max_new_tokens = %d, threads = %d },
  grid = { repetition_penalty = { %s } },
  metrics = { "length" },
}
]]):format(opt.model, table.concat(prompts, ", "), opt.max_new_tokens, opt.threads, table.concat(penalties, ", ")))
f:close()

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local sweep_wall, inside, cli_wall, fixed = {}, {}, {}, {}
local sweep_ids, cli_ids
for r = 1, opt.repeats do
  local out = ("%s/run-%d"):format(dir, r)
  local t0 = sl.clock()
  assert(os.execute(("%s sweep %s --out %s --quiet >/dev/null 2>&1"):format(q(exe), q(file), q(out))))
  sweep_wall[r] = sl.clock() - t0
  -- The same sweep again finds every pair done: process start, plan, report, exit.
  t0 = sl.clock()
  assert(os.execute(("%s sweep %s --out %s --quiet >/dev/null 2>&1"):format(q(exe), q(file), q(out))))
  fixed[r] = sl.clock() - t0
  local gen, ids = 0, {}
  for line in io.lines(out .. "/results.jsonl") do
    local rec = sl.json.decode(line)
    gen = gen + rec.timings.run_s
    ids[#ids + 1] = table.concat(rec.new_ids, ",")
  end
  assert(#ids == 100, "100 runs")
  inside[r] = gen
  sweep_ids = table.concat(ids, ";")

  ids = {}
  t0 = sl.clock()
  for _, rp in ipairs(penalties) do
    for _, p in ipairs(starts) do
      local h = io.popen(("%s greedy --model %s --prompt %s --max-new-tokens %d --threads %d --repetition-penalty %s --format json"):format(
        q(exe), q(opt.model), q(p), opt.max_new_tokens, opt.threads, tostring(rp)))
      local rec = sl.json.decode(h:read("a"))
      h:close()
      ids[#ids + 1] = table.concat(rec.new_ids, ",")
    end
  end
  cli_wall[r] = sl.clock() - t0
  cli_ids = table.concat(ids, ";")
  assert(cli_ids == sweep_ids, "the sweep and the CLI produce the same ids")
end
os.execute("rm -rf " .. q(dir))

local wall, gen, cli, start = median(sweep_wall), median(inside), median(cli_wall), median(fixed)
print(("model %s, 100 greedy runs of %d new tokens, %d thread(s), medians of %d"):format(
  opt.model, opt.max_new_tokens, opt.threads, opt.repeats))
print(("sweep, one process:   wall %.3f s, inside generation %.3f s = %.1f %% of the wall"):format(wall, gen, 100 * gen / wall))
print(("  once per sweep:     %.3f s (the same sweep with every pair done: start, plan, report)"):format(start))
print(("  per run:            %.3f ms outside generation; generation = %.1f %% of the wall after the start"):format(
  1000 * math.max(wall - start - gen, 0) / 100, 100 * gen / math.max(wall - start, gen)))
print(("CLI, one per run:     wall %.3f s = %.2f ms/run, %.2f ms/run more than in the sweep"):format(
  cli, 1000 * cli / 100, 1000 * (cli - wall) / 100))
