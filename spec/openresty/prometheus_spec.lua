-- A real Prometheus scrapes the OpenResty example's /metrics after a known load
-- (spec/openresty/scrape.lua), and the series it stored are read back through its HTTP API.
local cjson = require "cjson"
local mock = require "spec.support.mock"

local function free_port()
  local s = assert(require("socket").bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

describe("ravan.openresty metrics, scraped by Prometheus", function()
  local out
  setup(function()
    local cmd = ("RAVAN_BASE_URL=%s RAVAN_API_KEY=%s RAVAN_EXAMPLE_PORT=%d examples/openresty/run"
      .. " lua5.4 spec/openresty/scrape.lua"):format(mock.url, mock.api_key, free_port())
    local p = assert(io.popen(cmd))
    local text = p:read("*a")
    p:close()
    local last
    for line in text:gmatch("[^\n]+") do last = line end
    out = cjson.decode(last)
  end)

  it("serves every page of the load", function()
    assert.same({ 200, 200, 200, 200, 200 }, out.statuses)
  end)

  it("reads back the counters of the load: 7 calls, 9 attempts, 2 retries for 503s", function()
    assert.equal(7, out.ravan_requests_total)
    assert.equal(9, out.ravan_attempts_total)
    assert.equal(2, out['ravan_retries_total{reason="server"}'])
    assert.equal(0, out['ravan_errors_total{kind="server"}'])
    assert.equal(0, out.ravan_rate_limited_total)
    assert.equal(7, out.ravan_request_duration_seconds_count)
    assert.equal(7, out['ravan_request_duration_seconds_bucket{le="+Inf"}'])
    assert.is_true(out.ravan_response_bytes_total > 0)
  end)

  it("names series ravan_* and labels them with error kinds only", function()
    local kinds = {}
    for _, k in ipairs(require("ravan.core").KINDS) do kinds[k] = true end
    assert.is_true(#out.series > 0)
    for _, s in ipairs(out.series) do
      assert.matches("^ravan_[a-z_]+$", s.__name__)
      for label, value in pairs(s) do
        if label == "reason" or label == "kind" then
          assert.is_true(kinds[value], value)
        else
          assert.is_true(label == "__name__" or label == "le" or label == "job"
            or label == "instance", label)
        end
      end
    end
  end)

  it("shows no credential and no phone number", function()
    assert.is_nil(out.metrics_text:find(mock.api_key, 1, true))
    assert.is_nil(out.metrics_text:find("%+?1?415555"))
    assert.is_nil(out.metrics_text:find("5550000250", 1, true))
  end)
end)
