-- slua.serve.errors: request errors as OpenAI's error object, raised by the request code and
-- turned into one HTTP answer by the server.
--   errors.bad(message, param [, code])        -- 400 invalid_request_error
--   errors.fail(status, message, param, code)  -- any status
local E = {}

local Error = {}
Error.__index = Error

local TYPES = { [400] = "invalid_request_error", [401] = "authentication_error", [404] = "invalid_request_error",
                [405] = "invalid_request_error", [413] = "invalid_request_error", [429] = "rate_limit_error",
                [500] = "server_error", [503] = "unavailable_error" }

function E.new(status, message, param, code, headers)
  return setmetatable({ status = status, message = message, param = param, code = code, headers = headers }, Error)
end

function E.fail(status, message, param, code, headers) error(E.new(status, message, param, code, headers), 0) end

function E.bad(message, param, code) E.fail(400, message, param, code or "invalid_value") end

function E.is(v) return getmetatable(v) == Error end

-- The body: {"error": {"message", "type", "param", "code"}}.
function E.body(e, null)
  return { error = { message = e.message, type = e.type or TYPES[e.status] or "server_error",
                     param = e.param or null, code = e.code or null } }
end

return E
