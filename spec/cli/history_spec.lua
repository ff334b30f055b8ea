-- bin/ravan-history as a user runs it: a subprocess on the Lua running the specs, configured
-- only through RAVAN_BASE_URL and RAVAN_API_KEY.
local cjson = require "cjson"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local proc = require "spec.support.proc"

local function cli(args, env)
  return h.run_cli(args, env or mock.env())
end

-- The next request of `phone` gets a 200 with `page` (a table, or JSON text) as its body.
local function serve(phone, page)
  mock.fault { kind = "status", status = 200, phone = phone, content_type = "application/json",
    body = type(page) == "string" and page or cjson.encode(page) }
end

local lines = h.lines

-- One line on stderr, no stdout, and the exit status.
local function assert_failed(status, expected_status, stdout, stderr)
  assert.are.equal(expected_status, status)
  assert.are.equal("", stdout)
  assert.matches("^ravan%-history: ", stderr)
  return lines(stderr)
end

describe("ravan-history", function()
  before_each(mock.reset)

  it("prints a table of the example phone's calls", function()
    local status, stdout, stderr = cli({ mock.phones.example })
    assert.are.equal(0, status, stderr)
    assert.are.equal("", stderr)
    local out = lines(stdout)
    assert.are.equal("+919876543210: 3 calls, page 1 of 1", out[1])
    assert.matches("^START%s+DIR%s+OTHER PARTY%s+AGENT%s+STATUS%s+DURATION%s+COST$", out[2])
    assert.are.equal(6, #out)
    local row = out[3]
    for _, cell in ipairs({ "2026%-06%-11 09:30:00Z", " in ", "%+14155550100 %(Jane Doe%)",
      "Support Agent", "completed", "4:10", "12%.50$" }) do
      assert.matches(cell, row)
    end
    local rec = mock.requests()[1]
    assert.are.equal(mock.api_key, rec.headers["x-api-key"])
    assert.are.same({ phone = "%2B919876543210" }, h.raw_query(rec.query))
  end)

  it("passes --page, --page-size and --transcripts on, and prints the transcript", function()
    local status, stdout = cli({ mock.phones.example_caller, "--page", "1", "--page-size=1",
      "--transcripts" })
    assert.are.equal(0, status)
    assert.matches("2 calls, page 1 of 2 %(%-%-page 2, or %-%-all%)", stdout)
    assert.matches("agent: Hello!", stdout, 1, true)
    assert.are.same({ phone = "%2B14155550100", page = "1", page_size = "1",
      include_transcripts = "true" }, h.raw_query(mock.requests()[1].query))
  end)

  it("--json prints valid JSON with calls as an array", function()
    local status, stdout = cli({ mock.phones.example, "--json", "--transcripts" })
    assert.are.equal(0, status)
    local doc = cjson.decode(stdout)
    assert.are.equal(3, doc.total_count)
    assert.are.equal(3, #doc.calls)
    assert.are.equal("12.50", doc.calls[1].cost_total)
    assert.are.equal("Hello!", doc.calls[1].transcripts[1].message.content)
    assert.matches('"calls":%[', stdout)
  end)

  it("--json of an empty history still has calls as an array", function()
    local status, stdout = cli({ mock.phones.none, "--json" })
    assert.are.equal(0, status)
    assert.matches('"calls":%[%]', stdout)
    assert.are.equal(0, cjson.decode(stdout).total_count)
  end)

  it("says so when a page has no calls", function()
    local status, stdout = cli({ mock.phones.none })
    assert.are.equal(0, status)
    assert.matches("0 calls", stdout)
    assert.matches("no calls", stdout)
  end)

  it("--help prints the usage and exits 0 without a request", function()
    for _, flag in ipairs({ "--help", "-h" }) do
      local status, stdout, stderr = cli({ flag })
      assert.are.equal(0, status)
      assert.are.equal("", stderr)
      assert.matches("^Usage: ravan%-history PHONE", stdout)
      assert.matches("RAVAN_API_KEY", stdout)
    end
    assert.are.same({}, mock.requests())
  end)

  it("prints one error line and exits 1 on a 401, without the key", function()
    local key = "rk_wrong_cli_key"
    local status, stdout, stderr = cli({ mock.phones.example },
      { RAVAN_BASE_URL = mock.url, RAVAN_API_KEY = key })
    local out = assert_failed(status, 1, stdout, stderr)
    assert.are.equal(1, #out)
    assert.matches("^ravan%-history: auth %(HTTP 401%)", out[1])
    assert.is_nil(stderr:find(key, 1, true))
    assert.are.equal(1, #mock.requests())
  end)

  it("exits 1 when the server cannot be reached", function()
    local status, stdout, stderr = cli({ mock.phones.example },
      { RAVAN_BASE_URL = h.closed_url(), RAVAN_API_KEY = mock.api_key })
    local out = assert_failed(status, 1, stdout, stderr)
    assert.are.equal(1, #out)
    assert.matches("^ravan%-history: network", out[1])
  end)

  it("exits 2 on a usage error, without a request", function()
    local cases = {
      { {}, "PHONE is required" }, { { "--bogus" }, "unknown option" },
      { { mock.phones.example, "--page", "abc" }, "whole number" },
      { { mock.phones.example, "--page" }, "whole number" },
      { { mock.phones.example, "+15550000000" }, "unexpected argument" },
      { { "4155550100" }, "^ravan%-history: PHONE must be E%.164" },
      { { mock.phones.example, "--page-size", "500" }, "^ravan%-history: %-%-page%-size must be" },
      { { mock.phones.example, "--page", "0" }, "^ravan%-history: %-%-page must be" },
      { { mock.phones.example, "--pgae", "2" }, "unknown option '%-%-pgae' %(did you mean %-%-page%?%)" },
      { { mock.phones.example, "--al" }, "did you mean %-%-all%?" },
      { { mock.phones.example, "--frmat=csv" }, "did you mean %-%-format%?" },
      { { mock.phones.example, "--\27]0;pwned\7" }, "unknown option '%-%-\\27%]0;pwned\\7'" },
      { { mock.phones.example, "x\27[2J" }, "unexpected argument 'x\\27%[2J'" },
    }
    for _, c in ipairs(cases) do
      local status, stdout, stderr = cli(c[1])
      assert_failed(status, 2, stdout, stderr)
      assert.matches(c[2], stderr)
      assert.is_nil(stderr:find("ravan: ", 1, true), "the library's prefix: " .. stderr)
      assert.is_nil(stderr:find("\27", 1, true), "a raw escape byte: " .. stderr)
    end
    assert.are.same({}, mock.requests())
  end)

  it("says a usage error on one line, as docs/cli.md promises", function()
    for _, args in ipairs { { "--bogus" }, {}, { mock.phones.example, "--page" } } do
      local status, stdout, stderr = cli(args)
      local out = assert_failed(status, 2, stdout, stderr)
      assert.are.equal(1, #out, stderr)
      assert.matches("%(see 'ravan%-history %-%-help'%)$", out[1])
    end
  end)

  it("says a negative --page, --page-size or --limit must be 1 or more", function()
    for _, args in ipairs {
      { mock.phones.example, "--page", "-1" }, { mock.phones.example, "--page-size=-5" },
      { mock.phones.example, "--all", "--limit", "-1" },
    } do
      local status, stdout, stderr = cli(args)
      assert_failed(status, 2, stdout, stderr)
      assert.matches("^ravan%-history: %-%-[%a-]+ must be an integer from 1 to", stderr)
    end
    assert.are.same({}, mock.requests())
  end)

  it("cuts an echoed value where a character starts, and shows it was cut", function()
    -- 37 x's put the cut of a 40-byte echo inside the "é".
    local status, stdout, stderr = cli({ mock.phones.example, "--" .. ("x"):rep(37) .. "é and more" })
    assert_failed(status, 2, stdout, stderr)
    assert.matches("unknown option '%-%-" .. ("x"):rep(37) .. "\226\128\166'", stderr)
    -- And the library's 32-byte echo of a bad phone, cut inside the 15th "é".
    status, stdout, stderr = cli({ "+12" .. ("é"):rep(20) })
    assert_failed(status, 2, stdout, stderr)
    assert.matches("got '%+12" .. ("é"):rep(14) .. "\226\128\166'\n", stderr)
    assert.are.same({}, mock.requests())
  end)

  it("--version names the version without a request", function()
    local status, stdout, stderr = cli({ "--version" })
    assert.are.equal(0, status, stderr)
    assert.matches("^ravan%-history " .. require("ravan").VERSION:gsub("%p", "%%%0") .. " %(libcurl ",
      stdout)
    assert.are.same({}, mock.requests())
  end)

  it("closes the table with the page's totals: calls, duration, exact cost", function()
    local status, stdout = cli({ mock.phones.example })
    assert.are.equal(0, status)
    local want = assert(mock.client():phone_history { phone = mock.phones.example })
    local seconds, cents = 0, 0
    for _, call in ipairs(want.calls) do
      seconds = seconds + call.duration_sec
      local units, hundredths = call.cost_total:match("^(%d+)%.(%d%d)$")
      cents = cents + units * 100 + hundredths
    end
    local out = lines(stdout)
    local last = out[#out]
    assert.matches("^total of 3 calls%s", last)
    local duration = ("%d:%02d"):format(math.floor(seconds / 60), seconds % 60)
    local cost = ("%d%%.%02d"):format(math.floor(cents / 100), cents % 100)
    assert.matches("%s" .. duration .. "%s+" .. cost .. "$", last)
    -- Right-aligned under DURATION and COST.
    assert.are.equal(#out[2], #last)
  end)

  it("sums costs as decimals, not floats", function()
    local calls = {}
    for i = 1, 3 do
      calls[i] = { id = "c" .. i, cost_total = i == 3 and "0.2" or "0.05", duration_sec = 3600 }
    end
    serve(mock.phones.none, { success = true, phone = mock.phones.none, total_count = 3, page = 1,
      page_size = 20, calls = calls })
    local status, stdout = cli({ mock.phones.none })
    assert.are.equal(0, status)
    local out = lines(stdout)
    assert.matches("^total of 3 calls%s+3:00:00%s+0%.30$", out[#out])
  end)

  it("says when a page is past the end", function()
    local status, stdout = cli({ mock.phones.p250, "--page", "14" })
    assert.are.equal(0, status)
    assert.are.same({ mock.phones.p250 .. ": 250 calls; page 14 is past the end: 13 pages of 20" },
      lines(stdout))
    status, stdout = cli({ mock.phones.p250, "--page", "13" })
    assert.are.equal(0, status)
    assert.matches("^[^\n]*page 13 of 13\n", stdout)
  end)

  it("fails with one line and exit 1 when the output cannot be written", function()
    local out, status = proc.run(proc.lua .. " bin/ravan-history " .. mock.phones.example
      .. " >/dev/full", mock.env())
    assert.are.equal(1, status)
    assert.are.same({ "ravan-history: cannot write the output: No space left on device" },
      lines(out))
  end)

  it("says so and exits 1 when no command's --help can be written", function()
    for _, command in ipairs { "", " sync", " report", " recordings" } do
      local out, status = proc.run(proc.lua .. " bin/ravan-history" .. command .. " --help >/dev/full",
        mock.env())
      assert.are.equal(1, status, command)
      assert.are.same({ "ravan-history" .. command .. ": cannot write the output: No space left on device" },
        lines(out))
    end
    assert.are.same({}, mock.requests())
  end)
end)

describe("ravan-history --json and --format ndjson", function()
  before_each(mock.reset)

  -- What a server may send that a JSON encoder trips over: numbers past a double (cjson reads
  -- them as inf), arrays of nulls (a sparse table once the nulls are gone), empty arrays
  -- (an empty table, like an empty object), keys the schema does not know.
  local ODD = [=[{"success":true,"message":"ok","phone":"+15550000000","total_count":1,
    "page":1,"page_size":20,"calls":[{"zeta":1,"id":"odd","twilio_cost":1e400,
    "model_cost":-1e400,"metadata":{"tags":[],"empty":{},"nulls":[null,null],"gaps":[null,2],
    "far":[null,null,null,null,null,null,null,null,null,null,null,null,3]},
    "credit_breakdown":{},"transcripts":[],"alpha":[[],[1,[]]],"duration_sec":1765437000123}]}]=]

  it("prints what the server sent without dying, in the schema's key order", function()
    for _, args in ipairs({ { "--json" }, { "--format", "ndjson" } }) do
      serve(mock.phones.none, ODD)
      local a = { mock.phones.none }
      for _, x in ipairs(args) do a[#a + 1] = x end
      local status, stdout, stderr = cli(a)
      assert.are.equal(0, status, stderr)
      local call = stdout:match('^{.-"calls":%[(.*)%]}\n$') or stdout:match("^(.*)\n$")
      assert.are.equal('{"id":"odd","duration_sec":1765437000123,"twilio_cost":null,'
        .. '"model_cost":null,"credit_breakdown":{},"metadata":{"empty":[],'
        .. '"far":[null,null,null,null,null,null,null,null,null,null,null,null,3],"gaps":[null,2],'
        .. '"nulls":[],"tags":[]},"transcripts":[],"alpha":[[],[1,[]]],"zeta":1}', call)
    end
  end)

  it("orders a page's keys as the contract's schema does", function()
    local status, stdout = cli({ mock.phones.example, "--json", "--transcripts", "--page-size=1" })
    assert.are.equal(0, status)
    local keys, seen = {}, {}
    for key in stdout:gmatch('"([%w_]+)":') do
      if not seen[key] then keys[#keys + 1], seen[key] = key, true end
    end
    local want = { "success", "message", "phone", "total_count", "page", "page_size", "calls",
      "id", "agent_id", "agent_name", "organization_id", "caller_number", "callee_number",
      "caller_name", "caller_email", "channel", "status", "summary", "recording_url",
      "duration_sec", "cost_total", "twilio_cost", "model_cost", "credit_breakdown",
      "model_credits", "provider_credits", "telephony_base_credits", "disconnect_reason",
      "call_latency_ms", "error_message", "post_call_analysis_result", "sentiment", "metadata",
      "source", "started_at", "ended_at", "created_at", "transcripts", "call_session_id",
      "role", "content", "timestamp_ms" }
    assert.are.same(want, keys)
    assert.truthy(stdout:find('"recording_url":"https://api.example.com/', 1, true), stdout)
  end)

  it("indents JSON on a terminal, and the same document it is", function()
    local have_script = select(2, proc.run("command -v script >/dev/null")) == 0
    if not have_script then return pending("no script(1) to give stdout a terminal") end
    local cmd = proc.lua .. " bin/ravan-history " .. mock.phones.example .. " --json --page-size 1"
    local tty, status = proc.run("script -qec " .. proc.quote(cmd) .. " /dev/null",
      mock.env())
    assert.are.equal(0, status, tty)
    tty = tty:gsub("\r\n", "\n")
    assert.matches('^{\n  "success": true,\n  "message": ', tty)
    assert.matches('\n  "calls": %[\n    {\n      "id": "550e8400', tty)
    local _, plain = cli({ mock.phones.example, "--json", "--page-size", "1" })
    assert.are.same(cjson.decode(plain), cjson.decode(tty))
  end)
end)
