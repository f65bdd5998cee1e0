-- slua.decoders.blocks: one grammar for sets of decoder blocks, as --skip-blocks (SkipLayerCD's
-- amateur) and --draft-skip-blocks (the speculative self-draft) read them.
--
--   N        block N
--   A:B      blocks A, A+1, ..., B-1: the half-open span [A, B), as the JSON's skip_span [A, B)
--   X,Y,...  the union of such items ("2,4" is blocks 2 and 4; "2:4" is blocks 2 and 3)
--
-- Blocks are 0-based decoder blocks (HF's model.layers[i]); block i turns hidden state i into
-- i + 1 in hidden_states numbering (--dola-layers, --layers). The older flags --skip-layers
-- (START,END = the span [START, END)) and --draft-skip-layers (blocks and closed ranges A-B)
-- are translated into this grammar by B.from_span_pair and B.from_closed_ranges.
local B = {}

local GRAMMAR = "blocks N, spans A:B (blocks A to B-1) or a list of them, such as 2,4 or 8:16"

-- The grammar in a few words, for --help.
B.help_rule = "N, A:B = blocks A to B-1, or a list of them"

-- The rule of a block set, as messages and --help give it.
function B.rule(n_layer)
  return n_layer and ("%s, in [0, %d]"):format(GRAMMAR, n_layer - 1) or GRAMMAR
end

-- B.parse(text [, n_layer]) -> sorted unique blocks | nil, the rule the text breaks (its form,
-- or with n_layer a block outside [0, n_layer - 1]).
function B.parse(text, n_layer)
  local rule = B.rule(n_layer)
  local blocks, seen = {}, {}
  for part in (tostring(text) .. ","):gmatch("([^,]*),") do
    local a, b = part:match("^%s*(%d+)%s*:%s*(%d+)%s*$")
    if a then
      a, b = math.tointeger(tonumber(a)), math.tointeger(tonumber(b)) - 1
    else
      a = math.tointeger(tonumber(part:match("^%s*(%d+)%s*$")))
      b = a
    end
    if not a or not b or b < a or (n_layer and b >= n_layer) then return nil, rule end
    for l = a, b do
      if not seen[l] then seen[l] = true; blocks[#blocks + 1] = l end
    end
  end
  table.sort(blocks)
  return blocks
end

-- The form check of an option holding a block set ("" = the recipe's default).
function B.syntax(text)
  if text ~= "" then return select(2, B.parse(text)) end
end

-- {2, 3} -> {2, 4}: the half-open span of contiguous blocks, or nil when they have a gap.
function B.span(blocks)
  if #blocks == 0 then return nil end
  for i = 2, #blocks do if blocks[i] ~= blocks[i - 1] + 1 then return nil end end
  return { blocks[1], blocks[#blocks] + 1 }
end

-- {2, 4} -> "2:4", {3} -> "3": a span as the grammar writes it.
function B.span_text(span)
  if span[2] == span[1] + 1 then return tostring(span[1]) end
  return ("%d:%d"):format(span[1], span[2])
end

-- --skip-layers START,END (the span [START, END)) in the grammar: "START:END".
function B.from_span_pair(text)
  local a, b = tostring(text):match("^%s*(%d+)%s*,%s*(%d+)%s*$")
  if not a then return nil, "START,END (older form of --skip-blocks START:END)" end
  a, b = math.tointeger(tonumber(a)), math.tointeger(tonumber(b))
  if b == a + 1 then return tostring(a) end  -- one block, as the grammar writes it
  return ("%d:%d"):format(a, b)
end

-- --draft-skip-layers "2,3" or "8-15" (closed ranges) in the grammar: "2,3" or "8:16".
function B.from_closed_ranges(text)
  local items = {}
  for part in (tostring(text) .. ","):gmatch("([^,]*),") do
    local a, b = part:match("^%s*(%d+)%s*%-%s*(%d+)%s*$")
    local one = part:match("^%s*(%d+)%s*$")
    if a and tonumber(a) == tonumber(b) then
      items[#items + 1] = tostring(math.tointeger(tonumber(a)))
    elseif a then
      items[#items + 1] = ("%s:%d"):format(a, math.tointeger(tonumber(b)) + 1)
    elseif one then
      items[#items + 1] = one
    else
      return nil, "blocks or ranges such as 2,3 or 8-15 (older form of --draft-skip-blocks 2,3 or 8:16)"
    end
  end
  return table.concat(items, ",")
end

return B
