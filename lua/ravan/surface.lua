-- What every flavour of client offers, written once: `phone_history`, `pages`, `calls` and
-- `stats` (over the ravan.metrics.stats a client keeps in `_stats`, nil when made with stats = false) as
-- methods over a client class's hooks, and the same three as module functions on a default
-- client made on first use. `ravan` (lua/ravan/client.lua) and `ravan.openresty` both use it.
--
-- The interface a client flavour implements: the only calls that the surface and the pager
-- (lua/ravan/pager/init.lua) make into a client. Each returns its failures as `nil, err`.
--
--   client:_prepare(q[, schema]) -> query | nil, err
--       Validates the user's query `q` (with the pager's extra `schema` entries, which come
--       back in the query for the pager to take out) and applies the client's defaults.
--       A closed client returns errors.closed().
--   client:_fetch(query) -> page | nil, err
--       One request for a prepared query, through `_page_of`. It may suspend the calling
--       coroutine (a task of the client, an nginx light thread), never the host's loop.
--   client:_page_of(res) -> page | nil, err
--       The one path from a transport's result table (see ravan.result) to the user's page.
--   client:_prefetcher(query, window) -> prefetcher | nil
--       Pages started ahead, at most `window` in flight; nil when the client cannot start
--       any (closed, no engine, no cosockets): the pager then fetches one page at a time.
--   client:_closed() -> boolean
--       Whether close() was called; the pager asks before it takes from a prefetcher.
--
-- A prefetcher, as `_prefetcher` returns it:
--
--   pf:want(page) -> boolean     start `page` unless the window is full; true when it is
--                                in flight (already or now)
--   pf:take(page) -> res         the transport result of `page`, waiting for it (started
--                                now if it was never wanted); the pager passes it to
--                                `_page_of`
--   pf:pending() -> n            how many pages are in flight
--   pf:close()                   cancels what is in flight; idempotent
local errors = require "ravan.errors"
local pager = require "ravan.pager"
local stats = require "ravan.metrics.stats"

require("ravan.interpreted")()
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
  function Client:stats()
    if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "stats") end
    if not self._stats then
      return nil, errors.invalid_argument("this client keeps no stats (made with stats = false)")
    end
    return stats.snapshot(self._stats)
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
