-- Beam search that waits --delay seconds per beam and step (busy, so a signal arrives mid-run):
-- for tests of Ctrl-C in recipes run by slua.decode. "slow_beam: started" on stderr tells the
-- test that the search has begun. No EOS ends a hypothesis, so it runs to --max-new-tokens.
local sl = require "slua"
local beam = require "slua.beam"
local decode = require "slua.decode"

local opt = sl.run_options(arg, {
  num_beams = 2, num_return_sequences = 1,
  delay = { default = 0.01, min = 0, help = "seconds to wait per beam and step" },
})
decode.run("slow_beam", opt, function(model, prompt, progress)
  local started = false
  local wait = sl.chain{ function()
    if not started then started = true io.stderr:write("slow_beam: started\n") io.stderr:flush() end
    local t = sl.clock()
    while sl.clock() - t < opt.delay do end
  end }
  return beam.search{
    model = model, prompt = prompt, chain = wait, progress = progress, eos = {}, num_beams = opt.num_beams,
    num_return_sequences = opt.num_return_sequences, max_new_tokens = opt.max_new_tokens,
  }
end)
