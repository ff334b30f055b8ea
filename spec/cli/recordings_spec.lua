-- `ravan-history recordings`: its words, and a run against the local server.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local h = require "spec.support.helpers"
local recordings = require "ravan.cli.recordings"

describe("ravan-history recordings arguments", function()
  it("takes phones, a directory and the bounds", function()
    local o = assert(recordings.parse { "+15550000250", "--dir", "out", "--since=2026-01-01",
      "--until", "2026-02-01" })
    assert.are.same({ "+15550000250" }, o.phones)
    assert.are.same({ "out", "2026-01-01", "2026-02-01" }, { o.dir, o.since, o["until"] })
  end)

  for _, case in ipairs {
    { {}, "give PHONE..." },
    { { "+15550000250" }, "--dir is required" },
    { { "+15550000250", "--dir" }, "--dir needs a value" },
    { { "+15550000250", "--dri", "x" }, "unknown option '--dri' (did you mean --dir?)" },
  } do
    it("refuses " .. table.concat(case[1], " "), function()
      local o, msg = recordings.parse(case[1])
      assert.is_nil(o)
      assert.are.equal(case[2], msg)
    end)
  end
end)

describe("ravan-history recordings", function()
  local dir

  before_each(function()
    mock.reset()
    mock.config { recordings = { other = 0.25, empty = 0.25 } }
    dir = proc.tmpdir()
  end)

  after_each(function() proc.rmdir(dir) end)

  it("downloads the recordings of the calls in the range, then skips them", function()
    local calls = mock.dataset(mock.phones.p250).calls
    local args = { "recordings", mock.phones.p250, "--dir", dir, "--since", calls[8].started_at,
      "--until", calls[1].started_at }
    local expected, none = 0, 0
    for i = 2, 8 do
      if calls[i].recording_url ~= "" then expected = expected + 1 else none = none + 1 end
    end
    local status, out, err = h.run_cli(args, mock.env())
    assert.are.equal(0, status, err)
    assert.matches(("^7 recordings: %d downloaded, 0 skipped, %d without one, 0 failed"):format(expected, none), out)
    assert.are.equal(none, select(2, err:gsub("no recording\n", "")))
    status, out = h.run_cli(args, mock.env())
    assert.are.equal(0, status)
    assert.matches(("^7 recordings: 0 downloaded, %d skipped, %d without one, 0 failed, 0.0 MB"):format(expected, none), out)
  end)

  it("says why in the library's words, as a flag", function()
    local status, _, err = h.run_cli({ "recordings", mock.phones.p250, "--dir", dir, "--since", "yesterday" },
      mock.env())
    assert.are.equal(2, status)
    assert.matches("^ravan%-history recordings: %-%-since must be a UTC time", err)
  end)
end)
