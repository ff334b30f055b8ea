--- The lazy pager behind `client:pages` and `client:calls`.
--
-- A page is requested only when the loop needs it, except that with
-- `prefetch = N` the client's prefetcher (on the plain client, its engine)
-- keeps up to N following pages in flight once total_count is known. Pages
-- are taken back in order, so they are yielded in order whatever order they
-- arrive in, and at most N+1 are held: the one the loop works on and N in
-- flight. Every page goes through the client's own result -> page path.
-- Inside a task of the client, waiting for a page suspends the task.
-- The calls it makes into a client and its prefetcher are listed in
-- lua/ravan/surface.lua.
--
-- Iteration ends when the pages cover total_count, on an empty or short
-- page, at `limit`, or on a page with nothing new (a server ignoring
-- `page`), so a server misreporting total_count cannot make it loop.
-- @module ravan.pager

local defaults = require "ravan.defaults"
local validate = require "ravan.validate"
local errors = require "ravan.errors"
local idwindow = require "ravan.pager.idwindow"

require("ravan.interpreted")()
local M = {}

M.MAX_PREFETCH = 16

local ceil, huge = math.ceil, math.huge

-- The query's keys plus the pager's own, checked in one pass, so an unknown
-- key is named against all of them.
local OWN = {
  { "limit", validate.integer_in(1, validate.INT_MAX) },
  { "prefetch", validate.integer_in(0, M.MAX_PREFETCH), defaults.pager.prefetch },
}
local SCHEMA = {}
for i = 1, #validate.QUERY do SCHEMA[i] = validate.QUERY[i] end
for i = 1, #OWN do SCHEMA[#SCHEMA + 1] = OWN[i] end

local Pager = {}
Pager.__index = Pager

local function misuse(name)
  return errors.misuse("pager", name, "")
end

-- Returns the prepared core query and the pager options, or nil and err.
local function parse(client, q)
  local query, err = client:_prepare(q, SCHEMA)
  if not query then return nil, err end
  local opts = { limit = query.limit, prefetch = query.prefetch }
  query.limit, query.prefetch = nil, nil
  if query.page_size == nil then query.page_size = defaults.pager.page_size end
  return query, opts
end

-- The last page worth requesting: the one total_count implies, or fewer
-- when `limit` needs fewer, counting every page not yet accepted as full.
local function last_needed(self)
  local last = self._last
  local limit = self._limit
  if limit then
    local by_limit = self._page - 1 + ceil((limit - self._accepted) / self._size)
    if by_limit < last then last = by_limit end
  end
  return last
end

-- The prefetcher, unless the client was closed: closing a client closes
-- its prefetchers, and the pager then goes on (to the closed error) without.
local function live_prefetcher(self)
  local pf = self._pf
  if pf and self._client:_closed() then
    self._pf = nil
    pf:close()
    return nil
  end
  return pf
end

-- Keeps pages current+1 .. current+N wanted, within what is needed.
local function want_ahead(self, current)
  local pf = live_prefetcher(self)
  if not pf then return end
  local stop = current + self._prefetch
  local last = last_needed(self)
  if last < stop then stop = last end
  while self._next_want <= stop and pf:want(self._next_want) do
    self._next_want = self._next_want + 1
  end
end

local function close_prefetcher(self)
  local pf = self._pf
  if pf then
    self._pf = nil
    pf:close()
  end
end

local function fetch(self, p)
  local pf = live_prefetcher(self)
  if not pf then
    self._query.page = p
    return self._client:_fetch(self._query)
  end
  -- A want refused earlier (no free slot) is made now: a take freed one.
  if self._next_want <= p then want_ahead(self, p - 1) end
  -- No result is an engine that cannot deliver (a child after fork()) or a client closed
  -- meanwhile, by a callback run while waiting.
  local res, err = pf:take(p)
  if not res then return nil, err or errors.closed() end
  -- Refill the window before decoding, so transfers overlap the decode.
  want_ahead(self, p)
  return self._client:_page_of(res)
end

local function mismatch(page, field, asked)
  return errors.new("decode", "asked for " .. field .. " " .. asked
    .. ", the server answered " .. field .. " " .. tostring(page[field]))
end

-- De-duplicates and trims page p in place, notes what it tells about the
-- end, and returns an error when the server did not answer what was asked.
local function accept(self, page, p)
  -- A different page or page size would silently skip or repeat calls.
  if page.page ~= nil and page.page ~= p then return mismatch(page, "page", p) end
  if page.page_size ~= nil and page.page_size ~= self._size then
    return mismatch(page, "page_size", self._size)
  end
  local calls = page.calls
  local raw = #calls
  local n = 0
  for i = 1, raw do
    local call = calls[i]
    local id = call.id
    -- Only a string or a number (not NaN, which no table can be indexed
    -- by, nor equal to itself) can tell two calls apart; any other id
    -- (cjson also reads NaN, objects, arrays) de-duplicates nothing.
    local kind = type(id)
    if not (kind == "string" or (kind == "number" and id == id)) then id = nil end
    if id == nil or not self._seen:has(id) then
      if id ~= nil then self._seen:add(id) end
      n = n + 1
      calls[n] = call
    end
  end
  local limit = self._limit
  if limit and self._accepted + n > limit then n = limit - self._accepted end
  for i = n + 1, raw do calls[i] = nil end
  self._accepted = self._accepted + n
  self._pages = self._pages + 1
  if page.total_count then
    self._total = page.total_count
    self._last = ceil(page.total_count / self._size)
  end
  self._done = raw < self._size or p >= self._last
    or (limit ~= nil and self._accepted >= limit) or n == 0
end

-- The next non-empty page, or nil at the end, or nil and an error.
local function next_page(self)
  if self._err then return nil, self._err end
  if self._done then return nil end
  local p = self._page
  local page, err = fetch(self, p)
  -- The log callback may have closed the pager while the page came in.
  if self._closed then return nil end
  if page then err = accept(self, page, p) end
  if err then
    self._err = err
    self:close()
    return nil, err
  end
  self._page = p + 1
  if self._done then
    -- Pages wanted past the end (a lying total_count) are cancelled now.
    self:close()
  elseif self._pf then
    -- Duplicates dropped or a grown total_count may have moved the end.
    want_ahead(self, p)
  elseif self._prefetch > 0 and page.total_count then
    self._pf = self._client:_prefetcher(self._query, self._prefetch)
    self._next_want = p + 1
    want_ahead(self, p)
  end
  if #page.calls == 0 then return nil end
  return page
end

--- What `client:pages` and `client:calls` return: the iterator of a generic
-- `for`, which raises a failure as a `ravan.errors.Error`, or an object to
-- step with `next` for code that wants no raising.
-- @type Pager

--- The next item (a page or a call), nil at the end, or nil and an error;
-- never raises. After an error it keeps returning that error.
-- @return[1] the next page or call
-- @return[2] nil at the end
-- @return[3] nil
-- @return[3] ravan.errors.Error
function Pager:next()
  if not rawequal(getmetatable(self), Pager) then return nil, misuse("next") end
  -- A closed client ends its pagers at once, calls already held included.
  local client = self._client
  if client and not self._closed and client:_closed() then
    self._err = errors.closed()
    self:close()
  end
  if self._mode == "pages" then return next_page(self) end
  local calls, i = self._current, self._i
  while not calls or i > #calls do
    local page, err = next_page(self)
    if not page then
      self._current = nil
      return nil, err
    end
    calls, i = page.calls, 1
    self._current = calls
  end
  self._i = i + 1
  return calls[i]
end

-- The generic `for` calls the pager itself; an error ends the loop by
-- raising the structured error object.
function Pager:__call()
  local item, err = self:next()
  if err then error(err, 0) end
  return item
end

--- Stops the iteration and frees transfers in flight; idempotent. Also the
-- pager's __close, so on 5.4 a `break` out of the `for` runs it at once.
-- Called from the client's `log` callback, it ends the iteration there: the
-- page then coming in is not yielded. Closing the client ends its pagers too
-- (their next step answers the closed-client error).
function Pager:close()
  if not rawequal(getmetatable(self), Pager) then return nil, misuse("close") end
  self._closed = true
  self._done = true
  self._current = nil
  close_prefetcher(self)
end
Pager.__close = Pager.close

--- Progress so far: pages received, calls accepted from them, the latest
-- total_count (nil before the first page) and pages held in the core.
-- @treturn table `pages`, `calls`, `total_count`, `pending`
function Pager:stats()
  if not rawequal(getmetatable(self), Pager) then return nil, misuse("stats") end
  local pf = live_prefetcher(self)
  return {
    pages = self._pages, calls = self._accepted, total_count = self._total,
    pending = pf and pf:pending() or 0,
  }
end

-- `mode` is "pages" or "calls". Returns the values a generic `for` takes:
-- the pager is the iterator and, for 5.4, also the to-be-closed value.
-- Bad options do not raise here: the first step reports them, so a `for`
-- raises them and :next() returns them.
function M.new(client, q, mode)
  local query, opts = parse(client, q)
  -- On failure parse's second value is the error.
  if not query then return M.failed(opts) end
  local self = setmetatable({
    _mode = mode, _client = client, _query = query, _size = query.page_size,
    _page = query.page or 1, _limit = opts.limit, _prefetch = opts.prefetch,
    _pages = 0, _accepted = 0, _last = huge,
    _seen = idwindow.new(),
  }, Pager)
  return self, nil, nil, self
end

-- A pager that only reports `err` (also ravan.pages when the default
-- client cannot be made).
function M.failed(err)
  local self = setmetatable({ _err = err, _done = true, _pages = 0, _accepted = 0 }, Pager)
  return self, nil, nil, self
end

return M
