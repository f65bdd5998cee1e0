-- Greedy decoding that takes 20 ms a token, so a test can interrupt a reply in a terminal.
local sl = require "slua"
return sl.recipe{
  name = "slow_greedy", sample = false,
  scores = function(ctx)
    local t = sl.clock() + 0.02
    while sl.clock() < t do end
    return ctx.out.logits
  end,
}
