-- Reads the 8-bit RGB and RGBA PNGs the host specs get from the engines' screenshots, so a spec
-- can look at pixels. lua-zlib inflates; the rest is the format's five row filters.
local zlib = require "zlib"

local M = {}

local function u32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Returns an image with `width`, `height` and `pixel(x, y)` -> r, g, b (0-based, top left), or
-- nil and why.
function M.read(data)
  if data:sub(1, 8) ~= "\137PNG\r\n\26\n" then return nil, "not a PNG" end
  local pos, idat, width, height, channels = 9, {}, nil, nil, nil
  while pos <= #data do
    local len, kind = u32(data, pos), data:sub(pos + 4, pos + 7)
    local body = data:sub(pos + 8, pos + 7 + len)
    if kind == "IHDR" then
      width, height = u32(body, 1), u32(body, 5)
      local depth, colour, interlace = body:byte(9), body:byte(10), body:byte(13)
      channels = ({ [2] = 3, [6] = 4 })[colour]
      if depth ~= 8 or not channels or interlace ~= 0 then
        return nil, ("unsupported PNG: depth %d, colour type %d, interlace %d"):format(depth, colour,
          interlace)
      end
    elseif kind == "IDAT" then
      idat[#idat + 1] = body
    end
    pos = pos + 12 + len
  end
  if not width then return nil, "no IHDR" end
  local raw = zlib.inflate()(table.concat(idat))
  local stride = width * channels
  if #raw ~= height * (stride + 1) then return nil, "IDAT holds " .. #raw .. " bytes" end

  local rows, prev = {}, {}
  for x = 1, stride do prev[x] = 0 end
  for y = 1, height do
    local base = (y - 1) * (stride + 1) + 1
    local filter, row = raw:byte(base), { raw:byte(base + 1, base + stride) }
    for x = 1, stride do
      local a = x > channels and row[x - channels] or 0
      local b, c = prev[x], x > channels and prev[x - channels] or 0
      local add = 0
      if filter == 1 then
        add = a
      elseif filter == 2 then
        add = b
      elseif filter == 3 then
        add = math.floor((a + b) / 2)
      elseif filter == 4 then
        local p = a + b - c
        local pa, pb, pc = math.abs(p - a), math.abs(p - b), math.abs(p - c)
        add = (pa <= pb and pa <= pc) and a or (pb <= pc and b or c)
      end
      row[x] = (row[x] + add) % 256
    end
    rows[y], prev = row, row
  end

  return {
    width = width,
    height = height,
    pixel = function(x, y)
      local row, i = rows[y + 1], x * channels
      return row[i + 1], row[i + 2], row[i + 3]
    end,
  }
end

return M
