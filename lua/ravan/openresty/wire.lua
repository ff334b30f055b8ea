--- The HTTP/1.1 response reader of `ravan.openresty`: a status line, headers and a body by
-- Content-Length, chunks or the connection's end, read from a cosocket against a deadline.
--
-- Whatever the server sends, it returns values, never raises: a failure is nil, the transport's
-- error kind (`network`, `timeout`, `too_large`) and a message. The limits are the C
-- transport's, so both transports give a hostile answer the same kind: a header line of
-- `core.LIMITS.header_bytes` (libcurl's limit) or more is `too_large`, as is a body over
-- `max_response_bytes`; bytes that are not HTTP are `network`.
-- @module ravan.openresty.wire

local core = require "ravan.core"

local M = {}

local now = core.now
local max, floor = math.max, math.floor
local concat = table.concat
local tonumber = tonumber

local HEADER_BYTES = core.LIMITS.header_bytes

-- Responses are read through a buffer: the head in blocks of whatever has arrived (one read
-- usually brings the head and a small body together), the rest of the body after it.
local BLOCK = 16384

-- A chunk size takes at most this many hex digits, as in libcurl: more is not a size.
local MAX_HEX = 16

local TOO_LARGE = "response body larger than max_response_bytes"
local LONG_LINE = ("response header line of %d KiB or more (the limit libcurl also keeps)")
  :format(floor(HEADER_BYTES / 1024))
local LONG_HEAD = "response headers larger than max_response_bytes"

-- read_line's error for a line that reaches the limit without its CRLF.
local TOO_LONG = {}

--- Sets the socket's timeout for the next step: the time left, and for reads also the stall
-- limit (curl's low_speed_time in spirit: no byte for that long means the link is dead).
-- A cosocket's timeout bounds each wait for data, not an operation, so a server dribbling
-- bytes would outlast it: reads go in pieces, and each piece checks the clock again.
-- @return false when no time is left
function M.arm(sock, until_t, cap)
  local left = until_t - now()
  if left <= 0 then return false end
  if cap and cap < left then left = cap end
  sock:settimeout(max(1, floor(left * 1000)))
  return true
end

local arm = M.arm

local function read_error(err, what)
  if err == "timeout" then return nil, "timeout", "timed out reading the " .. what end
  return nil, "network", (err == "closed" and "connection closed" or err)
    .. " while reading the " .. what
end

--- A reader of the response on `sock`, to be read until `until_t` (monotonic), each wait for
-- data at most `stall` seconds.
function M.reader(sock, until_t, stall)
  return { sock = sock, buf = "", until_t = until_t, stall = stall }
end

-- Appends what arrives next to the buffer; nil and the error when nothing.
local function fill(r)
  if not arm(r.sock, r.until_t, r.stall) then return nil, "timeout" end
  local data, err = r.sock:receiveany(BLOCK)
  if not data then return nil, err end
  r.buf = r.buf .. data
  return true
end

-- Up to the next line end (taken off), or nil and the error (TOO_LONG for a line that would
-- reach `limit` bytes with its CRLF). As libcurl does, a bare LF ends a line too.
local function read_line(r, limit)
  local from = 1
  while true do
    local buf = r.buf
    local i = buf:find("\n", from, true)
    if i then
      if i >= limit then return nil, TOO_LONG end
      r.buf = buf:sub(i + 1)
      local j = i - 1
      if buf:byte(j) == 13 then j = j - 1 end
      return buf:sub(1, j)
    end
    if #buf + 1 >= limit then return nil, TOO_LONG end
    from = #buf + 1
    local ok, err = fill(r)
    if not ok then return nil, err end
  end
end

-- Exactly n bytes, or nil, the error and how many came.
local function read_bytes(r, n)
  local buf = r.buf
  if #buf >= n then
    r.buf = buf:sub(n + 1)
    return buf:sub(1, n)
  end
  local parts, got = { buf }, #buf
  r.buf = ""
  while got < n do
    if not arm(r.sock, r.until_t, r.stall) then return nil, "timeout", got end
    local data, err = r.sock:receiveany(n - got)
    if not data then return nil, err, got end
    parts[#parts + 1] = data
    got = got + #data
  end
  return concat(parts)
end

--- The status line and headers up to the blank line: status, the HTTP/1.x minor version and the
-- headers (lower-case names, first value); or nil, an error kind, a message and whether
-- nothing at all came. The head as a whole may take `limit` bytes.
function M.read_head(r, limit)
  local fresh = r.buf == "" and not r.seen
  local line, err = read_line(r, HEADER_BYTES)
  if not line then
    if err == TOO_LONG then return nil, "too_large", LONG_LINE end
    if fresh and r.buf == "" and err ~= "timeout" then
      return nil, "network", "empty reply from server (" .. err .. ")", true
    end
    return read_error(err, "headers")
  end
  r.seen = true
  local version, status = line:match("^HTTP/1%.(%d) ([1-9]%d%d)")
  if not status then return nil, "network", "not an HTTP/1.x response" end
  local headers, size = {}, #line + 2
  while true do
    line, err = read_line(r, HEADER_BYTES)
    if not line then
      if err == TOO_LONG then return nil, "too_large", LONG_LINE end
      return read_error(err, "headers")
    end
    if line == "" then break end
    size = size + #line + 2
    if size > limit then return nil, "too_large", LONG_HEAD end
    local name, value = line:match("^([^:]*):[ \t]*(.-)[ \t]*$")
    if name then
      name = name:lower()
      if headers[name] == nil then headers[name] = value end
    elseif not line:find("^[ \t]") then
      -- A folded line continues a value we need not read; a line that is neither is no HTTP.
      return nil, "network", "response header line without a colon"
    end
  end
  return tonumber(status), version, headers
end

-- The size of a chunk from its size line (extensions after the digits are ignored), or nil
-- when the line has none. As libcurl: at most 16 hex digits, and a size that fits a signed
-- 64-bit integer.
local function chunk_size(line)
  local hex = line:match("^%x+")
  if not hex or #hex > MAX_HEX then return nil end
  hex = hex:match("^0*(.*)$")
  if #hex == MAX_HEX and hex:byte() > 55 then return nil end
  -- Digits past 13 would not fit a double exactly (nor, at 16, Lua 5.4's integer); such a
  -- size is over any max_response_bytes anyway.
  if #hex > 13 then return math.huge end
  return tonumber(hex, 16) or 0
end

local function read_chunked(r, limit)
  local parts, total = {}, 0
  while true do
    local line, err = read_line(r, HEADER_BYTES)
    if not line then
      if err == TOO_LONG then return nil, "network", "malformed chunk size in the response" end
      return read_error(err, "chunked body")
    end
    local size = chunk_size(line)
    if not size then return nil, "network", "malformed chunk size in the response" end
    if size == 0 then
      -- Trailers are header lines, and count toward the body's limit.
      repeat
        line, err = read_line(r, HEADER_BYTES)
        if not line then
          if err == TOO_LONG then return nil, "too_large", LONG_LINE end
          return read_error(err, "chunked body")
        end
        total = total + #line + 2
        if total > limit then return nil, "too_large", TOO_LARGE end
      until line == ""
      return concat(parts), r.buf == ""
    end
    total = total + size
    if total > limit then return nil, "too_large", TOO_LARGE end
    local data
    data, err = read_bytes(r, size)
    if not data then return read_error(err, "chunked body") end
    parts[#parts + 1] = data
    -- The chunk's data ends its line.
    line, err = read_line(r, 3)
    if line ~= "" then
      if line or err == TOO_LONG then return nil, "network", "malformed chunk in the response" end
      return read_error(err, "chunked body")
    end
  end
end

--- The body by Content-Length, chunks or the connection's end, at most `limit` bytes: body,
-- whether the connection may be reused; or nil, an error kind and a message.
function M.read_body(r, headers, limit)
  local te = headers["transfer-encoding"]
  if te and te:lower():find("chunked", 1, true) then return read_chunked(r, limit) end
  local length = headers["content-length"]
  if length then
    local n = tonumber(length:match("^%d+$"))
    if not n then return nil, "network", "malformed Content-Length in the response" end
    if n > limit then return nil, "too_large", TOO_LARGE end
    local data, err, got = read_bytes(r, n)
    if not data then
      if err == "closed" then
        return nil, "network", "transfer closed with " .. (n - got) .. " bytes remaining to read"
      end
      return read_error(err, "body")
    end
    -- Bytes past the body answer nothing we asked: the connection is not reused.
    return data, r.buf == ""
  end
  -- Neither: the body ends when the server closes the connection.
  local parts, total = { r.buf }, #r.buf
  while true do
    if total > limit then return nil, "too_large", TOO_LARGE end
    if not arm(r.sock, r.until_t, r.stall) then return read_error("timeout", "body") end
    local data, err = r.sock:receiveany(limit - total + 1)
    if not data then
      if err == "closed" then return concat(parts), false end
      return read_error(err, "body")
    end
    total = total + #data
    parts[#parts + 1] = data
  end
end

return M
