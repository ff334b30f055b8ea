-- What every flavour of client offers, written once: `phone_history`, `pages` and `calls` as
-- methods over a client class's `_prepare`/`_fetch` hooks, and the same three as module
-- functions on a default client made on first use. `ravan` and `ravan.openresty` both use it.

local errors = require "ravan.errors"
local pager = require "ravan.pager"

local M = {}

function M.add_methods(Client)
  function Client:phone_history(q)
    if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "phone_history") end
    local query, err = self:_prepare(q)
    if not query then return nil, err end
    return self:_fetch(query)
  end
  for _, what in ipairs { "pages", "calls" } do
    Client[what] = function(self, q)
      if not rawequal(getmetatable(self), Client) then return pager.failed(errors.misuse("client", what)) end
      return pager.new(self, q, what)
    end
  end
end

-- `new()` makes the default client from the environment as it is at the first call; a failure
-- (a bad RAVAN_BASE_URL, say) is returned by every call, and by an iterator's first step.
function M.add_defaults(module, new)
  local default
  local function default_client()
    if not default then
      local c, err = new()
      if not c then return nil, err end
      default = c
    end
    return default
  end
  function module.phone_history(q)
    local c, err = default_client()
    if not c then return nil, err end
    return c:phone_history(q)
  end
  for _, what in ipairs { "pages", "calls" } do
    module[what] = function(q)
      local c, err = default_client()
      if not c then return pager.failed(err) end
      return c[what](c, q)
    end
  end
end

return M
