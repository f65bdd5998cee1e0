-- ActAdd's steering strength x block (recipes/steer.lua, "Love" - "Hate") on a prompt file
-- (stories260K, 5 blocks). slua sweep examples/sweeps/steer_scale.lua   (results in runs/steer-scale)
return {
  name = "steer-scale",
  model = "models/stories260K",
  recipe = "steer",
  prompts = "prompts.jsonl",                 -- next to this file
  fixed = { max_new_tokens = 32, positions = "all" },
  grid = {
    multiplier = { 0, 0.5, 1, 2, 4 },        -- 0 = no steering: the greedy baseline
    layer = { 1, 2, 3 },
  },
  metrics = { "distinct_2", "rep_rate" },
  plot = { x = "multiplier", series = "layer" },
}
