-- ravan.report.decimal: sums that floats get wrong come out exact, in the places the values had.
local decimal = require "ravan.report.decimal"

local function float_sum(list)
  local s = 0
  for _, v in ipairs(list) do s = s + tonumber(v) end
  return s
end

local function sum_of(list)
  local s = decimal.sum()
  for _, v in ipairs(list) do assert(s:add(v), tostring(v)) end
  return s:text()
end

describe("decimal sums", function()
  it("adds 0.10 and 0.20 to 0.30, where floats give 0.30000000000000004", function()
    assert.are_not.equal(0.3, float_sum { "0.10", "0.20" })
    assert.are.equal("0.30", decimal.add("0.10", "0.20"))
    assert.are.equal("0.3", decimal.add(0.1, 0.2))
  end)

  it("adds a million cents to exactly 10000.00", function()
    local list = {}
    for i = 1, 1000000 do list[i] = "0.01" end
    assert.are_not.equal(10000, float_sum(list))
    assert.are.equal("10000.00", sum_of(list))
  end)

  it("keeps cents beyond 2^53, where a float cannot hold them", function()
    local list = { "90071992547409.93", "0.01", "0.01", "0.01" }
    assert.are.equal("90071992547409.96", sum_of(list))
    assert.are_not.equal(9007199254740996, float_sum(list) * 100)
    assert.are.equal("123456789012345678901234567890.12",
      decimal.add("123456789012345678901234567890", "0.12"))
  end)

  it("takes the most places any value had, exponents and signs", function()
    assert.are.equal("1.250", decimal.add("1", "0.25", "0.000"))
    assert.are.equal("0.00002", decimal.add("1e-5", "1E-5"))
    assert.are.equal("1500", decimal.add("1.5e3"))
    assert.are.equal("-1.75", decimal.add("-5", "3.25"))
    assert.are.equal("0.00", decimal.add("-0.10", "0.10"))
    assert.are.equal("-0.01", decimal.add("0.99", "-1.00"))
    assert.are.equal("12.5", decimal.add(".5", "12."))
  end)

  it("sums negatives across limbs", function()
    local list = {}
    for i = 1, 30 do list[i] = "-1234567890123456789.123" end
    assert.are.equal("-37037036703703703673.690", sum_of(list))
    assert.are.equal("-199999999999998.98", sum_of { "-99999999999999.99", "-99999999999999.99", "1" })
  end)

  it("counts what is not a decimal and leaves it out", function()
    local s = decimal.sum()
    for _, v in ipairs { "1.5", "abc", "", ".", "1.2.3", "1e", "1e999", {}, true, 0 / 0, math.huge, "0x10" } do
      s:add(v)
    end
    assert.are.equal("1.5", s:text())
    assert.are.equal(11, s.invalid)
    assert.is_nil(decimal.add("1", "x"))
  end)
end)
