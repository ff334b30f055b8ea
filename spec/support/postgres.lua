-- A throwaway PostgreSQL cluster for the specs: Debian's initdb and pg_ctl in a temp dir, a unix
-- socket there and no TCP, stopped and removed by `stop`. As root the server runs as the
-- `postgres` user (PostgreSQL refuses root), which then owns the temp dir.
local proc = require "spec.support.proc"

local M = {}

local sh = proc.sh

local function bin_dir()
  local out = sh("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1")
  local dir = out:match("(%S+)")
  assert(dir, "PostgreSQL is not installed (Debian: postgresql)")
  return dir
end

-- Starts a cluster; returns an object with url(dbname), new_database() and stop().
function M.start()
  local bin = bin_dir()
  local dir = sh("mktemp -d /tmp/ravan-pg.XXXXXX"):match("(%S+)")
  local as = ""
  if sh("id -u"):match("%d+") == "0" then
    sh("chown postgres " .. proc.quote(dir))
    as = "runuser -u postgres -- "
  end
  sh(as .. bin .. "/initdb -D " .. proc.quote(dir .. "/data")
    .. " -A trust -U ravan -E UTF8 --locale=C --no-sync >/dev/null")
  sh(as .. bin .. "/pg_ctl -D " .. proc.quote(dir .. "/data") .. " -w -l "
    .. proc.quote(dir .. "/log") .. " -o " .. proc.quote("-k " .. dir
    .. " -c listen_addresses='' -c fsync=off -c max_connections=50") .. " start >/dev/null")
  local n = 0
  local self = {}
  function self.url(dbname)
    return "postgresql://ravan@/" .. dbname .. "?host=" .. dir
  end
  -- A fresh, empty database for one spec.
  function self.new_database()
    n = n + 1
    local name = "spec" .. n
    local luasql = require "luasql.postgres"
    local env = luasql.postgres()
    local conn = assert(env:connect(self.url("postgres")))
    assert(conn:execute("CREATE DATABASE " .. name))
    conn:close()
    env:close()
    return self.url(name)
  end
  function self.stop()
    proc.run(as .. bin .. "/pg_ctl -D " .. proc.quote(dir .. "/data") .. " -m immediate -w stop")
    proc.run("rm -rf " .. proc.quote(dir))
  end
  return self
end

return M
