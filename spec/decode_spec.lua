-- The decoder, in process and table-driven: body (and Content-Type) -> a page or nil and the
-- error's kind and message. No server: these are the bytes a server could send.
local decode = require "ravan.decode"
local ravan = require "ravan"
local is_integer = require("spec.support.helpers").is_integer

describe("decode.page", function()
  it("refuses what is not a page object, with the kind and a message that says why", function()
    local cases = {
      { "", nil, "decode", "^empty response body$" },
      { "[]", nil, "decode", "not a JSON object" },
      { " \r\n\t[]", nil, "decode", "not a JSON object" },
      { "[{}]", nil, "decode", "not a JSON object" },
      { "null", nil, "decode", "not a JSON object" },
      { "42", nil, "decode", "not a JSON object" },
      { '"page"', nil, "decode", "not a JSON object" },
      { "{", nil, "decode", "not valid JSON" },
      { "<html></html>", "text/html; charset=utf-8", "decode", "^response is text/html, not JSON$" },
      { '{"success":false,"message":"phone not found"}', nil, "server", "^phone not found$" },
      { '{"success":false}', nil, "server", "success = false" },
      { '{"total_count":1.5}', nil, "decode", "must be integers" },
      { '{"page":"1"}', nil, "decode", "must be integers" },
      { '{"calls":{"a":1}}', nil, "decode", "^calls is not an array$" },
      { '{"calls":[1]}', nil, "decode", "calls%[1%] is not an object" },
      { '{"calls":[{"duration_sec":1.5}]}', nil, "decode", "duration_sec is not an integer" },
      { '{"calls":[{"call_latency_ms":"9"}]}', nil, "decode", "call_latency_ms is not an integer" },
      { '{"calls":[{"cost_total":NaN}]}', nil, "decode", "cost_total is not a finite number" },
      { '{"calls":[{"cost_total":true}]}', nil, "decode", "neither a string nor a number" },
      { '{"calls":[{"transcripts":{"a":1}}]}', nil, "decode", "transcripts is not an array" },
      { '{"calls":[{"transcripts":[{"timestamp_ms":0.5}]}]}', nil, "decode", "timestamp_ms" },
    }
    for _, c in ipairs(cases) do
      local page, err = decode.page(c[1], c[2])
      assert.is_nil(page, c[1])
      assert.is_true(ravan.is_error(err), c[1])
      assert.are.equal(c[3], err.kind, c[1])
      assert.matches(c[4], err.message)
    end
  end)

  it("accepts a page, fixing the types the contract documents", function()
    local cases = {
      { "{}", function(p) assert.are.same({}, p.calls) end },
      { ' {"calls":[]}', function(p) assert.are.same({}, p.calls) end },
      { '{"calls":null,"total_count":null}', function(p)
        assert.are.same({}, p.calls)
        assert.is_nil(p.total_count)
      end },
      { '{"total_count":3,"page":1,"page_size":20,"calls":[{"duration_sec":60}]}', function(p)
        assert.is_true(is_integer(p.total_count) and is_integer(p.page) and is_integer(p.page_size))
        assert.is_true(is_integer(p.calls[1].duration_sec))
      end },
      { '{"calls":[{"cost_total":12.5},{"cost_total":12},{"cost_total":"12.50"}]}', function(p)
        assert.are.same({ "12.5", "12", "12.50" },
          { p.calls[1].cost_total, p.calls[2].cost_total, p.calls[3].cost_total })
      end },
      { '{"calls":[{"id":NaN,"summary":null}],"extra":{"kept":true}}', function(p)
        assert.are.equal("number", type(p.calls[1].id))
        assert.is_nil(p.calls[1].summary)
        assert.is_true(p.extra.kept)
      end },
    }
    for _, c in ipairs(cases) do
      local page, err = decode.page(c[1], "application/json")
      assert(page, c[1] .. ": " .. tostring(err))
      c[2](page)
    end
  end)
end)

-- The usual page is checked and converted by one C pass (core.record_passes); any other by the
-- checks in Lua, which word what is wrong. Both must come to the same page or the same error.
describe("decode.page's one-pass check", function()
  local core = require "ravan.core"
  local cjson = require "cjson.safe"

  -- ravan.decode as it would be without the C pass.
  local function lua_only_decode()
    local pass = core.record_passes
    core.record_passes = function() return false end
    package.loaded["ravan.decode"] = nil
    local ok, mod = pcall(require, "ravan.decode")
    core.record_passes = pass
    package.loaded["ravan.decode"] = decode
    assert(ok, mod)
    return mod
  end

  -- A value with the subtype of every number in it.
  local function shown(v)
    if type(v) == "number" then return { v ~= v and "nan" or v, math.type and math.type(v) } end
    if type(v) ~= "table" then return v end
    local t = {}
    for k, x in pairs(v) do t[k] = shown(x) end
    return t
  end

  local function outcome(d, body)
    local page, err = d.page(body, "application/json")
    if not page then return { err.kind, err.message } end
    return shown(page)
  end

  it("comes to the same page or error as the checks in Lua", function()
    local lua_only = lua_only_decode()
    local call = '{"id":"c","duration_sec":%s,"cost_total":%s,"call_latency_ms":%s,"transcripts":%s}'
    local values = { "1", "1.0", "1.5", "-3", "1e300", "9.3e18", "-9.2e18", "NaN", '"2"', "null", "true", "{}", "[]" }
    local bodies = {}
    for _, v in ipairs(values) do
      bodies[#bodies + 1] = '{"total_count":' .. v .. ',"page":1,"page_size":1,"calls":[]}'
      bodies[#bodies + 1] = '{"calls":[' .. call:format(v, '"1.50"', "2", "[]") .. "]}"
      bodies[#bodies + 1] = '{"calls":[' .. call:format("1", v, "2", "null") .. "]}"
      bodies[#bodies + 1] = '{"calls":[' .. call:format("1", '"1"', "2", '[{"timestamp_ms":' .. v .. "}]") .. "]}"
      bodies[#bodies + 1] = '{"calls":[' .. call:format("1", '"1"', "2", v) .. "]}"
      bodies[#bodies + 1] = '{"page":2,"calls":' .. v .. "}"
      bodies[#bodies + 1] = '{"calls":[{},' .. v .. "]}"
    end
    for _, body in ipairs(bodies) do
      assert.are.same(outcome(lua_only, body), outcome(decode, body), body)
    end
  end)

  it("strips the nulls whatever the text around them", function()
    local bodies = { '{"a":null}', '{"a":[null]}', '{"null":1,"b":"nul","c":"ull"}', '{"u":"nul"}', '[null]',
      '{"a":"u","b":{"c":null},"calls":[{"summary":null}]}', '{"nu":"ll","x":[1,null]}' }
    for _, body in ipairs(bodies) do
      local t1, t2 = cjson.decode(body), cjson.decode(body)
      if t1 then
        assert.are.same(core.strip_nulls(t1), core.strip_nulls(t2, body), body)
      end
    end
  end)
end)
