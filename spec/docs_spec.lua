-- `make docs`: LDoc builds the API reference from the doc comments (config.ld) without a warning,
-- and it covers the public API.
local proc = require "spec.support.proc"

local read = proc.read_file

describe("the API reference", function()
  local why = proc.skip("LDoc's output does not depend on the Lua running busted")
  if why then
    pending(why)
    return
  end

  local tmp, out, status

  setup(function()
    tmp = proc.tmpdir()
    out, status = proc.run("ldoc -d " .. proc.quote(tmp) .. " .")
  end)

  teardown(function()
    if tmp then proc.rmdir(tmp) end
  end)

  it("builds without warnings", function()
    assert.are.equal(0, status, out)
    for line in out:gmatch("[^\n]+") do
      local expected = line:find("^reading configuration") or line:find("^output written")
      assert.truthy(expected, "LDoc said: " .. line)
    end
  end)

  it("documents every error kind and field", function()
    local html = read(tmp .. "/modules/ravan.errors.html")
    for _, word in ipairs { "invalid_argument", "auth", "bad_request", "rate_limited", "server",
        "timeout", "network", "tls", "decode", "too_large", "message", "status", "request_id",
        "retryable", "attempts", "body", "curl_code", "retry_after" } do
      assert.truthy(html:find(word, 1, true), "ravan.errors does not mention " .. word)
    end
  end)

  it("documents every public module and its functions", function()
    local pages = {
      ["ravan"] = { "phone_history", "pages", "calls", "new", "is_error", "VERSION" },
      ["ravan.client"] = { "new", "Client:phone_history", "Client:pages", "Client:calls",
        "Client:close" },
      ["ravan.pager"] = { "Pager:next", "Pager:close", "Pager:stats" },
      ["ravan.errors"] = { "is_error", "Error" },
      ["ravan.openresty"] = { "new", "phone_history", "pages", "calls", "Client:phone_history" },
    }
    for module, names in pairs(pages) do
      local html = read(tmp .. "/modules/" .. module .. ".html")
      for _, name in ipairs(names) do
        assert.truthy(html:find('name%s*=%s*"' .. name:gsub("%p", "%%%0") .. '"'),
          module .. " does not document " .. name)
      end
    end
  end)
end)
