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
