-- ravan.sync.db, the driver layer under client:sync, on a real SQLite file: literals, transactions,
-- upserts that tell a change from none, and errors that never show the URL.
local db_mod = require "ravan.sync.db"
local errors = require "ravan.errors"

describe("ravan.sync.db", function()
  local path, db
  before_each(function()
    path = os.tmpname()
    db = assert(db_mod.open("sqlite:" .. path))
    assert(db:exec("CREATE TABLE t (id TEXT PRIMARY KEY, a TEXT, n INTEGER, x REAL)"))
  end)
  after_each(function()
    db:close()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
  end)

  it("renders placeholders as literals, leaving a '?' inside quotes alone", function()
    assert.are.equal("SELECT 'it''s', NULL, 12, 0.5, 1, '?'",
      db:render("SELECT ?, ?, ?, ?, ?, '?'", "it's", nil, 12, 0.5, true))
  end)

  it("stores text with quotes and NUL bytes, and exact integers", function()
    assert(db:exec("INSERT INTO t VALUES (?, ?, ?, ?)", "k", "a'b\0c", 2^53, 0.1))
    local row = assert(db:rows("SELECT * FROM t"))[1]
    assert.are.equal("a'b\239\191\189c", row.a)
    assert.are.equal(2^53, tonumber(row.n))
    assert.are.equal(0.1, row.x)
  end)

  it("refuses a count of values that does not match the placeholders", function()
    local ok, err = db:exec("SELECT ?, ?", 1)
    assert.is_nil(ok)
    assert.are.equal("invalid_argument", err.kind)
  end)

  it("upserts, counting rows written and leaving unchanged rows alone", function()
    local cols = { "id", "a", "n", "x" }
    assert.are.equal(2, db:upsert("t", cols, "id", { { "1", "x", 1, 1.5 }, { "2", "y", 2 } }))
    assert.are.equal(1, db:upsert("t", cols, "id", { { "1", "x", 1, 1.5 }, { "2", "z", 2 } }))
    assert.are.equal(0, db:upsert("t", cols, "id", { { "1", "x", 1, 1.5 }, { "2", "z", 2 } }))
    assert.are.equal("z", db:rows("SELECT a FROM t WHERE id = '2'")[1].a)
  end)

  it("upserts on a key of several columns, inserting only what is missing", function()
    assert(db:exec("CREATE TABLE l (a TEXT, b TEXT, PRIMARY KEY (a, b))"))
    assert.are.equal(2, db:upsert("l", { "a", "b" }, "a, b", { { "x", "1" }, { "x", "2" } }))
    assert.are.equal(1, db:upsert("l", { "a", "b" }, "a, b", { { "x", "1" }, { "y", "1" } }))
    assert.are.equal(3, #db:rows("SELECT * FROM l"))
  end)

  it("commits a transaction that returns true, rolls back one that fails or raises", function()
    assert(db:transaction(function() return db:exec("INSERT INTO t (id) VALUES ('a')") end))
    local ok, err = db:transaction(function()
      db:exec("INSERT INTO t (id) VALUES ('b')")
      return nil, errors.new("database", "no")
    end)
    assert.is_nil(ok)
    assert.are.equal("no", err.message)
    ok, err = db:transaction(function()
      db:exec("INSERT INTO t (id) VALUES ('c')")
      error("boom")
    end)
    assert.is_nil(ok)
    assert.are.equal("database", err.kind)
    assert.are.same({ { id = "a" } }, db:rows("SELECT id FROM t"))
  end)

  it("reports a bad statement as a database error", function()
    local ok, err = db:exec("SELEKT 1")
    assert.is_nil(ok)
    assert.are.equal("database", err.kind)
    assert.matches("syntax error", err.message)
  end)

  it("refuses an unknown URL, and never repeats a PostgreSQL URL's password", function()
    local d, err = db_mod.open("mysql://x")
    assert.is_nil(d)
    assert.are.equal("invalid_argument", err.kind)
    d, err = db_mod.open("postgresql://u:s3cret-pw@/nodb?host=/nonexistent&connect_timeout=1")
    assert.is_nil(d)
    assert.are.equal("database", err.kind)
    assert.is_nil(tostring(err):find("s3cret-pw", 1, true))
    d, err = db_mod.open("sqlite:/nonexistent/dir/x.db")
    assert.is_nil(d)
    assert.are.equal("database", err.kind)
  end)
end)

describe("sync's pure parts", function()
  local sync = require "ravan.sync"
  local store = require "ravan.sync.store"

  it("reads RFC 3339 times with fractions and offsets, and nothing else", function()
    assert.are.equal(1781170200, sync.epoch("2026-06-11T09:30:00Z"))
    assert.are.equal(1781170200.25, sync.epoch("2026-06-11T09:30:00.25Z"))
    assert.are.equal(1781170200, sync.epoch("2026-06-11T11:30:00+02:00"))
    assert.are.equal(1781170200, sync.epoch("2026-06-11 04:00:00-0530"))
    assert.are.equal(951782400, sync.epoch("2000-02-29T00:00:00Z"))
    for _, bad in ipairs { "2026-06-11", "yesterday", "2026-06-11T09:30:00+2", 1781170200 } do
      assert.is_nil(sync.epoch(bad), tostring(bad))
    end
  end)

  it("writes JSON with sorted keys, so an unchanged value is byte-identical", function()
    assert.are.equal('{"a":[1,2.5,"x"],"b":{"c":true,"d":"q\\"\\\\\\u000a"}}',
      store.json({ b = { d = 'q"\\\n', c = true }, a = { 1, 2.5, "x" } }))
    assert.are.equal("4", store.json(4.0))
    assert.are.equal("null", store.json(0 / 0))
  end)
end)
