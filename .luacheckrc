-- `make lint`: luacheck over the Lua of the project. Lua 5.1 to 5.4 and LuaJIT share one source,
-- so the standard is their union; ngx exists only inside nginx.
std = "max"
max_line_length = 130
codes = true
globals = { "ngx" }
read_globals = { "jit" }
files["spec"] = { std = "+busted" }
-- The engines' APIs: LÖVE's callbacks are fields the game sets on `love`; Luanti's mods read
-- `minetest` and `core`.
files["examples/love"] = { globals = { "love" } }
files["examples/luanti"] = { read_globals = { "minetest", "core" } }
