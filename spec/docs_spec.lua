-- The docs: `make docs` builds the manual (docs/*.md) and the API reference from the doc
-- comments (config.ld) without a warning, covering the public API and nothing internal; the
-- README is a short front page whose quick start runs as written; the option tables show the
-- defaults of ravan.defaults; code blocks fit the page.
local defaults = require "ravan.defaults"
local proc = require "spec.support.proc"

local read = proc.read_file

-- docs/*.md, as paths from the checkout: never an empty list, which would make every loop over
-- the topics check nothing.
local function topics()
  local out, status = proc.run("ls docs/*.md")
  assert.are.equal(0, status, out)
  local list = {}
  for path in out:gmatch("%S+") do list[#list + 1] = path end
  assert.is_true(#list >= 10, "docs/ has " .. #list .. " topics: " .. out)
  return list
end

-- The fenced code blocks of a markdown text, each as its lines.
local function code_blocks(text)
  local blocks = {}
  for body in text:gmatch("\n```[%w]*\n(.-)\n```") do
    local lines = {}
    for line in (body .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    blocks[#blocks + 1] = lines
  end
  return blocks
end

-- Display width in code points (the docs have a few non-ASCII characters: "≥", "—").
local function width(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

describe("the README", function()
  it("is a front page of at most 150 lines", function()
    local _, lines = read("README.md"):gsub("\n", "")
    assert.is_true(lines <= 150, "README.md has " .. lines .. " lines")
  end)

  it("links every topic of the manual", function()
    local readme = read("README.md")
    for _, path in ipairs(topics()) do
      assert.truthy(readme:find("(" .. path .. ")", 1, true), path .. " is not linked")
    end
  end)
end)

describe("the README's quick start", function()
  local why = proc.skip("it runs lua5.4 and the CLI whichever Lua runs busted")
  if why then
    pending(why)
    return
  end

  it("runs as written against the local server", function()
    local block = read("README.md"):match("\n## Quick start\n.-\n```sh\n(.-)\n```")
    assert.truthy(block, "no sh block under Quick start")
    assert.truthy(block:find("rk_test_local", 1, true))
    assert.truthy(block:find("mock/server", 1, true))
    -- A fresh shell: none of the checkout's or the server's variables. The trap only stops a
    -- server the block started and did not stop because it failed half-way.
    local script = table.concat({
      "unset LUA LUA_PATH LUA_CPATH LUA_CPATH_5_2 LUA_CPATH_5_3 LUA_CPATH_5_4 RAVAN_API_KEY"
        .. " RAVAN_TOKEN RAVAN_BASE_URL RAVAN_MOCK_URL RAVAN_MOCK_DIR",
      "trap '[ -d \"${RAVAN_MOCK_DIR:-}\" ] && mock/server stop \"$RAVAN_MOCK_DIR\"' EXIT",
      "set -e",
      block,
    }, "\n")
    local out, status = proc.run("bash -c " .. proc.quote(script))
    assert.are.equal(0, status, out)
    assert.matches("%+919876543210: 3 calls, page 1 of 1\n", out)
    assert.matches("\nid,started_at,", out)
    assert.matches("%+919876543210: page 1, 3 of 3 calls\n", out)
  end)
end)

describe("the docs' option tables", function()
  it("show the defaults ravan.defaults has", function()
    local checked = 0
    local files = topics()
    files[#files + 1] = "README.md"
    for _, path in ipairs(files) do
      local text = read(path)
      for table_text in text:gmatch("| option | default |[^\n]*\n| [-| ]+|\n(.-)\n\n") do
        for line in (table_text .. "\n"):gmatch("([^\n]*)\n") do
          local name, default = line:match("^| `([%w_]+)` | (.-) |")
          local want = name and (defaults.client[name] or defaults.pager[name])
          if want ~= nil then
            assert.are.equal(tostring(want), default:match("^`([^`]*)`") or default,
              path .. ": " .. name)
            checked = checked + 1
          end
        end
      end
    end
    assert.is_true(checked > 0, "no option table found")
  end)
end)

describe("code blocks in the docs", function()
  it("fit the page: 100 columns at most", function()
    local files = topics()
    files[#files + 1] = "README.md"
    for _, path in ipairs(files) do
      local text = read(path)
      local blocks = code_blocks(text)
      -- Every fenced block is read, or its lines would go unchecked.
      local _, fences = ("\n" .. text):gsub("\n```", "")
      assert.are.equal(fences / 2, #blocks, path)
      for _, block in ipairs(blocks) do
        for _, line in ipairs(block) do
          assert.is_true(width(line) <= 100, path .. ": a code line of " .. width(line)
            .. " columns:\n" .. line)
        end
      end
    end
  end)
end)

describe("the API reference", function()
  local why = proc.skip("LDoc's output does not depend on the Lua running busted")
  if why then
    pending(why)
    return
  end

  local tmp, out, status

  setup(function()
    tmp = proc.tmpdir()
    -- `make docs` as it is run, into a temporary dir; -o deps: the packages are there already.
    out, status = proc.run("make -s --no-print-directory -o deps docs DOC_DIR=" .. proc.quote(tmp))
  end)

  teardown(function()
    if tmp then proc.rmdir(tmp) end
  end)

  it("renders every topic of docs/, and an index that introduces ravan", function()
    for _, path in ipairs(topics()) do
      local html = tmp .. "/topics/" .. path:match("[^/]+$") .. ".html"
      assert.truthy(proc.file_size(html), path .. " is not rendered: add it to config.ld's topics")
    end
    local index = read(tmp .. "/index.html")
    assert.truthy(index:find("phone number", 1, true), "no introduction on the index")
    assert.truthy(index:find('href="topics/usage.md.html', 1, true), index)
  end)

  it("uses its own stylesheet, which lets the page take the window's width", function()
    local css = read(tmp .. "/ldoc.css")
    assert.are.equal(read("docs/ldoc.css"), css)
    assert.is_nil(css:find("%f[%w-]width:%s*%d+px"), "a fixed width in the stylesheet")
  end)

  it("shows no internal notes and no spec-only parameters", function()
    local pages = { tmp .. "/index.html" }
    for name in proc.run("ls " .. proc.quote(tmp .. "/modules")):gmatch("%S+") do
      pages[#pages + 1] = tmp .. "/modules/" .. name
    end
    for _, page in ipairs(pages) do
      local text = read(page):gsub("<[^>]*>", "")
      for _, word in ipairs({ "getenv", "for specs", "Internally", "internal helper" }) do
        assert.is_nil(text:find(word, 1, true), page .. " mentions '" .. word .. "'")
      end
    end
  end)

  it("builds without warnings, and `make docs` says only where they are", function()
    assert.are.equal(0, status, out)
    assert.are.equal("The manual and the API reference: " .. tmp .. "/index.html\n", out)
  end)

  -- Every page LDoc wrote, as paths under tmp.
  local function html_pages()
    local list = {}
    for path in proc.run("cd " .. proc.quote(tmp) .. " && find . -name '*.html' | LC_ALL=C sort")
        :gmatch("%S+") do
      list[#list + 1] = path:gsub("^%./", "")
    end
    return list
  end

  -- `base` (a page's directory, relative to tmp) joined with the relative `href`, `..` resolved;
  -- nil when it leaves tmp.
  local function resolve(base, href)
    local parts = {}
    for part in (base .. "/" .. href):gmatch("[^/]+") do
      if part == ".." then
        if #parts == 0 then return nil end
        parts[#parts] = nil
      elseif part ~= "." then
        parts[#parts + 1] = part
      end
    end
    return table.concat(parts, "/")
  end

  it("links only to pages and anchors that exist", function()
    local list = html_pages()
    assert.is_true(#list > 20, "only " .. #list .. " pages")
    local anchors = {}
    local function anchors_of(path)
      if not anchors[path] then
        local set = {}
        for attr, name in read(tmp .. "/" .. path):gmatch('%s([%w-]+)%s*=%s*"([^"]*)"') do
          if attr == "name" or attr == "id" then set[name] = true end
        end
        anchors[path] = set
      end
      return anchors[path]
    end
    local checked, broken = 0, {}
    for _, page in ipairs(list) do
      local base = page:match("^(.*)/[^/]*$") or "."
      for attr, target in read(tmp .. "/" .. page):gmatch('%s([%w-]+)%s*=%s*"([^"]*)"') do
        if (attr == "href" or attr == "src") and not target:find("^%a[%w+.-]*:") then
          checked = checked + 1
          target = target:gsub("&amp;", "&")
          local file, anchor = target:match("^([^#]*)#?(.*)$")
          local path = file == "" and page or resolve(base, file)
          if not path or not proc.file_size(tmp .. "/" .. path) then
            broken[#broken + 1] = page .. ": " .. target .. " (no such file)"
          elseif anchor ~= "" and path:find("%.html$") and not anchors_of(path)[anchor] then
            broken[#broken + 1] = page .. ": " .. target .. " (no such anchor)"
          end
        end
      end
    end
    assert.is_true(checked > 200, "only " .. checked .. " links")
    assert.are.same({}, broken)
  end)

  it("describes every topic in the index's table", function()
    local n = 0
    for path, summary in read(tmp .. "/index.html"):gmatch(
        '<a href="(topics/[^"]+)">[^<]*</a></td>%s*<td class="summary">(.-)</td>') do
      n = n + 1
      assert.truthy(summary:find("%w"), path .. " has no description")
    end
    assert.are.equal(#topics(), n)
  end)

  it("shows no markdown backticks outside code", function()
    local list = html_pages()
    for _, page in ipairs(list) do
      local text = read(tmp .. "/" .. page):gsub("<pre.-</pre>", ""):gsub("<code.-</code>", "")
      local line = text:match("[^\n]*`[^\n]*")
      assert.is_nil(line, page .. ": " .. tostring(line))
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
