-- Helpers shared by the specs: type checks that work on every Lua, table walks, process
-- measurements (fds, RSS), the server's records by listener, and running the CLI.
local cjson = require "cjson"
local core = require "ravan.core"
local socket = require "socket"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local M = {}

-- A Lua integer on 5.3+; an integral number on 5.1/5.2/LuaJIT, which have no integer subtype.
function M.is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v == math.floor(v)
end

-- Calls fn(value, path) for every key and every value reachable from `v`, each table once.
function M.walk(v, fn, path, seen)
  path = path or "value"
  seen = seen or {}
  fn(v, path)
  if type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      fn(k, path .. "[key " .. tostring(k) .. "]")
      M.walk(x, fn, path .. "." .. tostring(k), seen)
    end
  end
end

-- Every string reachable from `v` (keys included), for secret searches.
function M.strings(v)
  local out = {}
  M.walk(v, function(x) if type(x) == "string" then out[#out + 1] = x end end)
  return out
end

M.read_file = proc.read_file

-- The lines of `text`, each without its newline.
function M.lines(text)
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out
end

-- The contract example as the server serves it (a byte-identical copy lives in mock/).
function M.example()
  return cjson.decode(M.read_file("mock/ravan_mock/example-200.json"))
end

-- Seconds taken by fn(...), then fn's results.
function M.timed(fn, ...)
  local t0 = core.now()
  local a, b, c = fn(...)
  return core.now() - t0, a, b, c
end

-- The server's records, only those of `listener` when given ("main", "tls", "other").
function M.records(listener)
  local all = mock.requests()
  if not listener then return all end
  local out = {}
  for _, rec in ipairs(all) do
    if rec.listener == listener then out[#out + 1] = rec end
  end
  return out
end

-- The raw query string as name -> raw (still percent-encoded) value.
function M.raw_query(query)
  local out = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[k] = v
  end
  return out
end

-- A loopback URL where nothing listens: a port the kernel just gave out and took back.
function M.closed_url()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return "http://127.0.0.1:" .. port
end

-- Our own process's numbers, from /proc.
local function pid()
  return M.read_file("/proc/self/stat"):match("^(%d+)")
end

-- Our open fds as a set of "fd -> target" (e.g. "5 -> socket:[1234]"). `ls` lists our fd dir,
-- not its own; the pipe popen made for it is in the set, the same each time.
function M.fds()
  local p = assert(io.popen("ls -l /proc/" .. pid() .. "/fd"))
  local set = {}
  for line in p:lines() do
    local entry = line:match("(%d+ %-> .*)$")
    if entry then set[entry] = true end
  end
  p:close()
  return set
end

function M.open_fds()
  local n = 0
  for _ in pairs(M.fds()) do n = n + 1 end
  return n
end

-- The fds in `after` that were not in `before`, as a list. Pipes are left out: each listing
-- reads through a new one.
function M.new_fds(before, after)
  local out = {}
  for entry in pairs(after) do
    if not before[entry] and not entry:find("-> pipe:", 1, true) then out[#out + 1] = entry end
  end
  table.sort(out)
  return out
end

-- Which of `entries` are still open.
function M.still_open(entries)
  local now = M.fds()
  local out = {}
  for _, entry in ipairs(entries) do
    if now[entry] then out[#out + 1] = entry end
  end
  return out
end

-- A number from /proc/self/status, e.g. "VmRSS" (KiB) or "Threads".
function M.proc_status(field)
  return tonumber(M.read_file("/proc/self/status"):match(field .. ":%s*(%d+)"))
end

function M.rss_kb()
  return M.proc_status("VmRSS")
end

-- The `field` of every element of `list`, in order.
function M.pluck(list, field)
  local out = {}
  for i, item in ipairs(list) do out[i] = item[field] end
  return out
end

function M.full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

-- The names of ravan.new's options, as it lists them to a user who gave an unknown one.
function M.client_options()
  local _, err = require("ravan.validate").options({ ["zzzzzzzzzzzzzzzzzzzzzzzz"] = 1 })
  local list = assert(err.message:match("%(valid: ([^)]*)%)$"), err.message)
  local names = {}
  for name in list:gmatch("[%w_]+") do names[#names + 1] = name end
  return names
end

-- Runs bin/ravan-history under the Lua running the specs, with `args` and only the RAVAN_*
-- variables of `env`. Returns the exit status, stdout and stderr.
function M.run_cli(args, env)
  local err = os.tmpname()
  local cmd = { "env", "-u", "RAVAN_API_KEY", "-u", "RAVAN_TOKEN", "-u", "RAVAN_BASE_URL" }
  local names = {}
  for k in pairs(env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do cmd[#cmd + 1] = proc.quote(k .. "=" .. env[k]) end
  cmd[#cmd + 1] = proc.lua
  cmd[#cmd + 1] = "bin/ravan-history"
  for _, a in ipairs(args) do cmd[#cmd + 1] = proc.quote(a) end
  local stdout, status = proc.run(table.concat(cmd, " ") .. " 2>" .. proc.quote(err))
  local stderr = M.read_file(err)
  os.remove(err)
  return status, stdout, stderr
end

return M
