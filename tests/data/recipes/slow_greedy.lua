-- Greedy decoding that waits --delay seconds per step (busy, so a signal arrives mid-run): for
-- tests of Ctrl-C. "slow_greedy: started" on stderr tells the test that generation has begun;
-- with SLUA_PROGRESS set, "slua: step N" after each token gives it a count to wait for.
local sl = require "slua"

return sl.recipe{
  name = "slow_greedy",
  options = { delay = { default = 0.02, min = 0, help = "seconds to wait per step" } },
  scores = function(ctx)
    if ctx.step == 0 then io.stderr:write("slow_greedy: started\n") io.stderr:flush() end
    local t = sl.clock()
    while sl.clock() - t < ctx.opt.delay do end
    return ctx.out.logits
  end,
}
