--- Attaches a client to a libuv loop (lua-luv): a `uv.new_poll` watcher on
-- `client:fd()` delivers callbacks and resumes tasks from the loop.
--
--    local uv = require "luv"
--    local watch = require("ravan.loop.luv").attach(client)
--    client:start({ phone = "+14155550100" }, function(page, err) ... end)
--    uv.run()
--
-- The watcher keeps `uv.run()` going until `watch:detach()` or until the
-- client is closed. As with any libuv handle, the loop must run once more
-- after `detach()` for libuv to finish closing the watcher.
-- @module ravan.loop.luv

local uv = require "luv"
local loop = require "ravan.loop"

local M = {}

--- @param client a ravan client
-- @tparam[opt] table opts `on_error` (see `ravan.loop`)
-- @return[1] a watch with `detach()`
-- @return[2] nil
-- @return[2] ravan.errors.Error
function M.attach(client, opts)
  local on_error, fd = loop.prepare(client, opts)
  if not on_error then return nil, fd end
  local handle = uv.new_poll(fd)
  local watch = {}
  function watch.detach()
    if not handle:is_closing() then
      handle:stop()
      handle:close()
    end
  end
  handle:start("r", function(perr)
    if perr then on_error(perr) end
    if perr or not loop.step(client, on_error) then watch.detach() end
  end)
  return watch
end

return M
