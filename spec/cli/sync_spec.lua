-- `ravan-history sync`: its arguments, phones files (read within bounds), its words for what is
-- wrong, the progress and summary lines, and what it prints when the database cannot be opened.
local cli_sync = require "ravan.cli.sync"
local h = require "spec.support.helpers"
local mock = require "spec.support.mock"
local passwords = require "spec.sync.passwords"
local proc = require "spec.support.proc"

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  f:close()
end

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

  it("takes --lookback, --reconcile, --purge, --worker and --lease", function()
    local o = assert(cli_sync.parse { "+1555", "--db", "x", "--lookback", "600", "--reconcile",
      "--purge", "--worker", "--lease", "20" })
    assert.are.same({ 600, true, true, true, 20 }, { o.lookback, o.reconcile, o.purge, o.worker, o.lease })
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
    { { "+1555", "--db", "x", "--lookback", "-1" }, "--lookback needs seconds >= 0" },
    { { "+1555", "--db", "x", "--purge" }, "--purge needs --reconcile" },
    { { "+1555", "--db", "x", "--lease", "5" }, "--lease needs --worker" },
    { { "+1555", "--db", "x", "--worker", "--lease", "0" }, "--lease needs seconds > 0" },
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

  it("names the file and line of a bad phone", function()
    local phones, msg = cli_sync.read_phones("# team\n+15550000001\n\nnot a phone\n", "team.txt")
    assert.is_nil(phones)
    assert.matches("^team%.txt:4: phone must be E%.164", msg)
    phones, msg = cli_sync.read_phones("name,phone\nx,+15550000001\ny,12\n", "team.csv")
    assert.is_nil(phones)
    assert.matches("^team%.csv:3: phone must be E%.164", msg)
  end)

  it("refuses a line longer than MAX_LINE, and more than MAX_LINES lines", function()
    local long = "+15550000001\n" .. ("0"):rep(cli_sync.MAX_LINE + 1) .. "\n"
    local phones, msg = cli_sync.read_phones(long, "f")
    assert.is_nil(phones)
    assert.are.equal("f:2: a line longer than " .. cli_sync.MAX_LINE .. " bytes", msg)
    -- The same without an end of line, and just within the limit.
    phones, msg = cli_sync.read_phones(long:sub(1, -2), "f")
    assert.is_nil(phones)
    assert.are.equal("f:2: a line longer than " .. cli_sync.MAX_LINE .. " bytes", msg)
    assert.are.same({ "+15550000001" },
      cli_sync.read_phones("+15550000001" .. (" "):rep(cli_sync.MAX_LINE - 12) .. "\n"))
    phones, msg = cli_sync.read_phones(("\n"):rep(cli_sync.MAX_LINES + 1), "f")
    assert.is_nil(phones)
    assert.are.equal("f: more than " .. cli_sync.MAX_LINES .. " lines", msg)
    assert.are.same({}, cli_sync.read_phones(("\n"):rep(cli_sync.MAX_LINES)))
  end)

  it("names the file it cannot open or read", function()
    local phones, msg = cli_sync.read_phones_file("/nonexistent/phones.txt")
    assert.is_nil(phones)
    assert.matches("^%-%-phones%-file: /nonexistent/phones%.txt: ", msg)
    phones, msg = cli_sync.read_phones_file("/")
    assert.is_nil(phones)
    assert.matches("^/: ", msg)
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

describe("ravan-history sync's words", function()
  local tmp
  before_each(function() tmp = os.tmpname() end)
  after_each(function() os.remove(tmp) end)

  local function sync(args)
    local status, stdout, stderr = h.run_cli(args, mock.env())
    assert.are.equal(2, status, stderr)
    assert.are.equal("", stdout)
    assert.are.equal(1, #h.lines(stderr), stderr)
    return stderr
  end

  it("names the flags and arguments typed, not the Lua fields they became", function()
    local stderr = sync { "sync", "+15550000001", "4155550100", "--db", "sqlite:" .. tmp }
    assert.matches("^ravan%-history sync: PHONE 2 must be E%.164", stderr)
    stderr = sync { "sync", "+15550000001", "--db", "mysql://x" }
    assert.matches('^ravan%-history sync: %-%-db must be "sqlite:PATH"', stderr)
    assert.are.same({}, mock.requests())
  end)

  it("names the file and line of a bad phone in --phones-file", function()
    write_file(tmp, "+15550000001\n+15550000002 x\n")
    local stderr = sync { "sync", "--phones-file", tmp, "--db", "sqlite:" .. tmp .. ".db" }
    local head = "ravan-history sync: " .. tmp .. ":2: phone must be E.164"
    assert.are.equal(head, stderr:sub(1, #head))
    assert.are.same({}, mock.requests())
  end)

  it("says a usage error on one line", function()
    local stderr = sync { "sync", "+15550000001", "--db", "x", "--folow" }
    assert.are.equal("ravan-history sync: unknown option '--folow' (did you mean --follow?) "
      .. "(see 'ravan-history sync --help')\n", stderr)
  end)

  it("reads --phones-file /dev/zero in bounded memory, and says where it stopped", function()
    -- A limit on the address space, so that reading without bound fails here instead of filling
    -- a shared machine's memory; the peak RSS is the child's own account of it.
    local script = table.concat({
      "local code = require('ravan.cli').main({ 'sync', '--phones-file', '/dev/zero', '--db', 'x' })",
      "local status = io.open('/proc/self/status'):read('*a')",
      "io.stdout:write(code, ' ', status:match('VmHWM:%s*(%d+)'), '\\n')",
    }, " ")
    local out, status = proc.run("ulimit -v 1000000; " .. proc.lua .. " -e " .. proc.quote(script)
      .. " 2>" .. proc.quote(tmp))
    assert.are.equal(0, status, h.read_file(tmp))
    assert.are.equal("ravan-history sync: /dev/zero:1: a line longer than " .. cli_sync.MAX_LINE
      .. " bytes\n", h.read_file(tmp))
    local code, peak_kb = out:match("^(%d+) (%d+)")
    assert.are.equal("2", code)
    assert.is_true(tonumber(peak_kb) < 64 * 1024, peak_kb .. " kB")
  end)
end)

describe("ravan-history sync database errors", function()
  for _, case in ipairs(passwords.cases) do
    local password, url = case[1], case[2]
    it("never print a part of the password " .. password, function()
      local status, out, err = h.run_cli({ "sync", "+15550000003", "--db", url }, mock.env())
      assert.are.equal(1, status)
      assert.matches("percent%-encoded", err)
      assert.is_nil(passwords.leaked(password, out .. err), out .. err)
    end)
  end
end)
