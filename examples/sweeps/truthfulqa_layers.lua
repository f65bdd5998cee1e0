-- TruthfulQA-MC over DoLa's --early-exit-layers choices (Chuang et al. 2024, "DoLa: Decoding by
-- Contrasting Layers Improves Factuality", tfqa_mc_eval.py), on stories260K (5 layers).
-- slua sweep examples/sweeps/truthfulqa_layers.lua   (results in runs/truthfulqa-layers)
-- Each point is `slua eval truthfulqa_mc --limit 50 --early-exit-layers X`, all in one process.
return {
  name = "truthfulqa-layers",
  model = "models/stories260K",
  task = { name = "truthfulqa_mc", limit = 50 },   -- the bundled TruthfulQA.csv, first 50 questions
  grid = {
    early_exit_layers = {
      "-1",                                  -- baseline: the final layer alone
      "0,5", "2,5", "4,5",                   -- static DoLa: premature layer, mature layer 5
      "0,2,4,5",                             -- dynamic DoLa: candidates 0, 2, 4 (JS divergence picks)
    },
  },
  fixed = { relative_top = 0.0 },            -- the script's setting (no plausibility mask)
}
