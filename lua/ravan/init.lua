--- A native Lua client for the Ravan.ai call-history API.
--
--    local ravan = require "ravan"
--    local res, err = ravan.phone_history{ phone = "+14155550100" }
--    local client = ravan.new{ api_key = "...", timeout = 30 }
--    local page, err = client:phone_history{ phone = "+14155550100", page = 2 }
--    for call in client:calls{ phone = "+14155550100", limit = 500 } do ... end
--
-- Failures are returned as `nil, err` (see `ravan.errors`), never raised,
-- except by the `for` loops of the iterators.
-- @module ravan

-- A ravan.core that is missing, or built for another Lua (the loader then says "undefined
-- symbol: lua_newuserdatauv"), is reported on one line that says what to run. lua.c prints an
-- error object's __tostring without a traceback; Lua 5.1's prints only strings.
local loaded, core = pcall(require, "ravan.core")
if not loaded then
  local this = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
  local file, symbol = tostring(core):match("from file '([^']*)'.-undefined symbol: ([%w_]+)")
  local message
  if symbol then
    message = ("ravan.core (%s) is built for another Lua, not %s (undefined symbol %s): "
      .. "run `make LUA=%s`"):format(file, this, symbol, this)
  elseif tostring(core):find("module 'ravan.core' not found", 1, true) then
    message = ("ravan.core is not built for %s: run `make LUA=%s` in the checkout")
      :format(this, this)
  else
    message = tostring(core):gsub("%s+", " ")
  end
  if _VERSION == "Lua 5.1" and not rawget(_G, "jit") then error(message, 0) end
  error(setmetatable({ message = message }, { __tostring = function(e) return e.message end }), 0)
end
local client = require "ravan.client"
local errors = require "ravan.errors"
local surface = require "ravan.surface"

local M = {
  VERSION = core.VERSION,
  new = client.new,
  is_error = errors.is_error,
}

--- The module's version, e.g. `"0.2.0"`.
-- @field VERSION

--- Makes a client: see `ravan.client.new` for the options.
-- @function new
-- @tparam[opt] table opts
-- @treturn[1] ravan.client.Client
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `invalid_argument`

--- Tells a ravan error from any other value.
-- @function is_error
-- @param v any value
-- @treturn boolean

--- One page of a phone's call history, on the default client.
-- The default client is made on first use from the environment:
-- `RAVAN_API_KEY` (or `RAVAN_TOKEN`) and `RAVAN_BASE_URL`.
-- @tparam table q as for `ravan.client.Client:phone_history`
-- @treturn[1] table the page
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
-- @function phone_history

--- Every page of a phone's history, on the default client.
-- A default client that cannot be made is reported by the first step, as a
-- bad query would be.
-- @tparam table q as for `ravan.client.Client:pages`
-- @return a `ravan.pager.Pager`, for a generic `for`
-- @function pages

--- Every call of a phone's history, on the default client.
-- @tparam table q as for `ravan.client.Client:calls`
-- @return a `ravan.pager.Pager`, for a generic `for`
-- @function calls

--- A cost report over a synced database, the API or a list of calls: see
-- `ravan.report.report` for the options and docs/report.md for the result.
-- @tparam table o the options
-- @treturn[1] table the aggregate tables
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
function M.report(o)
  return require("ravan.report").report(o)
end

surface.add_defaults(M, client.new)

return M
