-- Greedy decoding that waits --delay seconds per step (busy, so a signal arrives mid-run): for
-- tests of Ctrl-C.
local sl = require "slua"

local opt = sl.run_options(arg, { delay = { default = 0.02, min = 0, help = "seconds to wait per step" } })
sl.generate{
  recipe = "slow_greedy", opt = opt,
  scores = function(ctx)
    local t = sl.clock()
    while sl.clock() - t < opt.delay do end
    return ctx.out.logits
  end,
}
