-- What goes over the wire, as the local server received it: the raw query, the path, the
-- headers (User-Agent, Accept, Accept-Encoding, the credential in either mode).
local core = require "ravan.core"
local http = require "socket.http"
local ltn12 = require "ltn12"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local API_PATH = "/api/v1/calling/phone-history"

-- The only record there should be, after one call.
local function only_record()
  local recs = mock.requests()
  assert.are.equal(1, #recs)
  return recs[1]
end

describe("the request on the wire", function()
  before_each(mock.reset)

  it("sends the phone as %2B, page, page_size and include_transcripts=true, raw", function()
    local c = mock.client()
    local res = assert(c:phone_history {
      phone = mock.phones.example_caller, page = 1, page_size = 5, include_transcripts = true,
    })
    assert.are.equal(2, #res.calls)
    local rec = only_record()
    assert.are.equal("GET", rec.method)
    assert.are.equal(API_PATH, rec.uri)
    assert.is_nil(rec.query:find("+", 1, true), "a bare '+' reads as a space: " .. rec.query)
    local q = h.raw_query(rec.query)
    assert.are.same({
      phone = "%2B14155550100", page = "1", page_size = "5", include_transcripts = "true",
    }, q)
  end)

  it("sends only the phone when nothing else is asked, and then gets no transcripts", function()
    local res = assert(mock.client():phone_history { phone = mock.phones.example })
    assert.are.same({ phone = "%2B919876543210" }, h.raw_query(only_record().query))
    assert.is_nil(res.calls[1].transcripts)
  end)

  it("escapes every byte of the phone but RFC 3986's unreserved ones, as %XX in upper case", function()
    for b = 1, 255 do
      local c = string.char(b)
      local want = c:find("^[%w%-._~]$") and c or ("%%%02X"):format(b)
      assert.are.equal("phone=%2B1" .. want .. "2", core.query_string { phone = "+1" .. c .. "2" }, "byte " .. b)
    end
    assert.are.equal("phone=%2B12&page=3&page_size=100&include_transcripts=false",
      core.query_string { phone = "+12", page = 3, page_size = 100, include_transcripts = false })
  end)

  it("never asks for transcripts when include_transcripts is false", function()
    local res = assert(mock.client():phone_history {
      phone = mock.phones.example, include_transcripts = false,
    })
    assert.are_not.equal("true", h.raw_query(only_record().query).include_transcripts)
    assert.is_nil(res.calls[1].transcripts)
  end)

  it("puts the endpoint under a base_url that has a path, with or without a trailing slash", function()
    for _, suffix in ipairs({ "/v1-moved", "/v1-moved/" }) do
      mock.reset()
      assert(mock.client({ base_url = mock.url .. suffix }):phone_history {
        phone = mock.phones.example,
      })
      assert.are.equal("/v1-moved" .. API_PATH, only_record().uri)
    end
  end)

  it("sends User-Agent ravan-lua/<version> libcurl/<version> <Lua>/<version>", function()
    assert(mock.client():phone_history { phone = mock.phones.example })
    local jit = rawget(_G, "jit")
    local lua = jit and jit.version:gsub("^LuaJIT ", "LuaJIT/") or _VERSION:gsub("^Lua ", "Lua/")
    local expected = "ravan-lua/" .. core.VERSION .. " libcurl/" .. core.CURL_VERSION .. " " .. lua
    assert.are.equal(expected, only_record().headers["user-agent"])
    assert.matches("^%d+%.%d+%.%d+", core.VERSION)
    assert.matches("^%d+%.%d+", core.CURL_VERSION)
  end)

  it("puts a user_agent option in front of its own product tokens", function()
    assert(mock.client({ user_agent = "acme-crm/2.1" }):phone_history {
      phone = mock.phones.example,
    })
    assert.matches("^acme%-crm/2%.1 ravan%-lua/[%d.]+ libcurl/", only_record().headers["user-agent"])
  end)

  it("sends Accept: application/json and accepts gzip", function()
    assert(mock.client():phone_history { phone = mock.phones.example })
    local headers = only_record().headers
    assert.are.equal("application/json", headers.accept)
    assert.matches("gzip", headers["accept-encoding"])
  end)

  it("decodes a gzipped body", function()
    local res = assert(mock.client():phone_history {
      phone = mock.phones.p250, page_size = 100, include_transcripts = true,
    })
    assert.are.equal(100, #res.calls)
    local rec = only_record()
    -- Replay the request with the headers the client sent: the server gzips that answer.
    local response_headers
    local ok, status
    ok, status, response_headers = http.request {
      url = mock.url .. rec.uri .. "?" .. rec.query,
      headers = {
        ["x-api-key"] = mock.api_key,
        ["accept-encoding"] = rec.headers["accept-encoding"],
      },
      sink = ltn12.sink.null(),
    }
    assert.truthy(ok)
    assert.are.equal(200, status)
    assert.are.equal("gzip", response_headers["content-encoding"])
  end)

  it("sends an api_key as X-Api-Key and nothing else", function()
    assert(mock.client():phone_history { phone = mock.phones.example })
    local headers = only_record().headers
    assert.are.equal(mock.api_key, headers["x-api-key"])
    assert.is_nil(headers.authorization)
  end)

  it("sends the lines of core.request_head (the cosocket client's head), plus Host and Accept-Encoding", function()
    for _, opts in ipairs({ { api_key = mock.api_key }, { token = mock.token } }) do
      mock.reset()
      local c = assert(require("ravan").new {
        base_url = mock.url, api_key = opts.api_key, token = opts.token, user_agent = "acme/1",
      })
      assert(c:phone_history { phone = mock.phones.example })
      local sent = only_record().headers
      local head = assert(core.request_head {
        user_agent = require("ravan.client").user_agent("acme/1"),
        api_key = opts.api_key, token = opts.token,
      })
      local expected = { host = sent.host, ["accept-encoding"] = sent["accept-encoding"] }
      local n = 0
      for name, value in head:gmatch("([^:\r\n]+): ([^\r\n]*)\r\n") do
        expected[name:lower()] = value
        n = n + 1
      end
      assert.are.equal(3, n, head)
      assert.are.same(expected, sent)
    end
  end)

  it("refuses a header value with CR or LF in core.request_head, naming the header, not the value", function()
    for name, header in pairs({ user_agent = "User-Agent", api_key = "X-Api-Key", token = "Authorization" }) do
      for _, bad in ipairs({ "rk_secret\r\nX-Evil: 1", "rk_secret\nX", "rk_secret\r" }) do
        local head, msg = core.request_head { [name] = bad }
        assert.is_nil(head)
        assert.are.equal("the " .. header .. " header value contains CR or LF", msg)
      end
    end
  end)

  it("sends a token as Authorization: Bearer and nothing else", function()
    local c = assert(require("ravan").new({ base_url = mock.url, token = mock.token }))
    local res = assert(c:phone_history { phone = mock.phones.example })
    assert.are.equal(3, res.total_count)
    local headers = only_record().headers
    assert.are.equal("Bearer " .. mock.token, headers.authorization)
    assert.is_nil(headers["x-api-key"])
  end)
end)
