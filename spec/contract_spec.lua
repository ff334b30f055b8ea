-- ravan.contract, the API's fields stated once, against the contract's example (what the local
-- server serves), and what derives from it: the CLI's CSV columns and the sync's schema, which
-- must stay schema version 1's, byte for byte.
local cjson = require "cjson"
local contract = require "ravan.contract"
local output = require "ravan.cli.output"
local store = require "ravan.sync.store"
local h = require "spec.support.helpers"

local EXAMPLE = h.read_file("mock/ravan_mock/example-200.json")

-- The keys of the example written at `indent` spaces, in the order they first appear.
local function keys_at(indent)
  local keys, seen = {}, {}
  for line in EXAMPLE:gmatch("[^\n]+") do
    local spaces, key = line:match('^( *)"([%w_]+)":')
    if key and #spaces == indent and not seen[key] then
      seen[key] = true
      keys[#keys + 1] = key
    end
  end
  return keys
end

local function only(keys, rec)
  local out = {}
  for _, k in ipairs(keys) do
    if rec.type_of[k] then out[#out + 1] = k end
  end
  return out
end

local IS = {
  string = function(v) return type(v) == "string" end,
  time = function(v) return type(v) == "string" and v:find("^%d%d%d%d%-%d%d%-%d%dT") ~= nil end,
  boolean = function(v) return type(v) == "boolean" end,
  integer = function(v) return type(v) == "number" and v == math.floor(v) end,
  number = function(v) return type(v) == "number" end,
  decimal = function(v) return type(v) == "string" and v:find("^%d+%.%d+$") ~= nil end,
  object = function(v) return type(v) == "table" end,
  array = function(v) return type(v) == "table" end,
}

local function assert_typed(rec, value)
  local n = 0
  for _, k in ipairs(rec.keys) do
    assert.is_not_nil(value[k], k)
    assert.is_true(IS[rec.type_of[k]](value[k]), k .. " is not " .. rec.type_of[k])
    n = n + 1
  end
  assert.are.equal(#rec.keys, n)
end

describe("ravan.contract", function()
  it("lists every field of the example, in its order", function()
    assert.are.same(keys_at(2), contract.PAGE.keys)
    assert.are.same(keys_at(6), contract.CALL.keys)
    assert.are.same(keys_at(10), contract.TRANSCRIPT.keys)
    assert.are.same(keys_at(12), contract.MESSAGE.keys)
    assert.are.same(only(keys_at(8), contract.CREDIT_BREAKDOWN), contract.CREDIT_BREAKDOWN.keys)
    assert.are.equal(3, #contract.CREDIT_BREAKDOWN.keys)
  end)

  it("gives each field the type of the example's value", function()
    local page = cjson.decode(EXAMPLE)
    assert_typed(contract.PAGE, page)
    assert.is_true(#page.calls > 0)
    for _, call in ipairs(page.calls) do
      assert_typed(contract.CALL, call)
      assert_typed(contract.CREDIT_BREAKDOWN, call.credit_breakdown)
      assert.is_true(#call.transcripts > 0)
      for _, tr in ipairs(call.transcripts) do
        assert_typed(contract.TRANSCRIPT, tr)
        assert_typed(contract.MESSAGE, tr.message)
      end
    end
  end)

  it("names the integers, the exact decimal and the JSON objects", function()
    assert.are.same({ "total_count", "page", "page_size" }, contract.PAGE.integers)
    assert.are.same({ "duration_sec", "call_latency_ms" }, contract.CALL.integers)
    assert.are.same({ "cost_total" }, contract.CALL.decimals)
    assert.are.same({ "timestamp_ms" }, contract.TRANSCRIPT.integers)
    for _, k in ipairs { "credit_breakdown", "post_call_analysis_result", "metadata" } do
      assert.are.equal("object", contract.CALL.type_of[k])
      assert.is_table(contract.CALL.fields[k].keys, k)
    end
  end)

  it("has every CSV column as a call field, but the direction the CLI works out", function()
    assert.are.equal(13, #output.CSV_COLUMNS)
    for _, name in ipairs(output.CSV_COLUMNS) do
      assert.is_true(name == "direction" or contract.CALL.type_of[name] ~= nil, name)
    end
  end)
end)

describe("the sync's schema, from the contract", function()
  -- Schema version 1 as ravan first made it.
  local V1 = {
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS calls (id TEXT PRIMARY KEY, agent_id TEXT, agent_name TEXT, "
      .. "organization_id TEXT, caller_number TEXT, callee_number TEXT, caller_name TEXT, "
      .. "caller_email TEXT, channel TEXT, status TEXT, summary TEXT, recording_url TEXT, "
      .. "duration_sec INTEGER, cost_total TEXT, twilio_cost REAL, model_cost REAL, "
      .. "credit_breakdown TEXT, disconnect_reason TEXT, call_latency_ms INTEGER, "
      .. "error_message TEXT, post_call_analysis_result TEXT, metadata TEXT, started_at TEXT, "
      .. "ended_at TEXT, created_at TEXT, extra TEXT)",
    "CREATE TABLE IF NOT EXISTS phone_calls (phone TEXT NOT NULL, call_id TEXT NOT NULL, "
      .. "PRIMARY KEY (phone, call_id))",
    "CREATE INDEX IF NOT EXISTS phone_calls_call ON phone_calls (call_id)",
    "CREATE TABLE IF NOT EXISTS transcripts (id TEXT PRIMARY KEY, call_id TEXT NOT NULL, "
      .. "role TEXT, content TEXT, timestamp_ms INTEGER, created_at TEXT, extra TEXT)",
    "CREATE INDEX IF NOT EXISTS transcripts_call ON transcripts (call_id)",
    "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at)",
    "CREATE TABLE IF NOT EXISTS sync_state (phone TEXT PRIMARY KEY, head_id TEXT, "
      .. "pass_head_id TEXT, pass_page INTEGER, pass_page_size INTEGER, "
      .. "pass_full INTEGER NOT NULL DEFAULT 0, passes INTEGER NOT NULL DEFAULT 0, "
      .. "full_passes INTEGER NOT NULL DEFAULT 0, completed_at TEXT, updated_at TEXT)",
  }

  local paths = {}
  local function new_path()
    paths[#paths + 1] = os.tmpname()
    return paths[#paths]
  end
  after_each(function()
    for _, path in ipairs(paths) do
      for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
    end
    paths = {}
  end)

  -- The columns the contract gives the calls' tables: schema 1's, in its order, with the
  -- columns later schemas added after them (migrations append, so both orders agree).
  local function columns(db, table_name)
    local out = {}
    for _, row in ipairs(assert(db:rows("PRAGMA table_info(" .. table_name .. ")"))) do
      out[#out + 1] = row.name .. " " .. row.type
    end
    return out
  end

  it("keeps schema version 1's columns of the calls' tables, in order, before any added", function()
    local made = assert(store.open("sqlite:" .. new_path()))
    local old = assert(require("ravan.sync.db").open("sqlite:" .. new_path()))
    for _, sql in ipairs(V1) do assert(old:exec(sql)) end
    for _, name in ipairs { "calls", "transcripts", "phone_calls" } do
      local want, got = columns(old, name), columns(made, name)
      assert.is_true(#want >= 2, name)
      assert.are.same(want, { (table.unpack or unpack)(got, 1, #want) })
    end
    made:close()
    old:close()
  end)

  it("stores a page in a database made by schema version 1", function()
    local path = new_path()
    local old = assert(require("ravan.sync.db").open("sqlite:" .. path))
    for _, sql in ipairs(V1) do assert(old:exec(sql)) end
    assert(old:exec("INSERT INTO schema_version (version) VALUES (1)"))
    old:close()
    local db = assert(store.open("sqlite:" .. path))
    local page = cjson.decode(EXAMPLE)
    local counts = assert(store.save_page(db, page.phone, page.calls, assert(store.get_state(db, page.phone)),
      true))
    assert.are.equal(#page.calls, counts.inserted)
    local row = assert(db:rows("SELECT * FROM calls WHERE id = ?", page.calls[1].id))[1]
    assert.are.equal("12.50", row.cost_total)
    assert.are.equal('{"model_credits":4.2,"provider_credits":5.1,"telephony_base_credits":4}',
      row.credit_breakdown)
    local trs = assert(db:rows("SELECT * FROM transcripts WHERE call_id = ? ORDER BY timestamp_ms",
      page.calls[1].id))
    assert.are.equal(#page.calls[1].transcripts, #trs)
    assert.are.equal(page.calls[1].transcripts[1].message.content, trs[1].content)
    assert.is_nil(trs[1].extra)
    db:close()
  end)
end)
