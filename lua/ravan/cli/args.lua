-- What the commands share about their words: reading the command line,
-- echoing what the user typed safely, and the one-line error.

local validate = require "ravan.validate"

local M = {}

-- The longest echo of a typed value: enough to recognise it, not a screenful.
local MAX_ECHO = 40

-- Text from the command line or a server, made safe for a terminal:
-- control characters (escape sequences included) become visible `\27`s,
-- so neither a typo nor a record can drive the terminal.
local function printable(s)
  return (tostring(s):gsub("%c", function(c) return "\\" .. c:byte() end))
end
M.printable = printable

-- A typed value quoted back: printable, and cut short (visibly) when long.
local function quoted(s)
  return "'" .. printable(validate.excerpt(s, MAX_ECHO)) .. "'"
end
M.quoted = quoted

-- `names`: the command's flags, for the did-you-mean.
function M.unknown_option(a, names)
  local name = a:match("^(%-%-?[^=]*)")
  local shown = "unknown option " .. quoted(a)
  local best = validate.suggestion(name, names)
  return best and shown .. " (did you mean " .. best .. "?)" or shown
end

-- Every flag of `spec`, sorted, for the did-you-mean.
local function names_of(spec)
  local names = {}
  for name in pairs(spec.flags) do names[#names + 1] = name end
  for name in pairs(spec.valued) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- Reads `args` by `spec`: `flags` maps a flag to the option it sets to
-- true, or to a function(o) returning a usage message or nil; `valued`
-- maps a flag to a function(o, value, flag) that takes its value (nil when
-- missing) and returns a usage message or nil; `positional(o, word)` takes
-- any other word likewise. `--flag=value` and `--flag value` are the same.
-- Returns the options, or nil and a usage message.
function M.parse(args, spec)
  spec.names = spec.names or names_of(spec)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local flag, valued, msg = spec.flags[name], spec.valued[name], nil
    if flag and value == nil then
      if type(flag) == "function" then msg = flag(o) else o[flag] = true end
    elseif valued then
      if value == nil then
        i = i + 1
        value = args[i]
      end
      msg = valued(o, value, name)
    elseif a:find("^%-") then
      msg = M.unknown_option(a, spec.names)
    else
      msg = spec.positional(o, a)
    end
    if msg then return nil, msg end
    i = i + 1
  end
  return o
end

--- A `valued` handler for a whole number, kept in `o[field]`. Its range is
-- the library's to check, so a negative number is refused in the same words
-- as 0 (`--page must be an integer from 1 ...`).
function M.integer(field)
  return function(o, value, name)
    local n = value and value:find("^%-?%d+$") and tonumber(value)
    if not n then return name .. " needs a whole number" end
    o[field] = n
  end
end

--- The line for output that could not be written (`out`: an `output.checked`
-- stream, which keeps the error); returns the exit status, 1.
function M.write_failed(stderr, program, out)
  stderr:write(program, ": cannot write the output: ", printable(out.err), "\n")
  return 1
end

--- Flushes `out` (an `output.checked` stream) and returns the exit status:
-- 0, or 1 once the line saying the output could not be written is out.
function M.flushed(stderr, program, out)
  return out:flush() and 0 or M.write_failed(stderr, program, out)
end

--- A `valued` handler that keeps a non-empty value in `o[field]`.
function M.nonempty(field)
  return function(o, value, name)
    if value == nil or value == "" then return name .. " needs a value" end
    o[field] = value
  end
end

--- A `positional` handler for commands whose other words are phones: each
-- is kept, in order, in `o.phones` (the library checks them).
function M.phone_word(o, a)
  o.phones = o.phones or {}
  o.phones[#o.phones + 1] = a
end

--- The usage error: one line, with where to look.
function M.usage_error(stderr, program, msg)
  stderr:write(program, ": ", msg, " (see '", program, " --help')\n")
  return 2
end

--- The opening of every command's `main`: reads `argv` by `command.parse`,
-- and answers a usage error, or --help with `command.USAGE` on `out` (an
-- `output.checked` stream, so that help nobody could read fails like any
-- other output). Returns the options, or nil and the exit status.
function M.opening(command, program, argv, out, stderr)
  local o, msg = command.parse(argv)
  if not o then return nil, M.usage_error(stderr, program, msg) end
  if o.help then
    out:write(command.USAGE)
    return nil, M.flushed(stderr, program, out)
  end
  return o
end

--- The error line: the library's own words without its "ravan: " prefix
-- (this line has the program's), and an invalid argument in terms of what
-- the user typed rather than the Lua fields it became: `words` maps a field
-- to its flag (`page_size` to `--page-size`), and a list field's item
-- (`phones[2]`) is named by the list's word and the position (`PHONE 2`).
function M.fail(stderr, err, program, words)
  if err.kind == "invalid_argument" then
    local message = tostring(err.message)
    local field, index, rest = message:match("^([%w_]+)%[(%d+)%](.*)$")
    if field and words[field] then
      message = words[field] .. " " .. index .. rest
    else
      field, rest = message:match("^([%w_]+)(.*)$")
      if field and words[field] then message = words[field] .. rest end
    end
    -- The command line has no api_key or token option: only the environment gives a credential.
    message = message:gsub("give api_key or token, or set ", "set ", 1)
    stderr:write(program, ": ", printable(message), "\n")
    return 2
  end
  stderr:write(program, ": ", (tostring(err):gsub("^ravan: ", "")), "\n")
  return 1
end

return M
