--- Attaches a client to Copas (lua-copas): a Copas thread waits for
-- `client:fd()` among Copas's own sockets and delivers callbacks and resumes
-- tasks from the loop.
--
--    local copas = require "copas"
--    local watch = require("ravan.loop.copas").attach(client)
--    client:start({ phone = "+14155550100" }, function(page, err) ... end)
--    copas.loop()
--
-- Copas has no way to take a waiting thread out of its set, so
-- `watch:detach()` takes effect when the fd next wakes the thread (closing
-- the client wakes it at once).
-- @module ravan.loop.copas

local copas = require "copas"
local socket = require "socket"
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
  -- What Copas's select needs of a socket, and a receive that says "timeout" (wait in the set)
  -- until the fd is readable.
  local waiter = {}
  function waiter.getfd() return fd end
  function waiter.dirty() return false end
  -- Copas closes the socket a finished thread last waited on; this fd is the client's.
  function waiter.close() end
  function waiter.receive()
    if #socket.select({ waiter }, nil, 0) > 0 then return true end
    return nil, "timeout"
  end
  local active = true
  copas.addthread(function()
    while active do
      copas.receive(waiter)
      if not active or not loop.step(client, on_error) then break end
    end
  end)
  return { detach = function() active = false end }
end

return M
