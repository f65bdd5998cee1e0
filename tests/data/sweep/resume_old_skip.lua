-- A SkipLayerCD sweep whose results file, written by an earlier slua (results_0.1_skip.jsonl:
-- the option was --skip-layers, "START,END"), must resume under the option's new name.
return {
  name = "resume-old-skip",
  model = "models/stories260K",
  recipe = "skiplayer_slh",
  prompts = { { id = "once", prompt = "Once upon a time" } },
  fixed = { max_new_tokens = 6, threads = 1, alpha = 0.1 },
  grid = { skip_blocks = { "1", "2:4" } },
  metrics = { "distinct_2" },
}
