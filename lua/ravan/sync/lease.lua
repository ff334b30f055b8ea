-- Workers on one PostgreSQL database: several syncs (processes or clients, on any machines)
-- with the same phones share them through the database. Each phone is leased to one worker at
-- a time (a row with an expiry, taken with FOR UPDATE SKIP LOCKED); a worker renews its leases
-- with its heartbeat and with every page it writes, so one that dies loses them `lease`
-- seconds after its last sign of life, and another resumes its passes from the committed page.
-- The live workers are counted from their heartbeats: the rate budget is divided by them.
-- These transactions lock only lease and worker rows (a lease held is skipped, never waited
-- for), so they do not take the lock that serialises the syncs' page writes.

local core = require "ravan.core"
local errors = require "ravan.errors"

local M = {}

-- Seconds between heartbeats (each also renews the worker's leases and recounts workers).
M.HEARTBEAT = 1

local Lease = {}
Lease.__index = Lease

local counter = 0
-- A worker's id: unique among workers on any machine (the time, a table's address and a
-- counter of this process).
local function new_id()
  counter = counter + 1
  return string.format("w%.6f-%s-%d", core.now(), tostring({}):match("0x(%x+)") or "", counter)
end

function M.new(db, seconds)
  return setmetatable({ db = db, seconds = seconds, id = new_id(), beat_at = -math.huge,
    workers = 1 }, Lease)
end

local NOW = "extract(epoch from clock_timestamp())"

local function one(db, sql, ...)
  local rows, err = db:rows(sql, ...)
  if not rows then return nil, err end
  return rows[1]
end

-- The database's time: every worker's expiries are on the one clock.
function Lease:now()
  local r, err = one(self.db, "SELECT " .. NOW .. " AS t")
  if not r then return nil, err end
  return tonumber(r.t)
end

-- Says this worker is alive, renews its leases, forgets workers silent for a lease, and
-- returns how many are alive (itself included). At most every HEARTBEAT seconds unless `force`.
function Lease:heartbeat(force)
  local t = core.now()
  if not force and t - self.beat_at < M.HEARTBEAT then return self.workers end
  self.beat_at = t
  local db, me, lease = self.db, self.id, self.seconds
  local n, err = db:transaction(function()
    local ok, e = db:upsert("sync_workers", { "worker", "seen_at" }, "worker",
      { { me, 0 } })
    if not ok then return nil, e end
    ok, e = db:exec("UPDATE sync_workers SET seen_at = " .. NOW .. " WHERE worker = ?", me)
    if not ok then return nil, e end
    ok, e = db:exec("DELETE FROM sync_workers WHERE seen_at < " .. NOW .. " - ?", lease)
    if not ok then return nil, e end
    ok, e = db:exec("UPDATE sync_leases SET expires_at = " .. NOW .. " + ? WHERE worker = ?",
      lease, me)
    if not ok then return nil, e end
    local r
    r, e = one(db, "SELECT count(*) AS n FROM sync_workers")
    if not r then return nil, e end
    return tonumber(r.n)
  end)
  if not n then return nil, err end
  self.workers = n
  return n
end

-- Starts a round: returns its start, the oldest start among the live workers' rounds, so a
-- worker that joins late counts the phones the others finished in their round as done.
function Lease:begin_round()
  local db, me = self.db, self.id
  return db:transaction(function()
    local ok, err = db:exec("UPDATE sync_workers SET round_at = " .. NOW .. " WHERE worker = ?", me)
    if not ok then return nil, err end
    local r
    r, err = one(db, "SELECT min(round_at) AS t FROM sync_workers WHERE seen_at >= " .. NOW
      .. " - ?", self.seconds)
    if not r then return nil, err end
    return tonumber(r.t)
  end)
end

-- Takes the phone's lease when it is free (never taken, released, or expired): "taken";
-- "held" when another worker holds it; "done" when a worker finished it at `since` or later.
function Lease:take(phone, since)
  local db, me = self.db, self.id
  return db:transaction(function()
    local ok, err = db:exec("INSERT INTO sync_leases (phone) VALUES (?) ON CONFLICT DO NOTHING",
      phone)
    if not ok then return nil, err end
    local r
    r, err = one(db, "SELECT worker, finished_at FROM sync_leases WHERE phone = ? AND (worker = ? "
      .. "OR worker IS NULL OR expires_at < " .. NOW .. ") FOR UPDATE SKIP LOCKED", phone, me)
    if err then return nil, err end
    if not r then return "held" end
    if since and tonumber(r.finished_at) and tonumber(r.finished_at) >= since then return "done" end
    ok, err = db:exec("UPDATE sync_leases SET worker = ?, expires_at = " .. NOW .. " + ? "
      .. "WHERE phone = ?", me, self.seconds, phone)
    if not ok then return nil, err end
    return "taken"
  end)
end

-- In a page's transaction: the lease is still this worker's (renewed), else an error that
-- ends the phone without writing.
function Lease:guard(phone)
  return function()
    local n, err = self.db:exec("UPDATE sync_leases SET expires_at = " .. NOW .. " + ? "
      .. "WHERE phone = ? AND worker = ?", self.seconds, phone, self.id)
    if not n then return nil, err end
    if n == 0 then
      return nil, errors.new("database", "the lease of " .. phone
        .. " went to another worker (this one was silent for longer than the lease)")
    end
    return true
  end
end

-- Releases the phone, noting when it was finished when `done` (not when it failed: another
-- worker may try it).
function Lease:finish(phone, done)
  local db = self.db
  return db:transaction(function()
    return db:exec("UPDATE sync_leases SET worker = NULL, expires_at = 0"
      .. (done and ", finished_at = " .. NOW or "") .. " WHERE phone = ? AND worker = ?",
      phone, self.id)
  end)
end

-- Leaves: the leases this worker holds are free at once, and the others' budgets grow at
-- their next heartbeat.
function Lease:leave()
  local db, me = self.db, self.id
  return db:transaction(function()
    local ok, err = db:exec("UPDATE sync_leases SET worker = NULL, expires_at = 0 WHERE worker = ?",
      me)
    if not ok then return nil, err end
    return db:exec("DELETE FROM sync_workers WHERE worker = ?", me)
  end)
end

return M
