-- `ravan-history sync`: its pure parts (arguments, phones files, the progress and summary lines),
-- and what it prints when the database cannot be opened.
local cli_sync = require "ravan.cli.sync"
local helpers = require "spec.support.helpers"
local mock = require "spec.support.mock"
local passwords = require "spec.sync.passwords"

describe("ravan-history sync arguments", function()
  it("takes phones, a database and the options", function()
    local o = assert(cli_sync.parse { "+15550000001", "+15550000002", "--db", "sqlite:x.db",
      "--transcripts", "--follow", "--interval=5", "--rate", "50/2", "--page-size", "10" })
    assert.are.same({ "+15550000001", "+15550000002" }, o.phones)
    assert.are.equal("sqlite:x.db", o.db)
    assert.is_true(o.transcripts)
    assert.is_true(o.follow)
    assert.are.equal(5, o.interval)
    assert.are.same({ requests = 50, per = 2 }, o.rate)
    assert.are.equal(10, o.page_size)
  end)

  it("reads --rate N as N a second", function()
    assert.are.same({ requests = 7, per = 1 }, cli_sync.parse { "+1555", "--db", "x", "--rate", "7" }.rate)
  end)

  for _, case in ipairs {
    { { "+15550000001" }, "--db is required" },
    { { "--db", "sqlite:x" }, "give PHONE... or --phones-file" },
    { { "+1555", "--db", "x", "--interval", "5" }, "--interval needs --follow" },
    { { "+1555", "--db", "x", "--follow", "--interval", "0" }, "--interval needs seconds > 0" },
    { { "+1555", "--db", "x", "--rate", "fast" }, "--rate needs N/S" },
    { { "+1555", "--db", "x", "--rate", "0/1" }, "--rate needs N/S" },
    { { "+1555", "--db", "x", "--page-size", "ten" }, "--page-size needs a whole number" },
    { { "+1555", "--db", "x", "--frobnicate" }, "unknown option '--frobnicate'" },
    { { "+1555", "--db", "x", "--folow" }, "unknown option '--folow' (did you mean --follow?)" },
    { { "+1555", "--db" }, "--db needs a value" },
  } do
    it("refuses " .. table.concat(case[1], " "), function()
      local o, msg = cli_sync.parse(case[1])
      assert.is_nil(o)
      assert.matches(case[2], msg, 1, true)
    end)
  end
end)

describe("ravan-history sync --phones-file", function()
  it("reads one phone a line, skipping blank lines and comments", function()
    assert.are.same({ "+15550000001", "+15550000002" },
      cli_sync.read_phones("# team A\n+15550000001\r\n\n  +15550000002  \n"))
  end)

  it("reads the phone column of a CSV, quoted fields included", function()
    local text = 'name,"phone",team\n"Doe, Jane",+15550000001,a\nBob,"+15550000002",b\nNo phone,,c\n'
    assert.are.same({ "+15550000001", "+15550000002" }, cli_sync.read_phones(text))
  end)

  it("refuses a CSV without a phone column", function()
    local phones, msg = cli_sync.read_phones("name,number\nx,+15550000001\n")
    assert.is_nil(phones)
    assert.matches("phone", msg)
  end)

  it("splits CSV fields with doubled quotes", function()
    assert.are.same({ 'a "b", c', "", "d" }, cli_sync.csv_fields('"a ""b"", c",,d'))
  end)
end)

describe("ravan-history sync lines", function()
  local s = { phones = 3, phones_done = 2, inserted = 120, updated = 4, unchanged = 7,
    requests = 37, rate_limited = 1, full_passes = 1, errors = {} }

  it("shows progress", function()
    assert.are.equal("2/3 phones, 120 inserted, 4 updated, 37 requests, 1 429s",
      cli_sync.progress_line(s))
  end)

  it("sums up, naming failures and a stop", function()
    assert.are.equal("3 phones: 120 inserted, 4 updated, 7 unchanged, 37 requests, 1 429s, "
      .. "1 full pass", cli_sync.summary_line(s))
    s.errors, s.stopped = { {} }, true
    assert.matches(", 1 failed, stopped$", cli_sync.summary_line(s))
  end)
end)

describe("ravan-history sync database errors", function()
  for _, case in ipairs(passwords.cases) do
    local password, url = case[1], case[2]
    it("never print a part of the password " .. password, function()
      local status, out, err = helpers.run_cli({ "sync", "+15550000003", "--db", url }, mock.env())
      assert.are.equal(1, status)
      assert.matches("percent%-encoded", err)
      assert.is_nil(passwords.leaked(password, out .. err), out .. err)
    end)
  end
end)
