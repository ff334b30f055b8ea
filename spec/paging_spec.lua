-- The 250-call history read page by page: real page arithmetic, no duplicates, no gaps.
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local TOTAL = 250

-- Reads every page of the 250-call phone with `size`; returns the ids in order and the pages.
local function read_all(client, size)
  local ids, pages = {}, {}
  local page = 1
  repeat
    local res, err = client:phone_history { phone = mock.phones.p250, page = page, page_size = size }
    assert(res, tostring(err))
    pages[#pages + 1] = res
    for _, call in ipairs(res.calls) do ids[#ids + 1] = call.id end
    page = page + 1
  until #res.calls == 0
  return ids, pages
end

local function assert_unique(ids)
  local seen = {}
  for i, id in ipairs(ids) do
    assert(type(id) == "string" and id ~= "", "call " .. i .. " has no id")
    assert(not seen[id], "duplicate id " .. id .. " at " .. i .. " (first at " .. tostring(seen[id]) .. ")")
    seen[id] = i
  end
end

describe("paging through the 250-call history", function()
  before_each(mock.reset)

  for _, size in ipairs({ 100, 20 }) do
    it("with page_size " .. size .. " gives all 250 calls once, on ceil(250/size) pages", function()
      local ids, pages = read_all(mock.client(), size)
      local full = math.ceil(TOTAL / size)
      assert.are.equal(TOTAL, #ids)
      assert_unique(ids)
      assert.are.equal(full + 1, #pages) -- the last one is the empty page past the end
      for n, res in ipairs(pages) do
        assert.are.equal(TOTAL, res.total_count)
        assert.are.equal(n, res.page)
        assert.are.equal(size, res.page_size)
        local expected = math.max(0, math.min(size, TOTAL - (n - 1) * size))
        assert.are.equal(expected, #res.calls, "calls on page " .. n)
      end
      -- The server saw exactly those pages, in order, with that size.
      local recs = mock.requests()
      assert.are.equal(#pages, #recs)
      for n, rec in ipairs(recs) do
        local q = h.raw_query(rec.query)
        assert.are.equal(tostring(n), q.page)
        assert.are.equal(tostring(size), q.page_size)
      end
    end)
  end

  it("gives the same calls in the same order whatever the page size", function()
    local c = mock.client()
    local by100 = read_all(c, 100)
    local by20 = read_all(c, 20)
    assert.are.same(by100, by20)
  end)
end)
