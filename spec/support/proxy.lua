-- A throwaway tinyproxy (Debian's) on loopback for the specs: its own temp dir, config and log,
-- an unused port, stopped and removed by `stop`. `kind` is "open", "auth" (Basic credentials
-- user/password required) or "refuse" (every request denied by its filter).
local proc = require "spec.support.proc"

local M = {}

M.user, M.password = "ravan-proxy-user", "pr0xy-s3cret-pass"

local sh = proc.sh

local function free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function M.start(kind)
  assert(sh("command -v tinyproxy || true"):find("tinyproxy"), "tinyproxy is not installed")
  local dir = proc.tmpdir()
  local port = free_port()
  local conf = {
    "Port " .. port, "Listen 127.0.0.1", "Timeout 60", "MaxClients 200",
    "LogFile \"" .. dir .. "/proxy.log\"", "LogLevel Connect",
    "PidFile \"" .. dir .. "/proxy.pid\"", "Allow 127.0.0.1", "DisableViaHeader Yes",
  }
  -- As root tinyproxy would switch to nobody, who may not write the temp dir.
  if proc.run("id -u"):match("^0") then
    conf[#conf + 1] = "User root"
    conf[#conf + 1] = "Group root"
  end
  if kind == "auth" then conf[#conf + 1] = "BasicAuth " .. M.user .. " " .. M.password end
  if kind == "refuse" then
    write(dir .. "/filter", "^nothing%.invalid$\n")
    conf[#conf + 1] = "Filter \"" .. dir .. "/filter\""
    conf[#conf + 1] = "FilterDefaultDeny Yes"
  end
  write(dir .. "/proxy.conf", table.concat(conf, "\n") .. "\n")
  -- Without -d it forks into the background and writes its pid file before it answers.
  sh("tinyproxy -c " .. proc.quote(dir .. "/proxy.conf"))
  local self = { url = "http://127.0.0.1:" .. port, port = port, dir = dir }
  local socket = require "socket"
  for _ = 1, 200 do
    local c = socket.connect("127.0.0.1", port)
    if c then c:close() break end
    socket.sleep(0.02)
  end
  -- The log's lines about requests: what the proxy was asked to do.
  function self.log()
    return proc.read_file(dir .. "/proxy.log")
  end
  -- How many CONNECT tunnels (or plain requests) it was asked for.
  function self.requests()
    local n = 0
    for _ in self.log():gmatch("Request %(file descriptor %d+%): %u+ ") do n = n + 1 end
    return n
  end
  function self.stop()
    local pid = proc.read_file(dir .. "/proxy.pid"):match("%d+")
    if pid then proc.run("kill " .. pid .. "; while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.02; done") end
    proc.rmdir(dir)
  end
  return self
end

-- In a describe: one proxy of each kind (open, auth, refuse), started in setup and stopped in
-- teardown; the table is filled in setup.
function M.each_kind(setup, teardown)
  local proxies = {}
  setup(function()
    for _, kind in ipairs { "open", "auth", "refuse" } do proxies[kind] = M.start(kind) end
  end)
  teardown(function()
    for _, p in pairs(proxies) do p.stop() end
  end)
  return proxies
end

return M
