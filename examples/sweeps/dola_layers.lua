-- DoLa premature-layer choices x repetition penalty on a prompt file (stories260K, 5 layers).
-- slua sweep examples/sweeps/dola_layers.lua   (results in runs/dola-layers, report next to them)
return {
  name = "dola-layers",
  model = "models/stories260K",
  recipe = "dola",
  prompts = "prompts.jsonl",                 -- next to this file
  fixed = { max_new_tokens = 64 },
  grid = {
    dola_layers = { "0", "2", "4", "low", "high" },   -- static single layers and HF's buckets
    repetition_penalty = { 1.0, 1.1, 1.2, 1.4 },
  },
  metrics = { "distinct_2", "rep_rate" },
  plot = { x = "repetition_penalty", series = "dola_layers" },
}
