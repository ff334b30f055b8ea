-- PostgreSQL URLs whose password libpq cannot percent-decode, so that its message quotes it, and
-- the check that none of a password reaches a message: shared by the sync's specs through
-- client:sync and through the CLI.
local M = {}

-- Nothing listens on the port: libpq fails on the URL before it connects.
M.cases = {
  { "50%offS3cret", "postgresql://u:50%offS3cret@127.0.0.1:45871/calls" },
  { "Pw%2G9secret", "postgresql://u:Pw%2G9secret@127.0.0.1:45871/calls" },
  { "Wr0ngSecret%", "postgresql://u@127.0.0.1:45871/calls?password=Wr0ngSecret%" },
}

-- The first part of `password` at least 4 characters long found in `text`, or nil.
function M.leaked(password, text)
  for i = 1, #password - 3 do
    local part = password:sub(i, i + 3)
    if text:find(part, 1, true) then return part end
  end
end

return M
