-- Beam bookkeeping against hand-computed cases: HF's BeamHypotheses (length penalty, the
-- worst-hypothesis rule, the three early-stopping modes) and one scorer step (EOS candidates
-- within the group size finish hypotheses, later ones are ignored).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local beam = require "slua.decoders.beam"

local function scores(h)
  local out = {}
  for i, b in ipairs(h.beams) do out[i] = ("%.4f"):format(b.score) end
  return table.concat(out, ",")
end

T.case("hypotheses keep the best num_beams and track the worst", function()
  local h = beam.hypotheses(2, 1.0, false, 10)
  T.truthy(h:add({ 1, 2 }, -4, 2), "first added")     -- -4 / 2 = -2
  T.truthy(h:add({ 3 }, -3, 1), "second added")       -- -3
  T.eq(h.worst, -3, "worst")
  T.truthy(h:add({ 1, 2, 3, 4, 5 }, -5, 5), "better one added") -- -1 replaces -3
  T.eq(scores(h), "-2.0000,-1.0000", "scores in insertion order")
  T.eq(h.worst, -2, "worst after the drop")
  T.truthy(not h:add({ 9, 9 }, -10, 2), "worse than the worst is refused")
  T.truthy(not h:add({ 9, 9 }, -4, 2), "equal to the worst is refused")
end)

T.case("length penalty divides by generated_len ^ penalty", function()
  local h = beam.hypotheses(3, 0.6, false, 10)
  h:add({ 1, 2 }, -4, 2)
  T.near(h.beams[1].score, -4 / 2 ^ 0.6, 1e-12, "score") -- -2.63902
  h = beam.hypotheses(3, 0.0, false, 10)
  h:add({ 1, 2, 3 }, -4, 3)
  T.eq(h.beams[1].score, -4, "length penalty 0 is the plain sum")
end)

T.case("early stopping false: done when the best candidate cannot beat the worst", function()
  local h = beam.hypotheses(2, 1.0, false, 10)
  T.truthy(not h:is_done(-100, 1), "not done before num_beams hypotheses")
  h:add({ 1 }, -2, 1)
  h:add({ 1 }, -4, 2) -- worst = -2
  T.truthy(h:is_done(-3, 1), "-3 / 1 <= -2")
  T.truthy(not h:is_done(-3, 2), "-3 / 2 = -1.5 > -2")
end)

T.case("early stopping true and never", function()
  local h = beam.hypotheses(1, 1.0, true, 10)
  T.truthy(not h:is_done(0, 1), "empty")
  h:add({ 1 }, -5, 1)
  T.truthy(h:is_done(0, 1), "true: done as soon as num_beams are finished")
  local n = beam.hypotheses(1, 1.0, "never", 10)
  n:add({ 1 }, -2, 1) -- worst -2
  T.truthy(not n:is_done(-3, 2), "never, penalty > 0: -3 / 10 (max length) > -2")
  T.truthy(n:is_done(-30, 2), "never: -30 / 10 <= -2")
  local z = beam.hypotheses(1, 0.0, "never", 10)
  z:add({ 1 }, -2, 1)
  T.truthy(z:is_done(-3, 2), "never, penalty 0: -3 / 2^0 <= -2")
end)

T.case("a scorer step: EOS within the group size finishes, beyond it is ignored", function()
  local eos = { [0] = true }
  local beams = { { ids = { 7 } }, { ids = { 8 } } }
  local h = beam.hypotheses(2, 1.0, false, 10)
  local cands = {
    { beam = 2, id = 5, score = -1 }, { beam = 1, id = 0, score = -2 },
    { beam = 2, id = 0, score = -2.5 }, { beam = 1, id = 6, score = -3 }, { beam = 1, id = 9, score = -4 },
  }
  local next_beams, done = beam.select(cands, 2, eos, h, beams, 2)
  T.eq(#h.beams, 1, "one hypothesis: the EOS of rank 3 is ignored")
  T.eq(table.concat(h.beams[1].ids, ","), "7", "the hypothesis is beam 1 without the EOS")
  T.eq(h.beams[1].score, -1, "-2 / 2")
  T.eq(h.beams[1].eos, 0, "the EOS that ended it")
  T.eq(#next_beams, 2, "two continuations")
  T.eq(next_beams[1].parent .. ":" .. next_beams[1].id, "2:5", "first continuation")
  T.eq(next_beams[2].parent .. ":" .. next_beams[2].id, "1:6", "second continuation")
  T.eq(next_beams[2].score, -3, "running score")
  T.truthy(not done, "one of two hypotheses")
end)
T.case("an EOS reward in the beam chain ends the hypotheses with EOS", function()
  local sl = require "slua"
  local p = io.popen(("%s %s/recipes/beam_search.lua --format json --threads 1 --max-new-tokens 30 "
    .. "--eos-decay-start 5 --eos-decay-factor 1.5 --num-return-sequences 2"):format(arg[1] or "build/slua", SLUA_ROOT))
  local r = sl.json.decode(p:read("a"))
  p:close()
  for k = 1, 2 do
    local s = r.sequences[k]
    T.eq(s.eos, 2, "sequence " .. k .. " ended by the model's EOS")
    T.eq(s.new_ids[#s.new_ids], 2, "sequence " .. k .. " ends with it")
  end
end)
T.finish()
