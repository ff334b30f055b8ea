-- A LuaRocks configuration for installing ravan where lua-cjson is already there but is no rock
-- (Debian's and Ubuntu's `lua-cjson` package, OpenResty's bundled copy): it tells LuaRocks so,
-- and `luarocks make` then neither tries to download lua-cjson nor reports it missing. For one
-- command, from the checkout:
--
--   LUAROCKS_CONFIG=luarocks-provided.lua luarocks --lua-version=5.4 make
--
-- It stands in for ~/.luarocks/config-5.x.lua during that command; /etc/luarocks still applies.
rocks_provided = { ["lua-cjson"] = "2.1.0-1" }
