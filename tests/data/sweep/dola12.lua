-- The 12-run sweep: 3 DoLa layer sets x 2 repetition penalties x 2 prompts on stories260K.
return {
  name = "dola12",
  model = "models/stories260K",
  recipe = "dola",
  prompts = "prompts.jsonl",
  fixed = { max_new_tokens = 12, threads = 1 },
  grid = { dola_layers = { "low", "high", "2,4" }, repetition_penalty = { 1.0, 1.2 } },
  metrics = { "distinct_2", "length", "rep_rate" },
  steps = true,
}
