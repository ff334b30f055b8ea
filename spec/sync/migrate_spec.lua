-- A database made by the release before schema 2 (its store, run from git history) keeps
-- working: the first sync migrates it in place, in one transaction, with every call, transcript
-- and phone's progress it holds; a schema newer than the code is refused.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local databases = require "spec.sync.databases"
local db_mod = require "ravan.sync.db"
local store = require "ravan.sync.store"

-- The last commit whose store made schema 1.
local SCHEMA1_COMMIT = "610ce51e7dc8284a4973921304630e64a6391ca5"

-- The schema-1 store module, loaded from git (nil when the checkout has no history).
local function schema1_store()
  local f = io.popen("git show " .. SCHEMA1_COMMIT .. ":lua/ravan/sync/store.lua 2>/dev/null")
  local src = f:read("*a")
  f:close()
  if not src:find("SCHEMA_VERSION = 1", 1, true) then return nil end
  local chunk = assert((loadstring or load)(src, "=schema-1 store"))
  return chunk()
end

local P30, P250 = "+15550000030", "+15550000250"

local function page_of(calls, first, n)
  local out = {}
  for i = first, math.min(first + n - 1, #calls) do out[#out + 1] = calls[i] end
  return out
end

-- What the schema-1 sync left: P30 synced completely in pages of 10, with transcripts; P250
-- killed after its first page of 10.
local function make_schema1(old, url)
  local db = assert(old.open(url))
  local calls = mock.dataset(P30, true).calls
  local state = { passes = 0, full_passes = 0, pass_head_id = calls[1].id, pass_page_size = 10 }
  for p = 1, 3 do
    if p == 3 then
      state = { head_id = calls[1].id, passes = 1, full_passes = 0,
        completed_at = old.now_text() }
    else
      state.pass_page = p + 1
    end
    assert(old.save_page(db, P30, page_of(calls, 10 * p - 9, 10), state, true))
  end
  calls = mock.dataset(P250).calls
  assert(old.save_page(db, P250, page_of(calls, 1, 10), { passes = 0, full_passes = 0,
    pass_head_id = calls[1].id, pass_page = 2, pass_page_size = 10 }, false))
  db:close()
end

local function rows(url, sql)
  local db = assert(db_mod.open(url))
  local out = assert(db:rows(sql))
  db:close()
  return out
end

-- Each table's columns, in order, with their types, as the database reports them.
local TABLES = { "calls", "phone_calls", "transcripts", "sync_state", "schema_version",
  "sync_leases", "sync_workers" }
local function columns(url, kind)
  local out = {}
  for _, t in ipairs(TABLES) do
    local list = {}
    if kind == "sqlite" then
      for _, r in ipairs(rows(url, "PRAGMA table_info(" .. t .. ")")) do
        list[#list + 1] = r.name .. " " .. r.type .. (r.notnull == 1 and " NOT NULL" or "")
      end
    else
      for _, r in ipairs(rows(url, "SELECT column_name, data_type, is_nullable FROM "
        .. "information_schema.columns WHERE table_name = '" .. t .. "' ORDER BY ordinal_position")) do
        list[#list + 1] = r.column_name .. " " .. r.data_type
          .. (r.is_nullable == "NO" and " NOT NULL" or "")
      end
    end
    out[t] = list
  end
  return out
end

local function without(list, key)
  for _, r in ipairs(list) do r[key] = nil end
  return list
end

after_each(databases.remove_files)

local KINDS = {
  { "SQLite", "sqlite", databases.sqlite_url },
  { "PostgreSQL", "postgresql", databases.pg_database },
}

local old = schema1_store()

for _, k in ipairs(KINDS) do
  local name, kind, new_url = k[1], k[2], k[3]
  describe("sync schema migration on " .. name, function()
    local why = not old and "no git history to run the schema-1 store from"
      or kind == "postgresql" and proc.skip()
    if why then
      pending(why)
      return
    end
    teardown(databases.stop_pg)
    before_each(function() mock.reset() end)

    it("migrates a schema-1 database in place, keeping every row, to the tables a new one has", function()
      local url = new_url()
      make_schema1(old, url)
      local calls = rows(url, "SELECT * FROM calls ORDER BY id")
      local transcripts = rows(url, "SELECT * FROM transcripts ORDER BY id")
      local links = rows(url, "SELECT * FROM phone_calls ORDER BY phone, call_id")
      local states = rows(url, "SELECT * FROM sync_state ORDER BY phone")
      assert.are.equal(40, #calls)
      assert.is_true(#transcripts > 0)

      local db = assert(store.open(url))
      db:close()
      assert.are.same({ { version = kind == "sqlite" and 2 or "2" } },
        rows(url, "SELECT version FROM schema_version"))
      -- Every row as it was; the new columns empty, but for the completed sync's
      -- reconciled_at (its completed_at: it read everything).
      local after = rows(url, "SELECT * FROM calls ORDER BY id")
      for _, r in ipairs(after) do assert.is_nil(r.deleted_at) end
      assert.are.same(calls, without(after, "deleted_at"))
      assert.are.same(transcripts, rows(url, "SELECT * FROM transcripts ORDER BY id"))
      assert.are.same(links, without(rows(url, "SELECT * FROM phone_calls ORDER BY phone, call_id"),
        "seen"))
      local new_states = rows(url, "SELECT * FROM sync_state ORDER BY phone")
      assert.are.equal(states[1].completed_at, new_states[1].reconciled_at)
      assert.is_nil(new_states[2].reconciled_at)
      for i, s in ipairs(states) do
        for key, v in pairs(s) do assert.are.equal(v, new_states[i][key], key) end
      end

      local fresh = new_url()
      db = assert(store.open(fresh))
      db:close()
      assert.are.same(columns(fresh, kind), columns(url, kind))
    end)

    it("syncs on from where the schema-1 sync stopped, missing nothing", function()
      local url = new_url()
      make_schema1(old, url)
      mock.config { shift = { { phone = P30, add = 2 } } }
      local c = mock.fast_client()
      local s = assert(c:sync { phones = { P30, P250 }, db = url, page_size = 10 })
      c:close()
      assert.are.same({}, s.errors)
      -- P30: its two new calls on page 1 (its completed sync counts as its reconciliation);
      -- P250 resumed at page 2 (pages 2 to 26, the empty one that ends it), then reconciled,
      -- never having been (26 pages).
      assert.are.equal(2 + 240, s.inserted)
      assert.are.equal(1, s.reconciled)
      assert.are.equal(1 + 25 + 26, s.requests)
      for _, phone in ipairs { P30, P250 } do
        local want = {}
        for _, call in ipairs(mock.dataset(phone).calls) do want[#want + 1] = call.id end
        table.sort(want)
        local got = {}
        for _, r in ipairs(rows(url, "SELECT call_id FROM phone_calls WHERE phone = '" .. phone
          .. "' ORDER BY call_id")) do got[#got + 1] = r.call_id end
        assert.are.same(want, got)
      end
    end)

    it("migrates in one transaction: a step that fails leaves schema 1 as it was", function()
      local url = new_url()
      make_schema1(old, url)
      local db = assert(db_mod.open(url))
      -- A column the migration adds, there already: its ALTER fails.
      assert(db:exec("ALTER TABLE sync_state ADD COLUMN reconciled_at TEXT"))
      db:close()
      local before = columns(url, kind)
      local ok, err = store.open(url)
      assert.is_nil(ok)
      assert.are.equal("database", err.kind)
      assert.are.same(before, columns(url, kind))
      assert.are.equal(1, tonumber(rows(url, "SELECT version FROM schema_version")[1].version))
    end)

    it("refuses a schema newer than the code, saying so", function()
      local url = new_url()
      local db = assert(store.open(url))
      assert(db:exec("UPDATE schema_version SET version = ?", store.SCHEMA_VERSION + 1))
      db:close()
      local ok, err = store.open(url)
      assert.is_nil(ok)
      assert.are.equal("database", err.kind)
      assert.matches("made by a newer ravan", err.message)
      local c = mock.client()
      local s, serr = c:sync { phone = P30, db = url }
      c:close()
      assert.is_nil(s)
      assert.matches("newer ravan", serr.message)
    end)
  end)
end
