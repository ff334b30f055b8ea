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

  it("masks the forms a server echoes: JSON escapes, percent-encoding, HTML, mixed", function()
    local T = "tok/AbC+dEf/9xYz=="
    local cases = {
      [[tok\/AbC+dEf\/9xYz==]],
      "tok\\u002FAbC\\u002BdEf\\u002f9xYz\\u003D\\u003d",
      "\\u0074\\u006F\\u006b/AbC+dEf/9xYz==",
      "tok%2FAbC%2BdEf%2F9xYz%3D%3D",
      "tok%2fAbC%2bdEf%2f9xYz%3d%3d",
      "tok%252FAbC%252BdEf%252F9xYz%253D%253D",
      "tok&#x2F;AbC&#43;dEf&#47;9xYz&#61;=",
      "tok\\/AbC%2BdEf\\u002f9xYz%3d\\u003D",
    }
    for _, c in ipairs(cases) do
      assert.are.equal("<[REDACTED]>", redact.text("<" .. c .. ">", T), c)
    end
    -- The characters themselves are compared exactly: another case is someone else's text.
    assert.are.equal("TOK/AbC+dEf/9xYz==", redact.text("TOK/AbC+dEf/9xYz==", T))
    -- A secret that is not ASCII, escaped as its code point or its UTF-8 bytes.
    for _, c in ipairs({ "Se\\u00f1or-key", "Se%C3%B1or-key", "Se&#241;or-key", "Señor-key" }) do
      assert.are.equal("[REDACTED]", redact.text(c, "Señor-key"), c)
    end
  end)

  it("drops an encoded start of the secret left at the cut, a cut escape included", function()
    local T = "tok/AbC+dEf/9xYz=="
    for _, tail in ipairs({ "tok\\/AbC", "tok%2FAb", "tok%2", "tok\\u00", "tok\\", "to" }) do
      local out = redact.text(("x"):rep(10) .. tail .. ("z"):rep(40), T, 10 + #tail)
      assert.are.equal(("x"):rep(10), out, tail)
    end
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
  it("redact.parts masks every token that holds four characters of a secret in a row", function()
    local secrets = { "50%offS3cret", "50\0offS3cret" }
    assert.are.equal('invalid percent-encoded token: "[REDACTED]"',
      redact.parts('invalid percent-encoded token: "50%offS3cret"', secrets))
    assert.are.equal("password [REDACTED] and [REDACTED] failed",
      redact.parts("password xS3crx and ffS3-cut failed", secrets))
    assert.are.equal("no part: 50% S3c", redact.parts("no part: 50% S3c", secrets))
    assert.are.equal("anything", redact.parts("anything", {}))
  end)
end)
