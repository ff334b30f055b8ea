-- ravan: a native Lua client for the Ravan.ai call-history API.
--
--   local ravan = require "ravan"
--   local res, err = ravan.phone_history{ phone = "+14155550100" }
--   local client = ravan.new{ api_key = "...", timeout = 30 }
--   local page, err = client:phone_history{ phone = "+14155550100", page = 2 }
--   for call in client:calls{ phone = "+14155550100", limit = 500 } do ... end

local core = require "ravan.core"
local client = require "ravan.client"
local errors = require "ravan.errors"
local pager = require "ravan.pager"

local M = {
  VERSION = core.VERSION,
  new = client.new,
  is_error = errors.is_error,
}

-- The default client is made on first use, from the environment as it is
-- then; a failure (a bad RAVAN_BASE_URL, say) is returned on every call.
local default

local function default_client()
  if not default then
    local c, err = client.new()
    if not c then return nil, err end
    default = c
  end
  return default
end

function M.phone_history(q)
  local c, err = default_client()
  if not c then return nil, err end
  return c:phone_history(q)
end

-- Iterators on the default client; a client that cannot be made is
-- reported by the first step, as a bad query would be.
function M.pages(q)
  local c, err = default_client()
  if not c then return pager.failed(err) end
  return c:pages(q)
end

function M.calls(q)
  local c, err = default_client()
  if not c then return pager.failed(err) end
  return c:calls(q)
end

return M
