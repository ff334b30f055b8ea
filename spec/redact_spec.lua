-- ravan.redact, in process: the one function every flavour scrubs credentials with.
local redact = require "ravan.redact"

local SECRET = "rk_live_%ab.c*"   -- pattern characters must be taken literally

describe("redact.text", function()
  it("masks every occurrence, and leaves everything else alone", function()
    local cases = {
      { "key " .. SECRET, "key [REDACTED]" },
      { SECRET .. SECRET, "[REDACTED][REDACTED]" },
      { "no secret here %a", "no secret here %a" },
      { "", "" },
      { "rk_live_%ab.", "rk_live_%ab." },   -- a part of it, uncut, is the server's own text
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], redact.text(c[1], SECRET))
    end
  end)

  it("cuts to max after masking, and drops a start of the secret left at the cut", function()
    for cut = 0, #SECRET do
      local s = ("x"):rep(20) .. SECRET .. "yyy"
      local out = redact.text(s, SECRET, 20 + cut)
      assert.truthy(#out <= 20 + cut)
      for n = 1, #SECRET do
        local part = SECRET:sub(1, n)
        assert(out:sub(-n) ~= part, cut .. ": " .. out)
      end
    end
    -- A body that ends in a start of the secret only once it is cut.
    assert.are.equal(("x"):rep(10), redact.text(("x"):rep(10) .. SECRET:sub(1, 6) .. "zzzz",
      SECRET, 16))
  end)

  it("passes non-strings through, and does nothing with no usable secret", function()
    for _, v in ipairs({ 1, true, {}, print }) do assert.are.equal(v, redact.text(v, SECRET)) end
    assert.is_nil(redact.text(nil, SECRET))
    -- Secrets too short to mask safely, or not strings: the text comes back as it was.
    local unusable = { n = 5, nil, "", "abc", 42, {} }
    for i = 1, unusable.n do
      assert.are.equal("abc abc", redact.text("abc abc", unusable[i]))
    end
    assert.are.equal("abcdef", redact.text("abcdefgh", nil, 6))
  end)

  it("redact.fields masks every string field of a table", function()
    local ev = { event = "error", message = "bad " .. SECRET, request_id = SECRET, status = 401 }
    assert.are.equal(ev, redact.fields(ev, SECRET))
    assert.are.same({ event = "error", message = "bad [REDACTED]", request_id = "[REDACTED]",
      status = 401 }, ev)
  end)
end)
