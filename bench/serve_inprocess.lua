-- In-process counterpart of bench/serve_compare.sh: C generations of MAX_TOKENS greedy tokens
-- through sl.generate_many at batch C, as one JSON line with the aggregate decode rate.
--   slua bench/serve_inprocess.lua MODEL_DIR CLIENTS ROUNDS MAX_TOKENS [THREADS]
local sl = require "slua"
local dir, clients, rounds, max_tokens, threads = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]),
  tonumber(arg[5] or "2")
sl.set_threads(threads)
local model = sl.check(sl.load(dir))
local runs = {}
for i = 1, clients do runs[i] = { prompt_ids = "1,403,407,261,378" } end
local rates = {}
for r = 1, rounds do
  local t0 = sl.clock()
  local results = sl.recipe.generate_many{ recipe = "greedy", runs = runs, model = model, batch = clients,
                                           options = { max_new_tokens = max_tokens } }
  local n = 0
  for _, res in ipairs(results) do n = n + #res.new_ids end
  rates[r] = n / (sl.clock() - t0)
end
table.sort(rates)
print(sl.json.encode{ engine = "slua in-process", clients = clients, rounds = rounds, max_tokens = max_tokens,
                      aggregate_tok_s = rates[(#rates + 1) // 2] })
