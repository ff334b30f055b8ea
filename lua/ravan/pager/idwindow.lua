-- A bounded memory of the ids seen lately, for de-duplication over histories
-- of any length: ids are kept in two generations of `size` (the current one
-- and the one before), so at least the last `size` are always remembered and
-- memory stays flat. The pager and sync use it.

require("ravan.interpreted")()
local M = {}

-- Ids per generation when the caller names no size: a shift of this many
-- calls between two page requests is still de-duplicated.
M.SIZE = 2048

local Window = {}
Window.__index = Window

function M.new(size)
  return setmetatable({ _size = size or M.SIZE, _cur = {}, _old = {}, _n = 0 }, Window)
end

function Window:has(id)
  return self._cur[id] or self._old[id] or false
end

function Window:add(id)
  if self._n >= self._size then
    self._old, self._cur, self._n = self._cur, {}, 0
  end
  self._cur[id] = true
  self._n = self._n + 1
end

return M
