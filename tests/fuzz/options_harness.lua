-- Run by fuzz_options: returns a function that parses one fuzz input as a recipe's command line
-- with sl.run_options (and its --config file), returning true when the outcome is either options
-- or a clean failure (sl.fail), and false plus the error for anything else (a Lua error that
-- would print a traceback to a user).
local sl = require "slua"

-- No file, terminal or process effects: --config reads the input's config part, --help writes
-- nowhere, os.exit becomes a recognisable error.
local config_text
local EXIT = setmetatable({}, { __tostring = function() return "exit" end })
io.open = function()
  if not config_text then return nil end
  return { read = function() return config_text end, close = function() end, lines = function() return function() end end }
end
io.write = function() end
os.exit = function() error(EXIT, 0) end

-- Defaults of every type the recipes use.
local defaults = {
  temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0, do_sample = false,
  repetition_penalty = 1.0, dola_layers = "high", skip_layers = "", window = 0,
  relative_top = 0.1, exempt = "", layers = "", sld_rule = "official",
}

return function(input)
  local args, config = input:match("^(.-)\0\0(.*)$")
  config_text = config
  args = args or input
  local argv = { [0] = "recipes/fuzz.lua" }
  for item in (args .. "\0"):gmatch("([^\0]*)\0") do argv[#argv + 1] = item end
  local ok, err = pcall(function()
    local opt = sl.run_options(argv, defaults)
    for _, key in ipairs({ "prompt_ids", "exempt", "layers", "skip_layers" }) do
      if type(opt[key]) == "string" then sl.parse_ints(opt[key], key) end
    end
  end)
  -- a full collection returns what this input allocated, so libFuzzer's malloc/free balance holds
  -- and it does not run a leak scan after every input
  collectgarbage("collect")
  if ok or err == EXIT or (type(err) == "table" and type(err.message) == "string") then return true end
  return false, tostring(err)
end
