-- A small sweep whose results file, written by an earlier slua (results_0.1.jsonl: point ids
-- that hashed the thread count, the output format and the options added since), must resume.
return {
  name = "resume-old",
  model = "models/stories260K",
  recipe = "dola",
  prompts = { { id = "once", prompt = "Once upon a time" }, { id = "cat", prompt = "The cat" } },
  fixed = { max_new_tokens = 6, threads = 1 },
  grid = { dola_layers = { "low", "high" } },
  metrics = { "distinct_2" },
}
