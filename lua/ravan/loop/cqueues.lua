--- Attaches a client to a cqueues controller (lua-cqueues): a coroutine on
-- the controller waits for `client:fd()` and delivers callbacks and resumes
-- tasks from the loop.
--
--    local cq = require("cqueues").new()
--    local watch = require("ravan.loop.cqueues").attach(client, cq)
--    client:start({ phone = "+14155550100" }, function(page, err) ... end)
--    assert(cq:loop())
--
-- The watching coroutine keeps `cq:loop()` going until `watch:detach()` or
-- until the client is closed.
-- @module ravan.loop.cqueues

local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local loop = require "ravan.loop"
local errors = require "ravan.errors"

local M = {}

--- @param client a ravan client
-- @param cq the cqueues controller
-- @tparam[opt] table opts `on_error` (see `ravan.loop`)
-- @return[1] a watch with `detach()`
-- @return[2] nil
-- @return[2] ravan.errors.Error
function M.attach(client, cq, opts)
  local on_error, fd = loop.prepare(client, opts)
  if not on_error then return nil, fd end
  local pollable = { pollfd = fd, events = "r" }
  local stop = condition.new()
  local active = true
  local ok = pcall(function()
    cq:wrap(function()
      while active do
        cqueues.poll(pollable, stop)
        if not active or not loop.step(client, on_error) then break end
      end
    end)
  end)
  if not ok then return nil, errors.invalid_argument("cq must be a cqueues controller") end
  local watch = {}
  function watch.detach()
    active = false
    stop:signal()
  end
  return watch
end

return M
