--- What the event-loop adapters (`ravan.loop.luv`, `ravan.loop.cqueues`,
-- `ravan.loop.copas`) share: one delivery step when the client's fd wakes
-- the loop, and where errors go.
--
-- Every adapter's `attach` takes an optional `opts.on_error(err)`: called
-- with whatever a callback raised, and with the error of a client that can
-- no longer be polled (used across `fork()`). The default writes one line
-- to stderr. A closed client simply lets the adapter go.
-- @module ravan.loop

local errors = require "ravan.errors"

local M = {}

-- Never raises, whatever was raised: it runs inside the loop's own callback,
-- where a raise ends the process (luv) or the watcher (cqueues).
function M.report(err)
  local ok, text = pcall(tostring, err)
  if not ok or type(text) ~= "string" then text = errors.text_of(err) end
  io.stderr:write("ravan: ", text, "\n")
end

-- What every attach starts with: the error handler and the client's fd, or
-- nil and the error to return.
function M.prepare(client, opts)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, errors.invalid_argument("opts must be a table or nil")
  end
  local on_error = opts and rawget(opts, "on_error")
  if on_error ~= nil and type(on_error) ~= "function" then
    return nil, errors.invalid_argument("on_error must be a function")
  end
  -- Anything but a ravan client answers an error here rather than raising.
  local ok, fd, err = pcall(function() return client:fd() end)
  if not ok then return nil, errors.invalid_argument("attach needs a ravan client") end
  if not fd then return nil, err end
  return on_error or M.report, fd
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
