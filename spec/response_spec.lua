-- The result table: every field and type of the contract example, nulls, unknown fields,
-- cost_total, and `calls` always a table.
local cjson = require "cjson"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local CALL_FIELDS = {
  "id", "agent_id", "agent_name", "organization_id", "caller_number", "callee_number",
  "caller_name", "caller_email", "channel", "status", "summary", "recording_url",
  "duration_sec", "cost_total", "twilio_cost", "model_cost", "credit_breakdown",
  "disconnect_reason", "call_latency_ms", "error_message", "post_call_analysis_result",
  "metadata", "started_at", "ended_at", "created_at",
}
local NUMBER_FIELDS = { twilio_cost = true, model_cost = true }
local INTEGER_FIELDS = { duration_sec = true, call_latency_ms = true }
local TABLE_FIELDS = { credit_breakdown = true, post_call_analysis_result = true, metadata = true }

-- No cjson.null (a light userdata) anywhere, keys included.
local function assert_no_null(res)
  h.walk(res, function(v, path)
    assert(v ~= cjson.null and type(v) ~= "userdata", "JSON null reached the result at " .. path)
  end, "res")
end

local function assert_integer(v, what)
  assert(h.is_integer(v), what .. " is not an integer: " .. tostring(v))
end

local function fetch(q, opts)
  local res, err = mock.client(opts):phone_history(q)
  assert(res, tostring(err))
  return res
end

-- Answers the next request with this JSON body (status 200).
local function serve_body(body)
  mock.fault({ kind = "status", status = 200, body = body })
end

local function page_with(calls_json)
  return '{"success":true,"message":"ok","phone":"+14155550100","total_count":1,'
    .. '"page":1,"page_size":20,"calls":' .. calls_json .. "}"
end

describe("the result of phone_history", function()
  before_each(mock.reset)

  it("has the contract example's top-level fields with their types", function()
    local example = h.example()
    local res = fetch({ phone = mock.phones.example })
    assert.are.equal(true, res.success)
    assert.are.equal(example.message, res.message)
    assert.are.equal(example.phone, res.phone)
    for _, k in ipairs({ "total_count", "page", "page_size" }) do
      assert.are.equal(example[k], res[k])
      assert_integer(res[k], k)
    end
    assert.are.equal(3, #res.calls)
  end)

  it("has every field of the contract example call, with the example's values", function()
    local expected = h.example().calls[1]
    local res = fetch({ phone = mock.phones.example, include_transcripts = true })
    local call = res.calls[1]
    assert.are.same(expected, call)
    for _, k in ipairs(CALL_FIELDS) do
      assert.is_not_nil(call[k], k)
    end
    assert_integer(call.duration_sec, "duration_sec")
    assert_integer(call.call_latency_ms, "call_latency_ms")
    assert.are.equal(250, call.duration_sec)
    assert.are.equal(820, call.call_latency_ms)
    assert.are.equal("12.50", call.cost_total)
    assert.are.equal(5.1, call.twilio_cost)
    assert.are.equal(4.2, call.model_cost)
    assert.are.equal(4, call.credit_breakdown.telephony_base_credits)
    assert.are.equal("", call.error_message)
    assert.are.same({ sentiment = "positive" }, call.post_call_analysis_result)
    assert.are.same({ source = "crm" }, call.metadata)
    local t = call.transcripts[1]
    assert.are.equal(1, #call.transcripts)
    assert_integer(t.timestamp_ms, "timestamp_ms")
    assert.are.equal(1765437000123, t.timestamp_ms)
    assert.are.same({ role = "agent", content = "Hello!" }, t.message)
    assert_no_null(res)
  end)

  it("gives every call of a page every field, with the documented types", function()
    local res = fetch({ phone = mock.phones.p250, page_size = 100, include_transcripts = true })
    assert.are.equal(100, #res.calls)
    for i, call in ipairs(res.calls) do
      for _, k in ipairs(CALL_FIELDS) do
        local v, what = call[k], "calls[" .. i .. "]." .. k
        if INTEGER_FIELDS[k] then
          assert_integer(v, what)
        elseif NUMBER_FIELDS[k] then
          assert.are.equal("number", type(v), what)
        elseif TABLE_FIELDS[k] then
          assert.are.equal("table", type(v), what)
        else
          assert.are.equal("string", type(v), what)
        end
      end
      assert.truthy(#call.transcripts >= 1)
      for _, t in ipairs(call.transcripts) do assert_integer(t.timestamp_ms, "timestamp_ms") end
    end
  end)

  it("has transcripts only when asked for", function()
    local without = fetch({ phone = mock.phones.p250, page_size = 100 })
    assert.are.equal(100, #without.calls)
    for _, call in ipairs(without.calls) do assert.is_nil(call.transcripts) end
    local with = fetch({ phone = mock.phones.p250, page_size = 100, include_transcripts = true })
    assert.are.equal(100, #with.calls)
    for _, call in ipairs(with.calls) do
      assert.are.equal("table", type(call.transcripts))
      assert.is_true(#call.transcripts >= 1)
    end
  end)

  it("turns JSON null and missing optional fields into nil, with no cjson.null anywhere", function()
    local res = fetch({ phone = mock.phones.nulls, include_transcripts = true })
    assert.are.equal(5, #res.calls)
    for i = 1, 2 do
      local call = res.calls[i]
      for _, k in ipairs({ "caller_name", "caller_email", "summary", "recording_url",
        "error_message", "metadata", "post_call_analysis_result", "credit_breakdown",
        "ended_at" }) do
        assert.is_nil(call[k], "calls[" .. i .. "]." .. k)
      end
      assert.are.equal("string", type(call.id))
    end
    assert_no_null(res)
  end)

  it("strips nulls nested anywhere, in arrays and in unknown fields too", function()
    serve_body(page_with('[{"id":"a","metadata":{"x":null,"y":[1,null,{"z":null}]},'
      .. '"extra":null,"future":{"deep":[null]}}]'))
    local res = fetch({ phone = mock.phones.example_caller })
    assert_no_null(res)
    local call = res.calls[1]
    assert.is_nil(call.extra)
    assert.is_nil(call.metadata.x)
    assert.are.equal(1, call.metadata.y[1])
    assert.is_nil(call.metadata.y[3].z)
  end)

  it("keeps cost_total as the exact string, and turns a number there into a string", function()
    local res = fetch({ phone = mock.phones.nulls })
    assert.are.equal("7.25", res.calls[3].cost_total)
    serve_body(page_with('[{"id":"a","cost_total":12},{"id":"b","cost_total":"0.10"},'
      .. '{"id":"c","cost_total":0.1}]'))
    res = fetch({ phone = mock.phones.example_caller })
    assert.are.equal("12", res.calls[1].cost_total)
    assert.are.equal("0.10", res.calls[2].cost_total)
    assert.are.equal("0.1", res.calls[3].cost_total)
  end)

  it("keeps unknown fields as they came", function()
    local res = fetch({ phone = mock.phones.nulls })
    local call = res.calls[4]
    assert.are.equal(0.93, call.sentiment_score)
    assert.are.same({ "vip" }, call.tags)
    serve_body('{"success":true,"message":"ok","total_count":0,"page":1,"page_size":20,'
      .. '"calls":[],"next_cursor":"abc","rate":{"left":9}}')
    res = fetch({ phone = mock.phones.example_caller })
    assert.are.equal("abc", res.next_cursor)
    assert.are.same({ left = 9 }, res.rate)
  end)

  it("gives an empty table for an empty history, a page past the end and a missing calls", function()
    local res = fetch({ phone = mock.phones.none })
    assert.are.equal("table", type(res.calls))
    assert.are.equal(0, #res.calls)
    assert.are.equal(0, res.total_count)
    res = fetch({ phone = mock.phones.p250, page = 100 })
    assert.are.same({}, res.calls)
    assert.are.equal(250, res.total_count)
    serve_body('{"success":true,"message":"ok","total_count":0,"page":1,"page_size":20}')
    res = fetch({ phone = mock.phones.example_caller })
    assert.are.same({}, res.calls)
    serve_body('{"success":true,"message":"ok","total_count":0,"page":1,"page_size":20,"calls":null}')
    res = fetch({ phone = mock.phones.example_caller })
    assert.are.same({}, res.calls)
  end)

  it("refuses a body that is not the documented shape with kind decode", function()
    local bodies = {
      page_with('[{"id":"a","duration_sec":2.5}]'),
      page_with('[{"id":"a","transcripts":[{"timestamp_ms":"soon"}]}]'),
      page_with('{"id":"a"}'),
      page_with('["not a call"]'),
      page_with('[{"id":"a","cost_total":true}]'),
      '{"success":true,"total_count":"many","calls":[]}',
      '[1,2,3]',
      '"just a string"',
    }
    for _, body in ipairs(bodies) do
      serve_body(body)
      local res, err = mock.client():phone_history { phone = mock.phones.example_caller }
      assert.is_nil(res, body)
      assert.are.equal("decode", err.kind, body)
      assert.are.equal(200, err.status)
    end
  end)
end)
