-- What `client:sync` keeps in its database: the schema (made on first use),
-- one page of calls written together with the phone's progress, and that
-- progress read back. The SQL runs through `ravan.sync.db`, the same for SQLite
-- and PostgreSQL; only column types differ.

local contract = require "ravan.contract"
local db_mod = require "ravan.sync.db"
local errors = require "ravan.errors"
local json = require("ravan.json").canonical

local M = {}

M.SCHEMA_VERSION = 2

local concat, format = table.concat, string.format
local floor = math.floor

-- A column per documented field, typed per database by the field's
-- contract type; cost_total is exact (TEXT / NUMERIC, never a float).
-- Each column: name, SQLite type, PostgreSQL type, contract type.
local SQL_TYPE = {
  string = { "TEXT", "TEXT" },
  integer = { "INTEGER", "BIGINT" },
  decimal = { "TEXT", "NUMERIC" },
  number = { "REAL", "DOUBLE PRECISION" },
  object = { "TEXT", "JSONB" },
  time = { "TEXT", "TIMESTAMPTZ" },
}

local function column(name, kind, sql)
  sql = sql or SQL_TYPE[kind]
  return { name, sql[1], sql[2], kind ~= "string" and kind or nil }
end

local PRIMARY_KEY = { "TEXT PRIMARY KEY", "TEXT PRIMARY KEY" }
-- Fields the contract does not document, and documented ones whose value
-- did not fit the column's type, as a JSON object; NULL when none.
local EXTRA = column("extra", "object")

-- The record's fields as columns (arrays are tables of their own), `id`
-- the key; `columns_of[name]` replaces a field's column by the columns given.
local function columns_of(rec, replace)
  local out = {}
  for _, name in ipairs(rec.keys) do
    local kind = rec.type_of[name]
    if replace and replace[name] then
      for _, c in ipairs(replace[name]) do out[#out + 1] = c end
    elseif kind ~= "array" then
      out[#out + 1] = column(name, kind, name == "id" and PRIMARY_KEY or nil)
    end
  end
  out[#out + 1] = EXTRA
  return out
end

local CALL_FIELDS = columns_of(contract.CALL)
-- When a reconciliation found the call gone from the server; NULL while it is there. Not a
-- field of the API, so it follows the row's fields (and extra) in the table.
local DELETED_AT = column("deleted_at", "time")
local CALL_TABLE = {}
for i = 1, #CALL_FIELDS do CALL_TABLE[i] = CALL_FIELDS[i] end
CALL_TABLE[#CALL_TABLE + 1] = DELETED_AT

-- A transcript row names its call by `call_id` and holds its message's
-- fields flat.
local MESSAGE = contract.MESSAGE
local message_columns = {}
for _, name in ipairs(MESSAGE.keys) do
  message_columns[#message_columns + 1] = column(name, MESSAGE.type_of[name])
end
local TRANSCRIPT_FIELDS = columns_of(contract.TRANSCRIPT, {
  call_session_id = { column("call_id", "string", { "TEXT NOT NULL", "TEXT NOT NULL" }) },
  message = message_columns,
})

local function names(fields)
  local out = {}
  for i = 1, #fields do out[i] = fields[i][1] end
  return out
end
-- A call written from a page is on the server: its deleted_at (the last column) is NULL.
local CALL_COLS, TRANSCRIPT_COLS = names(CALL_TABLE), names(TRANSCRIPT_FIELDS)

local function set_of(list)
  local set = {}
  for i = 1, #list do set[list[i]] = true end
  return set
end
local DOCUMENTED = set_of(contract.CALL.keys)

local function create_table(kind, name, fields, tail)
  local cols = {}
  for i = 1, #fields do
    cols[i] = fields[i][1] .. " " .. (kind == "sqlite" and fields[i][2] or fields[i][3])
  end
  if tail then cols[#cols + 1] = tail end
  return "CREATE TABLE IF NOT EXISTS " .. name .. " (" .. concat(cols, ", ") .. ")"
end

-- The columns of sync_state, in order, with their SQL (the same on both databases).
-- head_id, head_at: the newest call of the last completed sync and its time (epoch seconds),
-- where incremental paging stops. pass_*: a pass in progress (its head and the head's time
-- when it began, the next page to read and the page size it counts in, whether it is a full
-- pass, the reconciliation it is (0: none) and the total_count its page 1 reported), so a
-- killed sync resumes where it stopped. reconciles counts the reconciliations begun (their
-- number marks the links they saw), reconciled_at is when the last one completed.
local STATE_COLUMNS = {
  { "phone", "TEXT PRIMARY KEY" },
  { "head_id", "TEXT" },
  { "pass_head_id", "TEXT" },
  { "pass_page", "INTEGER" },
  { "pass_page_size", "INTEGER" },
  { "pass_full", "INTEGER NOT NULL DEFAULT 0" },
  { "passes", "INTEGER NOT NULL DEFAULT 0" },
  { "full_passes", "INTEGER NOT NULL DEFAULT 0" },
  { "completed_at", "TEXT" },
  { "updated_at", "TEXT" },
  { "head_at", "DOUBLE PRECISION", 2 },
  { "pass_head_at", "DOUBLE PRECISION", 2 },
  { "pass_reconcile", "INTEGER NOT NULL DEFAULT 0", 2 },
  { "pass_total", "INTEGER", 2 },
  { "reconciles", "INTEGER NOT NULL DEFAULT 0", 2 },
  { "reconciled_at", "TEXT", 2 },
}
local STATE_COLS = {}
for i, c in ipairs(STATE_COLUMNS) do STATE_COLS[i] = c[1] end

local function state_sql()
  local cols = {}
  for i, c in ipairs(STATE_COLUMNS) do cols[i] = c[1] .. " " .. c[2] end
  return "CREATE TABLE IF NOT EXISTS sync_state (" .. concat(cols, ", ") .. ")"
end

-- Workers sharing a PostgreSQL database: a phone's lease (who syncs it until when, and when
-- a worker last finished it), and the live workers (their last heartbeat, whose count divides
-- the rate budget, and when their round began). Times are the database's clock, in epoch seconds.
local WORKER_TABLES = {
  "CREATE TABLE IF NOT EXISTS sync_leases (phone TEXT PRIMARY KEY, worker TEXT, "
    .. "expires_at DOUBLE PRECISION NOT NULL DEFAULT 0, finished_at DOUBLE PRECISION)",
  "CREATE TABLE IF NOT EXISTS sync_workers (worker TEXT PRIMARY KEY, "
    .. "seen_at DOUBLE PRECISION NOT NULL, round_at DOUBLE PRECISION)",
}

-- phone_calls.seen: the number of the phone's last reconciliation that read the call.
local LINK_SEEN = { "INTEGER", "INTEGER" }

local function schema_sql(kind)
  return {
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    create_table(kind, "calls", CALL_TABLE),
    "CREATE TABLE IF NOT EXISTS phone_calls (phone TEXT NOT NULL, call_id TEXT NOT NULL, "
      .. "seen INTEGER, PRIMARY KEY (phone, call_id))",
    "CREATE INDEX IF NOT EXISTS phone_calls_call ON phone_calls (call_id)",
    create_table(kind, "transcripts", TRANSCRIPT_FIELDS),
    "CREATE INDEX IF NOT EXISTS transcripts_call ON transcripts (call_id)",
    "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at)",
    state_sql(),
    WORKER_TABLES[1],
    WORKER_TABLES[2],
  }
end

-- The steps from each older schema to the next, run in order in the transaction that opens
-- the database: `[v]` takes version v to v + 1. A database made by an older release keeps
-- every row; what the new columns need is filled in here. A new schema version adds a step
-- here and its columns to the tables above (a spec checks that both make the same tables).
local function add_column(tbl, name, sql)
  return "ALTER TABLE " .. tbl .. " ADD COLUMN " .. name .. " " .. sql
end

local MIGRATIONS = {
  [1] = function(kind)
    local stmts = {
      add_column("calls", "deleted_at", kind == "sqlite" and DELETED_AT[2] or DELETED_AT[3]),
      add_column("phone_calls", "seen", kind == "sqlite" and LINK_SEEN[1] or LINK_SEEN[2]),
    }
    for _, c in ipairs(STATE_COLUMNS) do
      if c[3] == 2 then stmts[#stmts + 1] = add_column("sync_state", c[1], c[2]) end
    end
    -- The calls it holds were read by the completed syncs so far: the first reconciliation
    -- comes reconcile_every after the last of them, not at once on upgrading. head_at stays
    -- NULL: the next pass stops at head_id, as before, and records it.
    stmts[#stmts + 1] = "UPDATE sync_state SET reconciled_at = completed_at"
    for _, sql in ipairs(WORKER_TABLES) do stmts[#stmts + 1] = sql end
    return stmts
  end,
}

-- Runs `fn` in a transaction that no other sync's write interleaves with:
-- SQLite's BEGIN IMMEDIATE is that already; on PostgreSQL one advisory lock,
-- taken first, does the same. Two syncs making the schema at once would
-- race on CREATE; one making it while another writes a page, or two writing
-- the same calls in another order, would deadlock on the tables' locks; and
-- the counts a page reads before it writes would be off.
local function write(db, fn)
  return db:transaction(function()
    if db.kind == "postgresql" then
      local ok, err = db:exec("SELECT pg_advisory_xact_lock(7243601)")
      if not ok then return nil, err end
    end
    return fn()
  end)
end

M.write = write

local function exec_all(db, stmts)
  for i = 1, #stmts do
    local ok, err = db:exec(stmts[i])
    if not ok then return nil, err end
  end
  return true
end

local function ensure_schema(db)
  return write(db, function()
    local ok, err = db:exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    if not ok then return nil, err end
    local rows
    rows, err = db:rows("SELECT version FROM schema_version")
    if not rows then return nil, err end
    if #rows == 0 then
      ok, err = exec_all(db, schema_sql(db.kind))
      if not ok then return nil, err end
      return db:exec("INSERT INTO schema_version (version) VALUES (?)", M.SCHEMA_VERSION)
    end
    local v = tonumber(rows[1].version)
    if v == M.SCHEMA_VERSION then return true end
    if not v or v > M.SCHEMA_VERSION or not MIGRATIONS[v] then
      return nil, errors.new("database", format(
        "the database has sync schema version %s, which this ravan (schema %d) cannot use%s",
        tostring(rows[1].version), M.SCHEMA_VERSION,
        v and v > M.SCHEMA_VERSION and ": it was made by a newer ravan; upgrade ravan" or ""))
    end
    for from = v, M.SCHEMA_VERSION - 1 do
      ok, err = exec_all(db, MIGRATIONS[from](db.kind))
      if not ok then return nil, err end
    end
    return db:exec("UPDATE schema_version SET version = ?", M.SCHEMA_VERSION)
  end)
end

--- Opens `url` (see `ravan.sync.db.open`) and makes the schema when missing.
function M.open(url)
  local db, err = db_mod.open(url)
  if not db then return nil, err end
  local ok
  ok, err = ensure_schema(db)
  if not ok then
    db:close()
    return nil, err
  end
  return db
end

-- JSON values are stored canonical, so an unchanged value is byte-identical on every run
-- (Lua's table order is not) and SQLite sees no change where there is none.
M.json = json

local function is_decimal(s)
  return type(s) == "string" and (s:find("^%-?%d+%.?%d*$") or s:find("^%-?%.%d+$")) ~= nil
end

-- Seconds since the epoch of an RFC 3339 time, or nil: the sync compares calls by it (seconds
-- plus the fraction are precision enough), and a time it cannot read would fail a TIMESTAMPTZ.
local function epoch(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac, zone = s:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  -- Days from civil (proleptic Gregorian), as in Howard Hinnant's algorithm.
  if mo <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
    + (tonumber("0" .. frac) or 0)
  if zone == "" or zone == "Z" or zone == "z" then return t end
  -- +05:30, +0530, or +05 (how PostgreSQL writes a TIMESTAMPTZ).
  local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then
    sign, zh = zone:match("^([+-])(%d%d)$")
    zm = "0"
  end
  if not sign then return nil end
  local off = tonumber(zh) * 3600 + tonumber(zm) * 60
  return sign == "+" and t - off or t + off
end
M.epoch = epoch

local function is_time(s)
  return epoch(s) ~= nil
end

local function is_integer(v)
  return type(v) == "number" and v == math.floor(v)
end

local CHECK = {
  integer = is_integer,
  number = function(v) return type(v) == "number" end,
  decimal = is_decimal,
  time = is_time,
  object = function(v) return type(v) == "table" end,
}

-- `extra` (made when needed) with every key of `t` that `known` does not list, each named
-- `prefix` .. key when a prefix is given.
local function add_unknown(extra, t, known, prefix)
  for k, v in pairs(t) do
    if not known[k] then
      extra = extra or {}
      extra[prefix and prefix .. tostring(k) or k] = v
    end
  end
  return extra
end

-- One row for `fields` from `t`; a value of the wrong type goes to the extra
-- column (as do keys `known` does not list) instead of failing the page,
-- with what the caller already put in `extra` (optional).
local function row_of(fields, t, known, extra)
  local row = {}
  for i = 1, #fields - 1 do
    local name, check = fields[i][1], fields[i][4]
    local v = t[name]
    if v ~= nil then
      if check and not CHECK[check](v) or not check and type(v) ~= "string" then
        extra = extra or {}
        extra[name] = v
        v = nil
      elseif check == "object" then
        v = json(v)
      end
    end
    row[i] = v
  end
  extra = add_unknown(extra, t, known)
  row[#fields] = extra and json(extra)
  return row
end

local TRANSCRIPT_KNOWN = set_of(contract.TRANSCRIPT.keys)
local MESSAGE_KNOWN = set_of(MESSAGE.keys)
-- The keys of the flattened row transcript_row builds.
local FLAT_TRANSCRIPT_KNOWN = set_of(TRANSCRIPT_COLS)

local function transcript_row(call_id, tr, index)
  local msg = type(tr.message) == "table" and tr.message or {}
  local extra = add_unknown(nil, tr, TRANSCRIPT_KNOWN)
  if tr.call_session_id ~= nil and tr.call_session_id ~= call_id then
    extra = extra or {}
    extra.call_session_id = tr.call_session_id
  end
  extra = add_unknown(extra, msg, MESSAGE_KNOWN, "message.")
  local flat = {}
  for k in pairs(TRANSCRIPT_KNOWN) do flat[k] = tr[k] end
  for k in pairs(MESSAGE_KNOWN) do flat[k] = msg[k] end
  flat.message, flat.call_session_id = nil, nil
  -- Keyed by its own id; one without gets a stable stand-in.
  flat.id = tr.id or (call_id .. "#" .. index)
  flat.call_id = call_id
  -- Fields of the wrong type join what the transcript's own extra keys hold.
  return row_of(TRANSCRIPT_FIELDS, flat, FLAT_TRANSCRIPT_KNOWN, extra)
end

local function in_list(db, ids)
  local lits = {}
  for i = 1, #ids do lits[i] = db:quote(ids[i]) end
  return "(" .. concat(lits, ",") .. ")"
end

-- Rows per statement: bounds the statement's size whatever the page holds.
local CHUNK = 200

local function upsert_chunked(db, tbl, cols, key, rows)
  local total = 0
  for first = 1, #rows, CHUNK do
    local part = {}
    for i = first, math.min(first + CHUNK - 1, #rows) do part[#part + 1] = rows[i] end
    local n, err = db:upsert(tbl, cols, key, part)
    if not n then return nil, err end
    total = total + n
  end
  return total
end

local function now_text()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end
M.now_text = now_text

-- The end of a reconciliation, in the transaction of its last page: the phone's calls it did
-- not read are gone from the server. Only when the pass read as many calls as the server
-- reported at its start and at its end: otherwise the history moved under it (a call deleted
-- or inserted above the page in hand shifts the pages) and a call it missed may still be
-- there, so nothing is marked and the reconciliation stays due. Returns the calls marked, or
-- false when it did not converge.
local function reconcile_end(db, phone, rec, state)
  local rows, err = db:rows("SELECT count(*) AS n FROM phone_calls WHERE phone = ? AND seen = ?",
    phone, rec.number)
  if not rows then return nil, err end
  local read = tonumber(rows[1].n)
  if read ~= rec.total or read ~= rec.first_total then return false end
  local now = now_text()
  local mine = "SELECT call_id FROM phone_calls WHERE phone = " .. db:quote(phone)
  local marked
  marked, err = db:exec("UPDATE calls SET deleted_at = ? WHERE deleted_at IS NULL AND id IN ("
    .. mine .. " AND (seen IS NULL OR seen <> ?))", now, rec.number)
  if not marked then return nil, err end
  if rec.purge then
    local gone = " IN (SELECT id FROM calls WHERE deleted_at IS NOT NULL AND id IN (" .. mine .. "))"
    local ok
    ok, err = exec_all(db, {
      "DELETE FROM transcripts WHERE call_id" .. gone,
      "DELETE FROM calls WHERE deleted_at IS NOT NULL AND id IN (" .. mine .. ")",
      "DELETE FROM phone_calls WHERE phone = " .. db:quote(phone)
        .. " AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.id = phone_calls.call_id)",
    })
    if not ok then return nil, err end
  end
  state.reconciled_at = now
  return marked
end

--- Writes one page's calls for `phone` and the phone's new `state`, in one
-- transaction: either both are stored or neither. `rec` (optional) is the
-- reconciliation the page belongs to: `{ number, total, first_total, last, purge }`.
-- Returns counts `{ inserted, updated, unchanged, deleted, reconciled }`.
-- `guard` (optional) runs first in the transaction: a worker's check that it still holds the
-- phone's lease (nil, err writes nothing).
function M.save_page(db, phone, calls, state, with_transcripts, rec, guard)
  local ids, rows, links, trows, seen = {}, {}, {}, {}, {}
  for i = 1, #calls do
    local call = calls[i]
    local id = call.id
    if type(id) == "string" and not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
      rows[#rows + 1] = row_of(CALL_FIELDS, call, DOCUMENTED)
      links[#links + 1] = { phone, id, rec and rec.number }
      if with_transcripts and type(call.transcripts) == "table" then
        for j = 1, #call.transcripts do
          local tr = call.transcripts[j]
          if type(tr) == "table" then trows[#trows + 1] = transcript_row(id, tr, j) end
        end
      end
    end
  end
  -- Only a reconciliation says which pass read a link; other passes leave it as it is.
  local link_cols = rec and { "phone", "call_id", "seen" } or { "phone", "call_id" }
  local counts = { inserted = 0, updated = 0, unchanged = 0, deleted = 0, reconciled = 0 }
  local ok, err = write(db, function()
    if guard then
      local held, gerr = guard()
      if not held then return nil, gerr end
    end
    if #ids > 0 then
      local existing, qerr = db:rows("SELECT id FROM calls WHERE id IN " .. in_list(db, ids))
      if not existing then return nil, qerr end
      local written, uerr = db:upsert("calls", CALL_COLS, "id", rows)
      if not written then return nil, uerr end
      counts.inserted = #ids - #existing
      counts.updated = written - counts.inserted
      counts.unchanged = #existing - counts.updated
      local n, lerr = db:upsert("phone_calls", link_cols, "phone, call_id", links)
      if not n then return nil, lerr end
      n, lerr = upsert_chunked(db, "transcripts", TRANSCRIPT_COLS, "id", trows)
      if not n then return nil, lerr end
    end
    if rec and rec.last then
      local marked, rerr = reconcile_end(db, phone, rec, state)
      if marked == nil then return nil, rerr end
      if marked then counts.deleted, counts.reconciled = marked, 1 end
    end
    return M.put_state(db, phone, state)
  end)
  if not ok then return nil, err end
  return counts
end

--- The phone's progress (see STATE_COLUMNS; a fresh table when unknown).
function M.get_state(db, phone)
  local rows, err = db:rows("SELECT * FROM sync_state WHERE phone = ?", phone)
  if not rows then return nil, err end
  local r = rows[1]
  if not r then return { passes = 0, full_passes = 0, reconciles = 0, pass_reconcile = 0 } end
  return {
    head_id = r.head_id, head_at = tonumber(r.head_at), pass_head_id = r.pass_head_id,
    pass_head_at = tonumber(r.pass_head_at),
    pass_page = tonumber(r.pass_page), pass_page_size = tonumber(r.pass_page_size),
    pass_full = tonumber(r.pass_full) == 1,
    pass_reconcile = tonumber(r.pass_reconcile) or 0, pass_total = tonumber(r.pass_total),
    passes = tonumber(r.passes) or 0, full_passes = tonumber(r.full_passes) or 0,
    reconciles = tonumber(r.reconciles) or 0,
    completed_at = r.completed_at, reconciled_at = r.reconciled_at,
  }
end

function M.put_state(db, phone, s)
  local row = {}
  for i, name in ipairs(STATE_COLS) do
    local v = s[name]
    if name == "phone" then v = phone
    elseif name == "pass_full" then v = v and 1 or 0
    elseif name == "updated_at" then v = now_text()
    end
    row[i] = v
  end
  return db:upsert("sync_state", STATE_COLS, "phone", { row })
end

return M
