-- spec/support/mock.lua starts the local server only when a spec first needs it, and stops the
-- one it started when its process ends: specs that need no server run without one.
local socket = require "socket"
local proc = require "spec.support.proc"

-- Whether something listens at `url` (http://127.0.0.1:PORT).
local function listening(url)
  local c = socket.tcp()
  c:settimeout(1)
  local ok = c:connect("127.0.0.1", tonumber(url:match(":(%d+)$")))
  c:close()
  return ok == 1
end

describe("the specs' local server", function()
  local why = proc.skip()
  if why then
    pending(why)
    return
  end

  it("is started on first use, not on require, and stopped when the process ends", function()
    local script = [[
      local mock = require "spec.support.mock"
      print("after require: " .. tostring(rawget(mock, "url")))
      print("phones: " .. mock.phones.example)
      print("url: " .. mock.url)
      mock.reset()
      print("records: " .. #mock.requests())
      print("same: " .. tostring(mock.other_url ~= nil and mock.url == rawget(mock, "url")))
    ]]
    local out, status = proc.run("env -u RAVAN_MOCK_URL -u RAVAN_MOCK_TLS_URL -u RAVAN_MOCK_OTHER_URL"
      .. " -u RAVAN_MOCK_CA " .. proc.lua .. " -e " .. proc.quote(script))
    assert.are.equal(0, status, out)
    assert.matches("^after require: nil\nphones: %+919876543210\nurl: http://127%.0%.0%.1:%d+\n"
      .. "records: 0\nsame: true\n$", out)
    -- Stopping may finish just after the process (5.1 exits without closing its state).
    local url = out:match("url: (%S+)")
    for _ = 1, 100 do
      if not listening(url) then break end
      socket.sleep(0.1)
    end
    assert.is_false(listening(url), url .. " still answers")
  end)
end)
