-- Model folders a user may have: a FIFO or a directory where a file should be, a tokenizer whose
-- ids exceed the model's vocabulary or reach absurd values, a config whose eos id is outside it.
-- Each fails at once with one clean message naming the file, never a hang or a traceback.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local stories = SLUA_ROOT .. "/models/stories260K"
local files = { "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json" }

local function sh(cmd)
  local ok = os.execute(cmd)
  if not ok then error("command failed: " .. cmd, 2) end
end

-- A fresh model folder: every stories260K file linked, except those in `own` ({name = text, or
-- name = "fifo"}).
local function model_dir(own)
  local p = io.popen("mktemp -d /tmp/slua-input-XXXXXX")
  local dir = p:read("l")
  p:close()
  for _, name in ipairs(files) do
    local path = dir .. "/" .. name
    if own[name] == "fifo" then
      sh("mkfifo " .. path)
    elseif own[name] then
      local f = assert(io.open(path, "w"))
      f:write(own[name])
      f:close()
    else
      sh(("ln -s %s/%s %s"):format(stories, name, path))
    end
  end
  return dir
end

local function read(path) return assert(T.read_file(path), "cannot read " .. path) end

-- greedy on dir must fail (within the timeout) with exactly one line containing `want`
local function expect_failure(dir, want)
  local out, ok = T.run(("timeout 30 %s greedy --model %s --max-new-tokens 2"):format(slua, dir))
  T.truthy(not ok, "greedy failed on " .. dir)
  T.truthy(out:find(want, 1, true), ("message '%s' contains '%s'"):format(out, want))
  T.truthy(not out:find("traceback", 1, true), "no traceback: " .. out)
  T.eq(select(2, out:gsub("\n", "")), 1, "one line: " .. out)
  os.execute("rm -rf " .. dir)
end

for _, name in ipairs(files) do
  T.case("a FIFO as " .. name .. " is refused at once", function()
    local dir = model_dir({ [name] = "fifo" })
    expect_failure(dir, dir .. "/" .. name .. ": not a regular file (a FIFO)")
  end)
end

T.case("tokenizer ids beyond the model's vocab_size are refused", function()
  local tok = sl.json.decode(read(stories .. "/tokenizer.json"))
  tok.added_tokens[#tok.added_tokens + 1] = { id = 512, content = "<extra>", special = true,
    single_word = false, lstrip = false, rstrip = false, normalized = false }
  local dir = model_dir({ ["tokenizer.json"] = sl.json.encode(tok) })
  expect_failure(dir, dir .. "/tokenizer.json: token id out of range for the model (ids up to 512; "
    .. dir .. "/config.json has vocab_size 512)")
end)

T.case("a huge id in tokenizer.json is refused before anything is sized by it", function()
  local text = read(stories .. "/tokenizer.json"):gsub('"<unk>": 0', '"<unk>": 1000000000', 1)
  T.truthy(text:find("1000000000", 1, true), "the edit applies")
  local dir = model_dir({ ["tokenizer.json"] = text })
  local t0 = sl.clock()
  expect_failure(dir, "tokenizer.json: token id out of range at model.vocab[\"<unk>\"] (1000000000;")
  T.truthy(sl.clock() - t0 < 10, "refused quickly")
end)

T.case("eos_token_id outside the vocabulary is refused", function()
  local cfg = read(stories .. "/config.json"):gsub('"eos_token_id": 2', '"eos_token_id": 512', 1)
  local dir = model_dir({ ["config.json"] = cfg })
  expect_failure(dir, dir .. "/config.json: 'eos_token_id' 512 is out of range (vocab_size 512)")
end)

T.finish()
