-- Greedy decoding that waits --delay seconds per step (busy, so a signal arrives mid-run): for
-- tests of Ctrl-C. "slow_greedy: started" on stderr tells the test that generation has begun.
local sl = require "slua"

local opt = sl.run_options(arg, { delay = { default = 0.02, min = 0, help = "seconds to wait per step" } })
sl.generate{
  recipe = "slow_greedy", opt = opt,
  scores = function(ctx)
    if ctx.step == 0 then io.stderr:write("slow_greedy: started\n") io.stderr:flush() end
    local t = sl.clock()
    while sl.clock() - t < opt.delay do end
    return ctx.out.logits
  end,
}
