-- The recordings of synced calls (`client:sync{ recordings = DIR }`): after
-- each round, the calls of the synced phones that have a recording_url and
-- no file yet (or a file of another URL) are downloaded into DIR, and each
-- file is recorded in its own table, made when missing and keyed by call id:
--
--   recordings (call_id, recording_url, recording_path, recording_bytes,
--               recording_sha256)
--
-- A table of its own rather than columns of `calls`, so the calls' schema and
-- its migrations stay the store's alone.

local recordings = require "ravan.recordings"

local M = {}

M.TABLE_SQL = "CREATE TABLE IF NOT EXISTS recordings (call_id TEXT PRIMARY KEY, "
  .. "recording_url TEXT NOT NULL, recording_path TEXT NOT NULL, "
  .. "recording_bytes BIGINT NOT NULL, recording_sha256 TEXT NOT NULL)"

local COLUMNS = { "call_id", "recording_url", "recording_path", "recording_bytes", "recording_sha256" }

-- The calls of `phones` whose recording has no row yet, or a row for another URL.
local function wanted(db, phones)
  local marks = {}
  for i = 1, #phones do marks[i] = "?" end
  return db:rows("SELECT c.id, c.recording_url FROM calls c "
    .. "JOIN phone_calls p ON p.call_id = c.id "
    .. "LEFT JOIN recordings r ON r.call_id = c.id "
    .. "WHERE p.phone IN (" .. table.concat(marks, ",") .. ") "
    .. "AND c.recording_url IS NOT NULL AND c.recording_url <> '' "
    .. "AND (r.call_id IS NULL OR r.recording_url <> c.recording_url) ORDER BY c.id",
    (table.unpack or unpack)(phones))
end

--- Downloads what is missing and records it; `summary.recordings` gets the
-- counts (`downloaded`, `skipped`, `failed`, `missing`, `bytes`) and
-- `summary.recording_errors` each failed call's `{ id, error }`. nil, err
-- for the database or the directory.
function M.fetch(client, db, phones, dir, summary)
  local ok, err = db:exec(M.TABLE_SQL)
  if not ok then return nil, err end
  local calls
  calls, err = wanted(db, phones)
  if not calls then return nil, err end
  local counts = summary.recordings or { downloaded = 0, skipped = 0, failed = 0, missing = 0, bytes = 0 }
  summary.recordings = counts
  summary.recording_errors = summary.recording_errors or {}
  if #calls == 0 then return true end
  local s
  s, err = recordings.many(client, { calls = calls, dir = dir })
  if not s then return nil, err end
  local rows, url_of = {}, {}
  for i = 1, #calls do url_of[calls[i].id] = calls[i].recording_url end
  for _, r in ipairs(s.recordings) do
    if r.path then
      rows[#rows + 1] = { r.id, url_of[r.id], r.path, r.bytes, r.sha256 }
    elseif r.error then
      summary.recording_errors[#summary.recording_errors + 1] = { id = r.id, error = r.error }
    end
  end
  for _, k in ipairs { "downloaded", "skipped", "failed", "missing", "bytes" } do
    counts[k] = counts[k] + s[k]
  end
  return db:transaction(function() return db:upsert("recordings", COLUMNS, "call_id", rows) end)
end

return M
