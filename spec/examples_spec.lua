-- The scripts in examples/, run as a user would (a separate Lua process, the same Lua as busted,
-- credentials and server from the environment) against the local server, their output checked
-- against what the API returns. examples/openresty and examples/embed have specs of their own.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local function example(script, ...)
  local args = { proc.lua, "examples/" .. script }
  for _, a in ipairs { ... } do args[#args + 1] = proc.quote(a) end
  return proc.run(table.concat(args, " "), mock.env())
end

local function all_calls(phone)
  local calls = {}
  for call in mock.client():calls { phone = phone } do calls[#calls + 1] = call end
  return calls
end

local function lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- RFC 4180: fields split on commas outside quotes, "" inside quotes is one quote.
local function parse_csv(text)
  local rows, row, field, i, quoted = {}, {}, {}, 1, false
  while i <= #text do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' and text:sub(i + 1, i + 1) == '"' then
        field[#field + 1] = '"'
        i = i + 1
      elseif c == '"' then
        quoted = false
      else
        field[#field + 1] = c
      end
    elseif c == '"' then
      quoted = true
    elseif c == "," then
      row[#row + 1] = table.concat(field)
      field = {}
    elseif c == "\r" and text:sub(i + 1, i + 1) == "\n" then
      row[#row + 1] = table.concat(field)
      rows[#rows + 1] = row
      row, field = {}, {}
      i = i + 1
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  return rows
end

describe("examples/", function()
  local why = proc.skip()
  if why then
    pending(why)
    return
  end

  before_each(mock.reset)

  it("one_page.lua prints one page", function()
    local out, status = example("one_page.lua", mock.phones.example)
    assert.are.equal(0, status, out)
    local l = lines(out)
    assert.are.equal("+919876543210: page 1, 3 of 3 calls", l[1])
    assert.are.equal(4, #l, out)
    assert.are.equal("2026-06-11T09:30:00Z  completed  Support Agent  250 s  12.50", l[2])
  end)

  -- Every line of `lines` from `first` on is as long as the others: each column is padded to
  -- one width, the last one aligned on the right.
  local function assert_aligned(lines_, first)
    for i = first + 1, #lines_ do
      assert.are.equal(#lines_[first], #lines_[i], "misaligned:\n" .. table.concat(lines_, "\n"))
    end
  end

  it("one_page.lua and agent_summary.lua align their columns", function()
    local out, status = example("one_page.lua", mock.phones.p250)
    assert.are.equal(0, status, out)
    assert_aligned(lines(out), 2)
    out, status = example("agent_summary.lua", mock.phones.p250)
    assert.are.equal(0, status, out)
    assert_aligned(lines(out), 1)
  end)

  it("one_page.lua reports an error on one line with a non-zero exit", function()
    local out, status = example("one_page.lua", "12345")
    assert.are.equal(1, status)
    assert.truthy(out:find("^ravan: invalid_argument: phone must be E.164"), out)
    assert.are.equal(0, #mock.requests())
  end)

  it("every_call.lua walks every call through the pager, and stops at a limit", function()
    local out, status = example("every_call.lua", mock.phones.p250)
    assert.are.equal(0, status, out)
    local l = lines(out)
    assert.are.equal("250 calls", l[#l])
    local want = all_calls(mock.phones.p250)
    for i = 1, 250 do
      assert.truthy(l[i]:find(want[i].id, 1, true), l[i])
    end
    mock.reset()
    out, status = example("every_call.lua", mock.phones.p250, "5")
    assert.are.equal(0, status, out)
    assert.are.equal("5 calls", lines(out)[6])
    assert.are.equal(1, #mock.requests())
  end)

  it("agent_summary.lua sums calls, minutes and exact costs per agent", function()
    local out, status = example("agent_summary.lua", mock.phones.p250)
    assert.are.equal(0, status, out)
    local want = {}
    for _, call in ipairs(all_calls(mock.phones.p250)) do
      local a = want[call.agent_name] or { calls = 0, seconds = 0, cents = 0 }
      want[call.agent_name] = a
      a.calls = a.calls + 1
      a.seconds = a.seconds + call.duration_sec
      local units, cents = call.cost_total:match("^(%d+)%.(%d%d)$")
      a.cents = a.cents + tonumber(units) * 100 + tonumber(cents)
    end
    local seen = 0
    for _, line in ipairs(lines(out)) do
      local name, calls, minutes, cost = line:match("^(.-)%s+(%d+)%s+([%d.]+)%s+[%d.]+%s+([%d.]+)$")
      if name then
        local a = assert(want[name], "unknown agent " .. name)
        assert.are.equal(a.calls, tonumber(calls))
        assert.are.equal(("%.1f"):format(a.seconds / 60), minutes)
        assert.are.equal(("%d.%02d"):format(math.floor(a.cents / 100), a.cents % 100), cost)
        seen = seen + 1
      end
    end
    local agents = 0
    for _ in pairs(want) do agents = agents + 1 end
    assert.are.equal(agents, seen, out)
  end)

  -- Runs export_csv.lua into a file; returns its parsed rows and what it printed.
  local function export(phone)
    local tmp = proc.tmpdir()
    local file = tmp .. "/calls.csv"
    local out, status = example("export_csv.lua", phone, file)
    local f = io.open(file, "rb")
    local text = f and f:read("*a")
    if f then f:close() end
    proc.rmdir(tmp)
    assert.are.equal(0, status, out)
    return parse_csv(assert(text, out)), out
  end

  -- Every row holds its call's fields as text, and an absent field as an empty one.
  local function assert_rows(rows, calls)
    assert.are.equal(#calls + 1, #rows)
    local header = rows[1]
    assert.are.equal("id", header[1])
    for i, call in ipairs(calls) do
      local row = rows[i + 1]
      assert.are.equal(#header, #row)
      for j, name in ipairs(header) do
        local v = call[name]
        assert.are.equal(v == nil and "" or tostring(v), row[j], name .. " of row " .. i)
      end
    end
  end

  it("export_csv.lua writes every call as RFC 4180 CSV", function()
    local rows, out = export(mock.phones.p250)
    assert.truthy(out:find("250 calls written", 1, true), out)
    assert_rows(rows, all_calls(mock.phones.p250))
  end)

  it("export_csv.lua leaves missing fields empty", function()
    local rows = export(mock.phones.nulls)
    local calls = all_calls(mock.phones.nulls)
    assert.is_true(#calls > 0)
    assert_rows(rows, calls)
  end)
end)
