-- SkipLayerCD: where the skipped span starts x the plausibility threshold alpha (stories260K).
-- slua sweep examples/sweeps/skiplayer_span.lua
-- The grid is computed: each block s the model can skip, the span [s, s+1) (--skip-blocks s).
local spans = {}
for start = 1, 4 do spans[#spans + 1] = tostring(start) end

return {
  name = "skiplayer-span",
  model = "models/stories260K",
  recipe = "skiplayer_slh",
  prompts = "prompts.jsonl",
  fixed = { max_new_tokens = 64, beta = 0.5 },
  grid = { skip_blocks = spans, alpha = { 0.01, 0.05, 0.1, 0.3 } },
  metrics = {
    "distinct_2", "rep_rate",
    -- a metric of your own: share of steps where alpha's plausibility cut left one candidate
    forced = function(ctx, r)
      local n = 0
      for _, step in ipairs(r.steps) do
        if not step.top[2] or step.top[2][2] == -math.huge then n = n + 1 end
      end
      return #r.steps > 0 and n / #r.steps or 0
    end,
  },
  plot = { x = "alpha", series = "skip_blocks" },
}
