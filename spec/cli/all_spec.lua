-- ravan-history --all, --limit, --format and the progress line: the CLI as a subprocess (as a
-- user runs it, configured only through RAVAN_BASE_URL and RAVAN_API_KEY), plus its pure
-- formatting functions in-process.
local cjson = require "cjson"
local cli_mod = require "ravan.cli.output"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local proc = require "spec.support.proc"

local P250 = mock.phones.p250

local function env()
  return mock.env()
end

local function cli(args)
  return h.run_cli(args, env())
end

local lines = h.lines

local function pages_requested()
  local pages = {}
  for _, rec in ipairs(mock.requests()) do
    pages[#pages + 1] = tonumber(("&" .. rec.query):match("&page=(%d+)"))
  end
  return pages
end

-- Table rows are the lines that start with a start time.
local function table_rows(text)
  local n = 0
  for _, line in ipairs(lines(text)) do
    if line:find("^%d%d%d%d%-%d%d%-%d%d ") then n = n + 1 end
  end
  return n
end

describe("ravan-history --all", function()
  before_each(mock.reset)

  it("prints every call as a table, 100 calls a page, and nothing on a non-terminal stderr", function()
    local status, stdout, stderr = cli({ P250, "--all" })
    assert.are.equal(0, status, stderr)
    assert.are.equal("", stderr)
    local out = lines(stdout)
    assert.are.equal(P250 .. ": 250 calls", out[1])
    assert.matches("^START%s+DIR%s+OTHER PARTY", out[2])
    assert.are.equal(250, table_rows(stdout))
    assert.are.equal(1, select(2, stdout:gsub("START%s+DIR", "")), "one heading")
    assert.matches("^total of 250 calls%s", out[#out])
    assert.are.same({ 1, 2, 3 }, pages_requested())
    for _, rec in ipairs(mock.requests()) do
      assert.truthy(rec.query:find("page_size=100", 1, true))
    end
  end)

  it("stops at --limit without asking for pages it does not need", function()
    local status, stdout = cli({ P250, "--all", "--limit", "30", "--page-size", "20",
      "--format", "ndjson" })
    assert.are.equal(0, status)
    local out, ids = lines(stdout), {}
    assert.are.equal(30, #out)
    for _, line in ipairs(out) do
      local call = cjson.decode(line)
      assert.is_nil(ids[call.id])
      ids[call.id] = true
    end
    local pages = pages_requested()
    table.sort(pages)
    assert.are.same({ 1, 2 }, pages)
  end)

  it("--format json is one document with every call, and [] for an empty history", function()
    local status, stdout = cli({ P250, "--all", "--format=json", "--transcripts" })
    assert.are.equal(0, status)
    local doc = cjson.decode(stdout)
    assert.are.equal(P250, doc.phone)
    assert.are.equal(250, doc.total_count)
    assert.are.equal(250, #doc.calls)
    assert.is_table(doc.calls[250].transcripts)
    status, stdout = cli({ mock.phones.none, "--all", "--json" })
    assert.are.equal(0, status)
    assert.truthy(stdout:find('"calls":[]', 1, true), stdout)
    assert.are.equal(0, cjson.decode(stdout).total_count)
  end)

  it("--format csv has one header and a row per call", function()
    local status, stdout = cli({ P250, "--all", "--format", "csv", "--limit", "120" })
    assert.are.equal(0, status)
    local out = lines(stdout:gsub("\r\n", "\n"))
    assert.are.equal(121, #out)
    assert.are.equal(table.concat(cli_mod.CSV_COLUMNS, ","), out[1])
    assert.matches("^[%x-]+,2026%-06%-11T09:30:00Z,", out[2])
  end)

  it("an empty history prints its count and no rows", function()
    local status, stdout = cli({ mock.phones.none, "--all" })
    assert.are.equal(0, status)
    assert.are.same({ mock.phones.none .. ": 0 calls", "(no calls)" }, lines(stdout))
  end)

  it("fails with one line and exit 1 on an error mid-way, after printing what came before", function()
    mock.fault { kind = "status", status = 400, phone = P250, page = 2 }
    local status, stdout, stderr = cli({ P250, "--all", "--page-size", "50", "--format", "ndjson" })
    assert.are.equal(1, status)
    assert.are.equal(50, #lines(stdout))
    assert.are.equal(1, #lines(stderr))
    assert.matches("^ravan%-history: bad_request %(HTTP 400%)", stderr)
  end)

  it("refuses bad --limit and --format values before any request", function()
    local cases = {
      { { P250, "--limit", "5" }, 2, "%-%-limit needs %-%-all" },
      { { P250, "--all", "--limit", "0" }, 2, "^ravan%-history: %-%-limit must be an integer" },
      { { P250, "--format", "xml" }, 2, "%-%-format needs one of" },
      { { P250, "--format" }, 2, "%-%-format needs one of" },
      { { P250, "--json", "--format", "csv" }, 2, "conflict" },
    }
    for _, c in ipairs(cases) do
      local status, stdout, stderr = cli(c[1])
      assert.are.equal(c[2], status, stderr)
      assert.are.equal("", stdout)
      assert.matches(c[3], stderr)
    end
    assert.are.same({}, mock.requests())
  end)

  it("draws a progress line on stderr when it is a terminal", function()
    local have_script = select(2, proc.run("command -v script >/dev/null")) == 0
    if not have_script then return pending("no script(1) to give stderr a terminal") end
    local out = os.tmpname()
    local cmd = proc.lua .. " bin/ravan-history " .. P250 .. " --all --page-size 50 --format csv >"
      .. proc.quote(out)
    -- script(1) runs the command on a pseudo-terminal and copies what it writes there (stderr).
    local tty, status = proc.run("script -qec " .. proc.quote(cmd) .. " /dev/null", env())
    local csv = h.read_file(out)
    os.remove(out)
    assert.are.equal(0, status, tty)
    assert.matches("5 pages, 250 of 250 calls, %d+ calls/s, done", tty)
    assert.matches("1 page, 50 of 250 calls", tty)
    assert.truthy(tty:find("\r\27[K", 1, true))
    assert.is_nil(csv:find("pages,", 1, true), "progress leaked into stdout")
    assert.are.equal(251, #lines(csv:gsub("\r\n", "\n")))
  end)
end)

describe("ravan-history --all, interrupted", function()
  before_each(mock.reset)

  local why = proc.skip()
  if why then
    pending(why)
    return
  end

  -- Runs `pipeline` (a shell line in which "CLI" stands for the command) in a session of its
  -- own, so a signal can go to its whole process group as Ctrl-C's does, against a server that
  -- answers each request after 100 ms. `and_then` runs once the output has its first line.
  -- Returns what the shell printed (`exit=N`), the pipeline's stdout and its stderr.
  local function slow_run(pipeline, and_then)
    mock.config { latency_ms = 100 }
    local out, err = os.tmpname(), os.tmpname()
    local cli_cmd = proc.lua .. " bin/ravan-history " .. P250 .. " --all --page-size 5"
    local script = table.concat({
      "setsid sh -c " .. proc.quote("exec " .. pipeline:gsub("CLI", cli_cmd)) .. " >" .. out
        .. " 2>" .. err .. " &",
      "pid=$!",
      "i=0; while [ ! -s " .. out .. " ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
      and_then or ":",
      "wait $pid; echo \"exit=$?\"",
    }, "\n")
    local text = proc.run(script, env())
    local stdout, stderr = h.read_file(out), h.read_file(err)
    os.remove(out)
    os.remove(err)
    return text, stdout, stderr
  end

  it("Ctrl-C ends it at once with exit status 130 and at most one line", function()
    local text, stdout, stderr = slow_run("CLI --format ndjson", "kill -INT -$pid")
    assert.are.equal("exit=130\n", text)
    assert.is_true(#lines(stderr) <= 1, stderr)
    assert.is_true(#lines(stdout) < 250, "it ran to the end")
    assert.is_true(#pages_requested() < 50, #pages_requested() .. " of 50 pages requested")
  end)

  it("stops asking for pages when the reader has gone, SIGPIPE ignored", function()
    local text, stdout, stderr = slow_run("sh -c "
      .. proc.quote("trap '' PIPE; CLI --format ndjson | head -1"))
    assert.are.equal("exit=0\n", text)
    assert.are.equal(1, #lines(stdout))
    assert.matches("^ravan%-history: cannot write the output: [^\n]+\n$", stderr)
    -- head took one line and left; the next write failed and ended the run.
    local requested = #pages_requested()
    assert.is_true(requested < 10, requested .. " of 50 pages requested")
  end)
end)

describe("ravan-history --format on one page", function()
  before_each(mock.reset)

  it("ndjson and csv print the page's calls; --json is --format json", function()
    local status, stdout = cli({ mock.phones.example, "--format", "ndjson" })
    assert.are.equal(0, status)
    local out = lines(stdout)
    assert.are.equal(3, #out)
    assert.are.equal("550e8400-e29b-41d4-a716-446655440000", cjson.decode(out[1]).id)
    status, stdout = cli({ mock.phones.example, "--format", "csv", "--page-size", "2" })
    assert.are.equal(0, status)
    assert.are.equal(3, #lines(stdout))
    local _, a = cli({ mock.phones.example, "--json" })
    local _, b = cli({ mock.phones.example, "--format", "json" })
    assert.are.same(cjson.decode(a), cjson.decode(b))
  end)
end)

describe("the CLI's formatting", function()
  it("quotes CSV fields only when needed, doubling quotes", function()
    local line = cli_mod.csv_line({
      id = "x", summary = 'said "hi", left', caller_number = P250, duration_sec = 5,
      agent_name = "line\nbreak",
    }, P250)
    assert.are.equal('x,,,out,' .. P250 .. ',,,"line\nbreak",,5,,,"said ""hi"", left"\r\n', line)
  end)

  it("words the progress line", function()
    assert.are.equal("3 pages, 300 of 1000 calls, 150 calls/s",
      cli_mod.progress_line({ pages = 3, calls = 300, total_count = 1000 }, 2))
    assert.are.equal("1 page, 0 calls, 0 calls/s",
      cli_mod.progress_line({ pages = 1, calls = 0 }, 0))
  end)
end)
