--- What the event-loop adapters (`ravan.loop.luv`, `ravan.loop.cqueues`,
-- `ravan.loop.copas`) share: one delivery step when the client's fd wakes
-- the loop, and where errors go.
--
-- Every adapter's `attach` takes an optional `opts.on_error(err)`: called
-- with whatever a callback raised, and with the error of a client that can
-- no longer be polled (used across `fork()`). The default writes one line
-- to stderr. A closed client simply lets the adapter go.
-- @module ravan.loop

local M = {}

function M.report(err)
  io.stderr:write("ravan: ", tostring(err), "\n")
end

function M.on_error(opts)
  local f = opts and opts.on_error
  if f ~= nil and type(f) ~= "function" then return nil, "on_error must be a function" end
  return f or M.report
end

-- Delivers what is ready; false once the client cannot be polled any more
-- (closed, or in a child after fork), so the adapter stops watching.
function M.step(client, on_error)
  local n, errs = client:poll(0)
  if not n then
    if client._handle then on_error(errs) end
    return false
  end
  for i = 1, errs and #errs or 0 do on_error(errs[i]) end
  return true
end

return M
