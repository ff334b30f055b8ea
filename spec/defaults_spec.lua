-- Defaults, in process: ravan.defaults is their one home. Validation fills them in from there,
-- the C core has none of its own, docs/options.md shows them as they are, every duration is
-- bounded, and the pager checks its options in the same single pass as the query. The limits
-- are the C core's, and each cap is taken and one more refused, naming it.
local core = require "ravan.core"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local proc = require "spec.support.proc"
local defaults = require "ravan.defaults"
local validate = require "ravan.validate"
local ravan = require "ravan"

local OPTS = { base_url = "http://127.0.0.1:9", api_key = "rk_defaults_spec" }

local function with(extra)
  local t = {}
  for k, v in pairs(OPTS) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

-- docs/options.md's first table: option -> the default cell's first `code` span.
local function documented_defaults()
  local text = proc.read_file("docs/options.md")
  local rows = {}
  local first_table = text:match("| option | default | meaning |\n| [-| ]+|\n(.-)\n\n")
  for line in (first_table .. "\n"):gmatch("([^\n]*)\n") do
    local name, default = line:match("^| `([%w_]+)` | (.-) |")
    assert(name, "not a table row: " .. line)
    rows[name] = default:match("^`([^`]*)`") or default
  end
  return rows
end

describe("defaults", function()
  it("validation fills every client default from ravan.defaults, and no other", function()
    local cfg = assert(validate.options(OPTS))
    for name, default in pairs(defaults.client) do
      -- base_url's default applies after RAVAN_BASE_URL; OPTS gives one.
      if name ~= "base_url" then assert.are.equal(default, cfg[name], name) end
    end
    for name, value in pairs(cfg) do
      if OPTS[name] == nil then assert.are.equal(defaults.client[name], value, name) end
    end
    local env = assert(validate.options({ api_key = "rk_defaults_spec" }, function() end))
    assert.are.equal(defaults.client.base_url, env.base_url)
  end)

  it("docs/options.md has one row per client option, with the default as ravan.defaults has it", function()
    local rows = documented_defaults()
    local names = h.client_options()
    assert.truthy(#names > 0)
    for _, name in ipairs(names) do
      assert.truthy(rows[name], name .. " has no row")
      local default = defaults.client[name]
      if default ~= nil then
        assert.are.equal(tostring(default), rows[name], name)
      end
    end
    local documented = 0
    for _ in pairs(rows) do documented = documented + 1 end
    assert.are.equal(#names, documented, "rows for options that do not exist")
  end)

  it("the C core has no defaults of its own: it refuses a setting not handed over", function()
    local ok, msg = pcall(core.new, { base_url = OPTS.base_url, insecure = false })
    assert.is_false(ok)
    assert.matches("must be a number", msg)
  end)

  it("the pager's defaults come from ravan.defaults too", function()
    local c = assert(ravan.new(OPTS))
    local p = c:pages { phone = "+14155550100" }
    assert.are.equal(defaults.pager.page_size, p._size)
    assert.are.equal(defaults.pager.prefetch, p._prefetch)
    c:close()
  end)

  it("bounds every duration: a day at most, so 1e16 s cannot wrap around to 1 ms", function()
    local durations = { "timeout", "connect_timeout", "deadline", "retry_base", "retry_cap",
      "max_retry_after", "low_speed_time" }
    for _, name in ipairs(durations) do
      assert(ravan.new(with({ [name] = core.LIMITS.max_seconds })), name)
      for _, v in ipairs({ 1e16, core.LIMITS.max_seconds + 1, 2 ^ 63 }) do
        local c, err = ravan.new(with({ [name] = v }))
        assert.is_nil(c, name)
        assert.are.equal("invalid_argument", err.kind)
        assert.matches(name, err.message)
        assert.matches(tostring(core.LIMITS.max_seconds), err.message)
      end
    end
    local c = assert(ravan.new(OPTS))
    local _, err = c:phone_history { phone = "+14155550100", deadline = 1e16 }
    assert.are.equal("invalid_argument", err.kind)
    assert.matches("deadline", err.message)
  end)

  it("the pager checks the query and its own options in one pass", function()
    local c = assert(ravan.new(OPTS))
    local query = spy.on(validate, "query")
    local p = c:pages { phone = "+14155550100", limit = 5, prefetch = 0 }
    assert.spy(query).was.called(1)
    validate.query:revert()
    assert.are.equal(5, p._limit)
    assert.are.equal(0, p._prefetch)
    for _, q in ipairs({ { phone = "+14155550100", limt = 5 }, { phone = "+1", limit = 5 },
        { phone = "+14155550100", prefetch = 17 } }) do
      local _, err = c:pages(q):next()
      assert.are.equal("invalid_argument", err.kind)
    end
    local _, err = c:pages({ phone = "+14155550100", limt = 5 }):next()
    assert.matches("did you mean 'limit'", err.message)
  end)

  describe("limits", function()
    local LIMITS = core.LIMITS
    before_each(mock.reset)

    -- The message of a refused value, after checking that it was refused as invalid_argument.
    local function refused(res, err)
      assert.is_nil(res)
      assert.are.equal("invalid_argument", err.kind)
      return err.message
    end

    it("are the C core's numbers (src/rv_limits.h), by the names the Lua side reads", function()
      assert.are.same({ max_concurrency = 64, page_size = 100, max_seconds = 86400,
        header_bytes = 102400 }, LIMITS)
    end)

    it("are the numbers the reference states: docs/options.md, docs/sync.md, docs/errors.md", function()
      local options, sync = proc.read_file("docs/options.md"), proc.read_file("docs/sync.md")
      local function row(text, name)
        return assert(text:match("\n| `" .. name .. "` | [^\n]*"), name .. " has no row")
      end
      local days = { "timeout", "connect_timeout", "deadline", "retry_base", "retry_cap",
        "max_retry_after", "low_speed_time" }
      for _, name in ipairs(days) do
        assert.truthy(row(options, name):find(" " .. LIMITS.max_seconds, 1, true), name)
      end
      assert.truthy(row(options, "max_concurrency"):find("1 to " .. LIMITS.max_concurrency .. ")", 1, true))
      for _, text in ipairs({ options, sync }) do
        assert.truthy(row(text, "page_size"):find("(1 to " .. LIMITS.page_size .. ")", 1, true))
      end
      local kib = math.floor(LIMITS.header_bytes / 1024) .. " KiB"
      assert.truthy(row(proc.read_file("docs/errors.md"), "too_large"):find(kib, 1, true))
    end)

    it("max_concurrency: the cap is taken, by validation and by the engine; one more is refused naming it", function()
      local c = assert(ravan.new(mock.options { max_concurrency = LIMITS.max_concurrency }))
      local reqs = {}
      for i = 1, LIMITS.max_concurrency do reqs[i] = assert(c:start { phone = mock.phones.example }) end
      for i = 1, #reqs do assert(reqs[i]:wait()) end
      assert.are.equal(LIMITS.max_concurrency, #mock.requests())
      c:close()
      local msg = refused(ravan.new(mock.options { max_concurrency = LIMITS.max_concurrency + 1 }))
      assert.are.equal("max_concurrency must be an integer from 1 to " .. LIMITS.max_concurrency, msg)
      -- The engine's own check, for a core client that validation never saw.
      local cfg = assert(validate.options(mock.options()))
      cfg.max_concurrency = LIMITS.max_concurrency + 1
      local job, err = core.new(cfg):start { phone = mock.phones.example }
      assert.is_nil(job)
      assert.are.equal("max_concurrency must be from 1 to " .. LIMITS.max_concurrency, err)
    end)

    it("page_size: the cap is served; one more is refused naming it by a call, the pager and sync", function()
      local c = assert(ravan.new(mock.options()))
      local res = assert(c:phone_history { phone = mock.phones.p250, page_size = LIMITS.page_size })
      assert.are.equal(LIMITS.page_size, #res.calls)
      local expected = "page_size must be an integer from 1 to " .. LIMITS.page_size
      local over = LIMITS.page_size + 1
      assert.are.equal(expected, refused(c:phone_history { phone = mock.phones.p250, page_size = over }))
      assert.are.equal(expected, refused(c:pages({ phone = mock.phones.p250, page_size = over }):next()))
      assert.are.equal(expected, refused(c:sync { phone = mock.phones.p250, db = "sqlite::memory:",
        page_size = over }))
      assert.are.equal(1, #mock.requests())
      c:close()
    end)

    it("header_bytes: libcurl's own line limit, so a line under it arrives and one over is too_large", function()
      local c = assert(ravan.new(mock.options { max_retries = 0 }))
      for _, case in ipairs({ { LIMITS.header_bytes - 1024, nil }, { LIMITS.header_bytes + 1024, "too_large" } }) do
        mock.reset()
        mock.fault({ kind = "status", status = 200, count = 1,
          headers = { ["X-Big"] = ("h"):rep(case[1]) } })
        local res, err = c:phone_history { phone = mock.phones.example }
        if case[2] then
          assert.is_nil(res)
          assert.are.equal(case[2], err.kind)
          assert.matches(math.floor(LIMITS.header_bytes / 1024) .. " KiB", err.message)
        else
          -- The answer was read (its body is the fault's, not a page): HTTP 200 came through.
          assert.are.equal(200, res and 200 or err.status, tostring(err))
        end
      end
      c:close()
    end)
  end)
end)
