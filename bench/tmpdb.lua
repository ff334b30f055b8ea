-- Throwaway SQLite databases for the benchmarks: a fresh path (os.tmpname makes the file; it is
-- removed so that the sync creates the database itself), and its removal along with the -wal
-- and -shm files SQLite leaves beside it.
local M = {}

function M.path()
  local path = os.tmpname()
  os.remove(path)
  return path
end

function M.remove(path)
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(path .. s) end
end

return M
