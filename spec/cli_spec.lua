-- bin/ravan-history as a user runs it: a subprocess on the Lua running the specs, configured
-- only through RAVAN_BASE_URL and RAVAN_API_KEY.
local cjson = require "cjson"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local ENV = { RAVAN_BASE_URL = mock.url, RAVAN_API_KEY = mock.api_key }

local function cli(args, env)
  return h.run_cli(args, env or ENV)
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
    assert.are.equal(5, #out)
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
    assert.matches("2 calls, page 1 of 2", stdout)
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
    assert.matches("^ravan%-history: ravan: auth %(HTTP 401%)", out[1])
    assert.is_nil(stderr:find(key, 1, true))
    assert.are.equal(1, #mock.requests())
  end)

  it("exits 1 when the server cannot be reached", function()
    local status, stdout, stderr = cli({ mock.phones.example },
      { RAVAN_BASE_URL = h.closed_url(), RAVAN_API_KEY = mock.api_key })
    local out = assert_failed(status, 1, stdout, stderr)
    assert.are.equal(1, #out)
    assert.matches("ravan: network", out[1])
  end)

  it("exits 2 on a usage error, without a request", function()
    local cases = {
      { {}, "PHONE is required" }, { { "--bogus" }, "unknown option" },
      { { mock.phones.example, "--page", "abc" }, "whole number" },
      { { mock.phones.example, "--page" }, "whole number" },
      { { mock.phones.example, "+15550000000" }, "unexpected argument" },
      { { "4155550100" }, "E%.164" }, { { mock.phones.example, "--page-size", "500" }, "page_size" },
    }
    for _, c in ipairs(cases) do
      local status, stdout, stderr = cli(c[1])
      assert_failed(status, 2, stdout, stderr)
      assert.matches(c[2], stderr)
    end
    assert.are.same({}, mock.requests())
  end)
end)
