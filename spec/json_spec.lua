-- ravan.json, the one JSON writer: the CLI's shaped and pretty output, and the sync's canonical
-- stored values; the values lua-cjson cannot write as they came.
local cjson = require "cjson"
local contract = require "ravan.contract"
local json = require "ravan.json"

local encode = json.encode

describe("ravan.json", function()
  it("orders keys by the shape, then any others sorted", function()
    local shape = { keys = { "z", "a", "m" } }
    assert.are.equal('{"z":1,"a":2,"m":3,"b":4,"y":5}',
      encode({ a = 2, b = 4, m = 3, y = 5, z = 1 }, { shape = shape }))
    assert.are.equal('{"a":2,"b":4,"z":1}', encode({ a = 2, b = 4, z = 1 }))
  end)

  it("follows the shape into objects and arrays", function()
    local call = { transcripts = { { message = { content = "hi", role = "agent" }, id = "t" } },
      id = "c", agent_id = "a" }
    assert.are.equal('{"id":"c","agent_id":"a","transcripts":[{"id":"t","message":'
      .. '{"role":"agent","content":"hi"}}]}', encode(call, { shape = contract.CALL }))
  end)

  it("writes an empty table as [] unless the shape says it is an object", function()
    local call = { metadata = {}, credit_breakdown = {}, transcripts = {}, x = {} }
    assert.are.equal('{"credit_breakdown":{},"metadata":{},"transcripts":[],"x":[]}',
      encode(call, { shape = contract.CALL }))
    assert.are.equal("[]", encode({}))
  end)

  it("writes nested empty arrays and arrays of nulls in place", function()
    assert.are.equal('{"a":[[],[[]],[[],[]]]}', encode({ a = { {}, { {} }, { {}, {} } } }))
    assert.are.equal("[null,null,3]", encode({ nil, nil, 3 }))
    assert.are.equal('[null,{"b":[null,1]}]', encode({ nil, { b = { nil, 1 } } }))
  end)

  it("survives the numbers a server can send that Lua cannot hold", function()
    local t = cjson.decode('{"big":1e400,"small":-1e400}')
    assert.are.equal('{"big":null,"small":null}', encode(t))
    assert.are.equal("[null,null,null]", encode({ 0 / 0, math.huge, -math.huge }))
    assert.are.equal('{"n":null}', json.canonical({ n = 0 / 0 }))
  end)

  it("writes numbers exactly, in the fewest digits that read back the same", function()
    for _, case in ipairs {
      { 0.1, "0.1" }, { 1 / 3, "0.3333333333333333" }, { 2 ^ 53, "9007199254740992" },
      { -2.5, "-2.5" }, { 4.0, "4" }, { 1e-7, "1e-07" }, { 0.1 + 0.2, "0.30000000000000004" },
    } do
      assert.are.equal(case[2], encode(case[1]))
      assert.are.equal(case[1], tonumber(encode(case[1])))
    end
  end)

  it("escapes quotes, backslashes and control characters, and nothing else", function()
    assert.are.equal([["a\"b\\c\n\t\r\b\f\u0001\u001b\u007f/é"]],
      encode('a"b\\c\n\t\r\b\f\1\27\127/é'))
  end)

  it("writes values JSON has no word for as null, and booleans as they are", function()
    assert.are.equal("[true,false,null]", encode({ true, false, print }))
    assert.are.equal("null", encode(nil))
  end)

  it("is indented two spaces a level when pretty, from a given indentation", function()
    local page = { phone = "+1", calls = { { id = "x", metadata = {} } }, page = 1 }
    assert.are.equal(table.concat({
      "{",
      '  "phone": "+1",',
      '  "page": 1,',
      '  "calls": [',
      "    {",
      '      "id": "x",',
      '      "metadata": {}',
      "    }",
      "  ]",
      "}",
    }, "\n"), encode(page, { shape = contract.PAGE, pretty = true }))
    assert.are.equal('{\n      "id": "x"\n    }',
      encode({ id = "x" }, { shape = contract.CALL, pretty = true, indent = "    " }))
  end)

  it("reads back as the value it wrote", function()
    local v = { a = { 1, 2.5, "x", { y = true } }, b = "é\n", c = { d = { {} } }, e = -0.125 }
    assert.are.same(v, cjson.decode(encode(v)))
    assert.are.same(v, cjson.decode(encode(v, { pretty = true })))
    assert.are.same(v, cjson.decode(json.canonical(v)))
  end)

  it("is canonical: sorted keys, one line, {} when empty, \\u00XX, integral floats as integers",
    function()
      assert.are.equal('{"a":[1,2.5,"x"],"b":{"c":true,"d":"q\\"\\\\\\u000a"},"e":{}}',
        json.canonical({ b = { d = 'q"\\\n', c = true }, a = { 1, 2.5, "x" }, e = {} }))
      assert.are.equal("4", json.canonical(4.0))
      -- The same value, built in another order, gives the same bytes.
      local a, b = {}, {}
      for i = 1, 50 do a["k" .. i] = i end
      for i = 50, 1, -1 do b["k" .. i] = i end
      assert.are.equal(json.canonical(a), json.canonical(b))
    end)

  it("writes a table with both kinds of keys as an object, the same way every time", function()
    local t = { 1, 2, x = 3 }
    assert.are.equal('{"1":1,"2":2,"x":3}', encode(t))
    assert.are.equal('{"1":1,"2":2,"x":3}', json.canonical(t))
  end)
end)
