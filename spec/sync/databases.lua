-- The databases the sync specs write into: SQLite files removed after each spec, and
-- PostgreSQL databases in one throwaway cluster, started on the first database a spec asks
-- for (busted runs a block's setup even when a filter runs none of its specs), on every Lua:
-- LuaSQL's driver is built per Lua.
local postgres = require "spec.support.postgres"

local M = {}

local pg
local tmp_files = {}

function M.sqlite_url()
  local path = os.tmpname()
  os.remove(path)
  tmp_files[#tmp_files + 1] = path
  return "sqlite:" .. path
end

function M.pg_database()
  pg = pg or postgres.start()
  return pg.new_database()
end

-- For after_each: removes the SQLite files made since the last call.
function M.remove_files()
  for _, path in ipairs(tmp_files) do
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
  end
  tmp_files = {}
end

-- For teardown: stops the cluster, if one was started.
function M.stop_pg()
  if pg then pg.stop() end
  pg = nil
end

return M
