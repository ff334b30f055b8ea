-- Every invalid argument is refused with kind invalid_argument before any traffic: the server's
-- records prove nothing was sent.
local ravan = require "ravan"
local mock = require "spec.support.mock"

local PHONE = mock.phones.example

local function assert_invalid(res, err, pattern, what)
  assert.is_nil(res, what)
  assert.is_true(ravan.is_error(err), what)
  assert.are.equal("invalid_argument", err.kind, what)
  assert.are.equal("string", type(err.message))
  if pattern then
    assert(err.message:find(pattern), what .. ": '" .. err.message .. "' lacks '" .. pattern .. "'")
  end
end

local function assert_nothing_sent()
  assert.are.same({}, mock.requests())
end

-- `case` is { query, pattern the message must match, description }.
local function refuses(case)
  local res, err = mock.client():phone_history(case[1])
  assert_invalid(res, err, case[2], case[3])
end

local function with_phone(extra)
  local q = { phone = PHONE }
  for k, v in pairs(extra) do q[k] = v end
  return q
end

local nan = 0 / 0

describe("query validation", function()
  before_each(mock.reset)
  after_each(assert_nothing_sent)

  it("refuses a phone that is not E.164", function()
    local bad = {
      { nil, "missing" }, { "", "empty" }, { "14155550100", "no +" }, { "+", "no digits" },
      { "+1", "one digit" }, { "+0123456789", "leading 0" },
      { "+1234567890123456", "16 digits" }, { "+1 415 555 0100", "spaces" },
      { "+1415555010a", "a letter" }, { "+1-415-555-0100", "dashes" },
      { "++14155550100", "two +" }, { "+14155550100\n", "newline" },
      { " +14155550100", "leading space" }, { 14155550100, "a number" }, { true, "a boolean" },
      { { "+14155550100" }, "a table" },
    }
    for _, b in ipairs(bad) do
      refuses({ { phone = b[1] }, "phone", "phone " .. b[2] })
    end
  end)

  it("refuses a page that is not an integer >= 1", function()
    for _, v in ipairs({ 0, -1, 1.5, "2", nan, math.huge, -math.huge, 2 ^ 31, true }) do
      refuses({ with_phone { page = v }, "page", "page " .. tostring(v) })
    end
  end)

  it("refuses a page_size that is not an integer from 1 to 100", function()
    for _, v in ipairs({ 0, -5, 101, 2.5, "20", nan, math.huge, false }) do
      refuses({ with_phone { page_size = v }, "page_size", "page_size " .. tostring(v) })
    end
  end)

  it("refuses an include_transcripts that is not a boolean", function()
    for _, v in ipairs({ "true", 1, 0, "yes", {} }) do
      refuses({ with_phone { include_transcripts = v }, "include_transcripts", tostring(v) })
    end
  end)

  it("refuses an unknown key and names the nearest valid one", function()
    local cases = {
      { "pgae", "page" }, { "page_szie", "page_size" }, { "phnoe", "phone" },
      { "include_transcript", "include_transcripts" }, { "includeTranscripts", "include_transcripts" },
      { "pagesize", "page_size" },
    }
    for _, c in ipairs(cases) do
      local q = with_phone { [c[1]] = 1 }
      refuses({ q, "did you mean '" .. c[2] .. "'", c[1] })
      refuses({ q, "'" .. c[1] .. "'", c[1] })
    end
    -- Nothing close: the message lists what is valid instead.
    refuses({ with_phone { zzzzzzzzzzzz = 1 }, "valid: .*page_size", "far-off key" })
    refuses({ { PHONE }, "positional", "positional value" })
  end)

  it("refuses a query that is not a table", function()
    for _, q in ipairs({ PHONE, 42, true }) do
      refuses({ q, "table", type(q) })
    end
    refuses({ nil, "table", "nil" })
  end)

  it("refuses a per-call deadline that is not a positive number", function()
    for _, v in ipairs({ 0, -1, nan, math.huge, "5" }) do
      refuses({ with_phone { deadline = v }, "deadline", "deadline " .. tostring(v) })
    end
  end)
end)

describe("query validation boundaries", function()
  before_each(mock.reset)

  it("accepts the valid extremes, and they reach the server", function()
    local c = mock.client()
    local ok = {
      { phone = "+12" }, { phone = "+123456789012345" },
      { phone = PHONE, page = 1, page_size = 1 }, { phone = PHONE, page = 2147483647, page_size = 100 },
      { phone = PHONE, page = 2.0, include_transcripts = false },
    }
    for _, q in ipairs(ok) do
      local res, err = c:phone_history(q)
      assert(res, tostring(err))
    end
    assert.are.equal(#ok, #mock.requests())
    -- 2.0 went out as an integer.
    assert.matches("&page=2&", mock.requests()[#ok].query .. "&")
  end)
end)

-- A valid query of the usual keys is checked in one pass in C; every other query, and the
-- same query under any other schema, by the checks in Lua. Both must agree on every value.
describe("the one-pass check of a query", function()
  local validate = require "ravan.validate"
  local lua_only = {}
  for i, entry in ipairs(validate.QUERY) do lua_only[i] = entry end

  local function typed(v)
    return math.type and math.type(v) or type(v)
  end

  local function outcome(q, schema)
    local res, err = validate.query(q, schema)
    if not res then return { err.kind, err.message } end
    local shown = {}
    for k, v in pairs(res) do shown[k] = { v, typed(v) } end
    return shown
  end

  it("accepts, normalises and refuses what the checks in Lua do", function()
    local values = {
      phone = { PHONE, "+12", "+1", "+123456789012345", "+1234567890123456", "+0123", "14155550100",
        "+1415555010a", "+1415\0" .. "5550100", 14155550100, true },
      page = { 1, 2.0, 2147483647, 2147483648, 0, -1, 1.5, "2", nan, math.huge, true },
      page_size = { 1, 100, 100.0, 101, 0, 50.5, "5", -math.huge },
      include_transcripts = { true, false, 1, "true" },
      deadline = { 0.5, 1, 86400, 86400.5, 0, -1, nan, math.huge, "5" },
      pgae = { 1 },
      [1] = { "+14155550100" },
    }
    local cases = 0
    for key, list in pairs(values) do
      for _, v in ipairs(list) do
        for _, q in ipairs({ { [key] = v }, with_phone { [key] = v }, { phone = PHONE, page = 3, [key] = v } }) do
          assert.are.same(outcome(q, lua_only), outcome(q), "query " .. tostring(key) .. " = " .. tostring(v))
          cases = cases + 1
        end
      end
    end
    assert.is_true(cases > 100)
  end)
end)

describe("client option validation", function()
  before_each(mock.reset)
  after_each(assert_nothing_sent)

  local function new_refuses(extra, pattern, what)
    local c, err = ravan.new(mock.options(extra))
    assert_invalid(c, err, pattern, what)
  end

  it("refuses non-positive, non-finite and non-number times", function()
    for _, name in ipairs({ "timeout", "connect_timeout", "deadline" }) do
      for _, v in ipairs({ 0, -1, nan, math.huge, "10" }) do
        new_refuses({ [name] = v }, name, name .. " " .. tostring(v))
      end
    end
    for _, name in ipairs({ "retry_base", "retry_cap", "max_retry_after" }) do
      for _, v in ipairs({ -0.5, nan, math.huge, "1" }) do
        new_refuses({ [name] = v }, name, name .. " " .. tostring(v))
      end
    end
  end)

  it("refuses bad counts and sizes", function()
    local cases = {
      max_retries = { -1, 1.5, "2", nan }, max_response_bytes = { 0, -1, 1.5, "1" },
      low_speed_limit = { -1, 0.5 }, low_speed_time = { 0, -1, 1.5 },
    }
    for name, values in pairs(cases) do
      for _, v in ipairs(values) do
        new_refuses({ [name] = v }, name, name .. " " .. tostring(v))
      end
    end
  end)

  it("refuses options of the wrong type", function()
    new_refuses({ insecure = "yes" }, "insecure", "insecure")
    new_refuses({ allow_http = 1 }, "allow_http", "allow_http")
    new_refuses({ log = "print" }, "log", "log")
    new_refuses({ user_agent = "" }, "user_agent", "empty user_agent")
    new_refuses({ user_agent = "x\r\nX-Evil: 1" }, "user_agent", "user_agent with CRLF")
    new_refuses({ api_key = "" }, "api_key", "empty api_key")
    new_refuses({ api_key = 12345 }, "api_key", "numeric api_key")
    new_refuses({ ca_file = "/nonexistent/ca.pem" }, "ca_file", "missing ca_file")
    new_refuses({ ca_path = "" }, "ca_path", "empty ca_path")
    new_refuses({ token = mock.token }, "not both", "api_key and token")
    local c, err = ravan.new("https://api.ravan.ai")
    assert_invalid(c, err, "table", "options not a table")
  end)

  it("refuses an unknown option and names the nearest valid one", function()
    new_refuses({ timout = 5 }, "did you mean 'timeout'", "timout")
    new_refuses({ apikey = "x" }, "did you mean 'api_key'", "apikey")
    new_refuses({ max_retry = 1 }, "did you mean 'max_retries'", "max_retry")
    new_refuses({ baseurl = mock.url }, "did you mean 'base_url'", "baseurl")
  end)

  it("refuses base URLs that are not absolute http(s) URLs without userinfo or query", function()
    local bad = {
      "ftp://api.ravan.ai", "api.ravan.ai", "https://", "https://user:pw@api.ravan.ai",
      "https://api.ravan.ai?x=1", "https://api.ravan.ai/#frag", "https://api.ravan.ai:99999",
      "https://api ravan.ai", "", "https://[1:2:3]", "https://[.]", "https://[::1", "https://h:0",
      "https://h:-1", "http://[::1]:65536", "https://h/?",
    }
    for _, url in ipairs(bad) do
      new_refuses({ base_url = url }, "base_url", url)
    end
  end)

  it("refuses the same URLs from RAVAN_BASE_URL, as a value and never a raise", function()
    for _, url in ipairs({ "https://[1:2:3]", "https://[.]", "ftp://x", "https://u:p@h" }) do
      local env = { RAVAN_BASE_URL = url, RAVAN_API_KEY = mock.api_key }
      local ok, c, err = pcall(ravan.new, nil, function(name) return env[name] end)
      assert.is_true(ok, tostring(c))
      assert_invalid(c, err, "^RAVAN_BASE_URL", url)
      assert.is_nil(err.message:find(url, 1, true), "the URL is echoed")
    end
  end)

  it("normalises the base URL once: lower-case scheme and host, no trailing slashes", function()
    local url = mock.url:gsub("127%.0%.0%.1", "LocalHost"):gsub("^http", "HTTP")
    local c = assert(ravan.new(mock.options({ base_url = url .. "//" })))
    assert.are.equal("ravan.client (" .. mock.url:gsub("127%.0%.0%.1", "localhost")
      .. ", X-Api-Key)", tostring(c))
    assert(c:phone_history { phone = PHONE })
    assert.are.equal("/api/v1/calling/phone-history", mock.requests()[1].uri)
    mock.reset()
  end)
end)
