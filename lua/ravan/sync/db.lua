--- A small SQL driver layer over LuaSQL: SQLite (`lua-sql-sqlite3`) and
-- PostgreSQL (`lua-sql-postgres`) behind one interface, so the sync code is
-- written once.
--
--    local db, err = require("ravan.sync.db").open("sqlite:calls.db")
--    db:exec("INSERT INTO t (a, b) VALUES (?, ?)", "x", 2)
--
-- `?` placeholders take Lua values (nil, booleans, numbers, strings) and are
-- rendered as literals with the connection's own escaping: LuaSQL has no
-- bound parameters for these two drivers. Failures are `nil, err` with kind
-- `database`; nothing here raises.
-- @module ravan.sync.db

local errors = require "ravan.errors"
local redact = require "ravan.redact"

local M = {}

local Db = {}
Db.__index = Db

local format, tointeger = string.format, math.tointeger
local floor, huge = math.floor, math.huge

-- Percent-decoded where it can be, as libpq does (it quotes what it cannot).
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The forms of `s` a driver may echo: as written, and decoded.
local function forms_of(s, out)
  if s == nil or s == "" then return end
  out[#out + 1] = s
  local decoded = unescape(s)
  if decoded ~= s then out[#out + 1] = decoded end
end

-- The passwords a PostgreSQL URI holds, in every form: its userinfo's
-- (`user:PASSWORD@`) and its query's `password=`.
local function secrets_of(url)
  local out = {}
  local rest = url:match("^%w+://(.*)$") or ""
  local authority, query = rest:match("^([^?]*)%??(.*)$")
  forms_of((authority:match("^(.*)@") or ""):match("^[^:]*:(.*)$"), out)
  for key, value in query:gmatch("([^&=]*)=([^&]*)") do
    if unescape(key) == "password" then forms_of(value, out) end
  end
  return out
end

-- The connection URL may hold a password: messages name the database kind
-- only, never the URL, and no part of a password survives in what the
-- driver said, on any path (connect, statements, commit).
local function db_error(what, msg, secrets)
  msg = tostring(msg):gsub("^LuaSQL: ", "")
  return errors.new("database", what .. ": " .. redact.parts(msg, secrets or {}))
end

-- Neither driver's escape survives a NUL byte (SQLite's stops at it,
-- PostgreSQL's text cannot hold it), so it becomes U+FFFD.
local function quote_string(conn, s)
  if s:find("\0", 1, true) then s = s:gsub("%z", "\239\191\189") end
  return "'" .. conn:escape(s) .. "'"
end

local function quote_number(v)
  if v ~= v or v == huge or v == -huge then return "NULL" end
  local i = tointeger and tointeger(v)
  if i then return format("%d", i) end
  if v == floor(v) and v > -2^53 and v < 2^53 then return format("%.0f", v) end
  return format("%.17g", v)
end

--- The SQL literal for a Lua value.
function Db:quote(v)
  local t = type(v)
  if v == nil then return "NULL" end
  if t == "string" then return quote_string(self._conn, v) end
  if t == "number" then return quote_number(v) end
  if t == "boolean" then
    if self.kind == "sqlite" then return v and "1" or "0" end
    return v and "TRUE" or "FALSE"
  end
  return nil, "cannot store a " .. t .. " in SQL"
end

-- `sql` with each `?` replaced by the next argument as a literal; a `?`
-- inside a quoted literal of the template is left alone.
function Db:render(sql, ...)
  local n = select("#", ...)
  if n == 0 then return sql end
  local args, i, bad = { ... }, 0, nil
  local parts, pos, len = {}, 1, #sql
  while pos <= len do
    local c = sql:sub(pos, pos)
    if c == "'" then
      local close = sql:find("'", pos + 1, true) or len
      parts[#parts + 1] = sql:sub(pos, close)
      pos = close + 1
    elseif c == "?" then
      i = i + 1
      local lit, msg = self:quote(args[i])
      if not lit then bad = msg end
      parts[#parts + 1] = lit or "NULL"
      pos = pos + 1
    else
      local stop = sql:find("['?]", pos) or len + 1
      parts[#parts + 1] = sql:sub(pos, stop - 1)
      pos = stop
    end
  end
  if bad then return nil, bad end
  if i ~= n then return nil, format("%d placeholders for %d values", i, n) end
  return table.concat(parts)
end

local function as_count(v)
  if type(v) ~= "number" then return 0 end
  return tointeger and tointeger(v) or v
end

-- Renders and executes `sql`: LuaSQL's result (a count or a cursor), or nil and an error.
local function run(self, sql, ...)
  local text, msg = self:render(sql, ...)
  if not text then return nil, errors.invalid_argument(msg) end
  local res, err = self._conn:execute(text)
  if res == nil then return nil, db_error(self.kind, err, self._secrets) end
  return res
end

--- Runs one statement; returns the number of rows it changed.
-- @treturn[1] integer
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `database`
function Db:exec(sql, ...)
  local res, err = run(self, sql, ...)
  if res == nil then return nil, err end
  if type(res) == "number" then return as_count(res) end
  res:close()
  return 0
end

--- Runs a query; returns its rows as an array of tables keyed by column
-- name (PostgreSQL gives every value as a string, SQLite as stored).
function Db:rows(sql, ...)
  local cur, err = run(self, sql, ...)
  if cur == nil then return nil, err end
  local out = {}
  if type(cur) == "number" then return out end
  while true do
    local row = cur:fetch({}, "a")
    if not row then break end
    out[#out + 1] = row
  end
  cur:close()
  return out
end

-- Rows a PostgreSQL cursor hands over at a time in `each`.
local FETCH = 5000

--- Runs a query and calls `fn(row)` for each row as it is read, so a
-- million rows are never held at once: SQLite steps its statement;
-- PostgreSQL (whose driver would hold the whole result) reads through a
-- cursor, `FETCH` rows at a time, in a read-only transaction. Returns true,
-- or nil and an error.
function Db:each(sql, fn, ...)
  local text, msg = self:render(sql, ...)
  if not text then return nil, errors.invalid_argument(msg) end
  local function drain(cur)
    if type(cur) == "number" then return 0 end
    local n = 0
    while true do
      local row = cur:fetch({}, "a")
      if not row then break end
      n = n + 1
      fn(row)
    end
    cur:close()
    return n
  end
  if self.kind ~= "postgresql" then
    local cur, err = run(self, text)
    if cur == nil then return nil, err end
    drain(cur)
    return true
  end
  return self:transaction(function()
    local ok, err = self:exec("DECLARE ravan_each NO SCROLL CURSOR FOR " .. text)
    if not ok then return nil, err end
    while true do
      local cur
      cur, err = run(self, "FETCH FORWARD " .. FETCH .. " FROM ravan_each")
      if cur == nil then return nil, err end
      if drain(cur) < FETCH then break end
    end
    return self:exec("CLOSE ravan_each")
  end)
end

function Db:begin()
  return self:exec(self.kind == "sqlite" and "BEGIN IMMEDIATE" or "BEGIN")
end

function Db:commit()
  return self:exec("COMMIT")
end

function Db:rollback()
  return self:exec("ROLLBACK")
end

--- Runs `fn(db)` in a transaction: committed when it returns a true value,
-- rolled back when it returns `nil, err` or raises.
function Db:transaction(fn)
  local ok, err = self:begin()
  if not ok then return nil, err end
  local pok, res, ferr = pcall(fn, self)
  if pok and res then
    ok, err = self:commit()
    if ok then return res end
    self:rollback()
    return nil, err
  end
  self:rollback()
  if not pok then return nil, db_error(self.kind, res, self._secrets) end
  return nil, ferr
end

--- Inserts `rows` (arrays of values in `cols` order) into `tbl`, updating
-- the row with the same `key` (a column, or several: `"a, b"`) when one
-- exists, and only when some column differs. Returns how many rows were
-- written (inserted or changed).
-- Duplicate keys within `rows` must be removed by the caller.
function Db:upsert(tbl, cols, key, rows)
  if #rows == 0 then return 0 end
  local values = {}
  for r = 1, #rows do
    local row, lits = rows[r], {}
    for c = 1, #cols do
      local lit, msg = self:quote(row[c])
      if not lit then return nil, errors.invalid_argument(cols[c] .. ": " .. msg) end
      lits[c] = lit
    end
    values[r] = "(" .. table.concat(lits, ",") .. ")"
  end
  local keyed = {}
  for name in key:gmatch("[^,%s]+") do keyed[name] = true end
  local set, old, new = {}, {}, {}
  for c = 1, #cols do
    local name = cols[c]
    if not keyed[name] then
      set[#set + 1] = name .. " = excluded." .. name
      old[#old + 1] = tbl .. "." .. name
      new[#new + 1] = "excluded." .. name
    end
  end
  local sql = "INSERT INTO " .. tbl .. " (" .. table.concat(cols, ", ") .. ") VALUES "
    .. table.concat(values, ",")
  if #set == 0 then
    sql = sql .. " ON CONFLICT (" .. key .. ") DO NOTHING"
  else
    local differs = self.kind == "sqlite" and " IS NOT " or " IS DISTINCT FROM "
    sql = sql .. " ON CONFLICT (" .. key .. ") DO UPDATE SET " .. table.concat(set, ", ")
      .. " WHERE (" .. table.concat(old, ", ") .. ")" .. differs
      .. "(" .. table.concat(new, ", ") .. ")"
  end
  local res, err = self._conn:execute(sql)
  if res == nil then return nil, db_error(self.kind, err, self._secrets) end
  return as_count(res)
end

function Db:close()
  local conn, env = self._conn, self._env
  if conn then
    self._conn, self._env = nil, nil
    conn:close()
    env:close()
  end
end
Db.__close = Db.close

function Db:__tostring()
  return "ravan.sync.db (" .. self.kind .. (self._conn and "" or ", closed") .. ")"
end

-- Per database kind: the LuaSQL driver, its Debian package, and what every
-- new connection runs first.
local DRIVERS = {
  sqlite = { driver = "sqlite3", package = "lua-sql-sqlite3", setup = {
    -- busy_timeout first: it lets two syncs on one file wait for each other,
    -- and switching a new file to WAL is the first thing they contend for.
    -- WAL with synchronous NORMAL: a committed transaction survives a killed
    -- process.
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
  } },
  postgresql = { driver = "postgres", package = "lua-sql-postgres", setup = {
    "SET client_min_messages = warning",
    -- Times without a zone are UTC, as the API's are.
    "SET TIME ZONE 'UTC'",
  } },
}

-- `target` is what the driver's connect takes: a file path for SQLite, and
-- for PostgreSQL the whole URI (libpq takes one where a database name goes).
local function connect(kind, target)
  local d = DRIVERS[kind]
  local ok, luasql = pcall(require, "luasql." .. d.driver)
  if not ok then
    return nil, errors.invalid_argument("db: " .. kind .. " needs LuaSQL's " .. d.driver
      .. " driver (Debian: " .. d.package .. ")")
  end
  local secrets = kind == "postgresql" and secrets_of(target) or {}
  local env = luasql[d.driver]()
  local conn, err = env:connect(target)
  if not conn then
    env:close()
    -- libpq's message may quote the URI: keep its first line, minus URIs.
    local msg = tostring(err):gsub("postgres%w*://%S*", "postgresql://..."):match("^[^\n]*")
    return nil, db_error(kind, msg, secrets)
  end
  local self = setmetatable({ kind = kind, _conn = conn, _env = env, _secrets = secrets }, Db)
  for i = 1, #d.setup do
    local done, serr = self:exec(d.setup[i])
    if not done then
      self:close()
      return nil, serr
    end
  end
  return self
end

--- Opens a database: `"sqlite:PATH"` (a file, made when missing) or a
-- `postgresql://` / `postgres://` URI as libpq takes it (e.g.
-- `postgresql://user@/dbname?host=/run/postgresql`).
-- @treturn[1] Db
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `invalid_argument` or `database`
function M.open(url)
  if type(url) ~= "string" or url == "" then
    return nil, errors.invalid_argument("db must be \"sqlite:PATH\" or a postgresql:// URL")
  end
  local path = url:match("^sqlite:(.+)$")
  if path then return connect("sqlite", (path:gsub("^//", ""))) end
  if url:find("^postgres://") or url:find("^postgresql://") then
    return connect("postgresql", url)
  end
  return nil, errors.invalid_argument("db must be \"sqlite:PATH\" or a postgresql:// URL")
end

return M
