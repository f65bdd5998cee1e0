-- Beam search that waits --delay seconds per beam and step (busy, so a signal arrives mid-run):
-- for tests of Ctrl-C in recipes run by slua.decoders.decode. "slow_beam: started" on stderr
-- tells the test that the search has begun; with SLUA_PROGRESS set, "slua: step N" after each
-- complete step gives it a count to wait for. No EOS ends a hypothesis, so it runs to
-- --max-new-tokens.
local sl = require "slua"
local beam = require "slua.decoders.beam"
local decode = require "slua.decoders.decode"

return sl.recipe{
  name = "slow_beam",
  options = {
    num_beams = 2, num_return_sequences = 1,
    delay = { default = 0.01, min = 0, help = "seconds to wait per beam and step" },
  },
  run = decode.search(function(ctx, progress)
    local opt, started = ctx.opt, false
    local wait = sl.chain{ function()
      if not started then started = true io.stderr:write("slow_beam: started\n") io.stderr:flush() end
      local t = sl.clock()
      while sl.clock() - t < opt.delay do end
    end }
    return beam.search{
      model = ctx.model, prompt = ctx.prompt, chain = wait, progress = progress, eos = {}, num_beams = opt.num_beams,
      num_return_sequences = opt.num_return_sequences, max_new_tokens = opt.max_new_tokens, on_step = progress.on_step,
    }
  end),
}
