-- Makes nginx close the current client connection with a TCP RST instead of
-- a FIN. Neither nginx nor ngx_lua expose SO_LINGER, so this finds the
-- connection's socket by its address pair and sets a zero linger on it
-- (Linux semantics: close() then aborts the connection with RST).
local ffi = require "ffi"
local bit = require "bit"

ffi.cdef [[
struct ravan_mock_sockaddr_in { uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8]; };
struct ravan_mock_linger { int l_onoff; int l_linger; };
int getpeername(int fd, void *addr, uint32_t *len);
int getsockname(int fd, void *addr, uint32_t *len);
int setsockopt(int fd, int level, int name, const void *val, uint32_t len);
]]

local C = ffi.C
local AF_INET, SOL_SOCKET, SO_LINGER = 2, 1, 13
local MAX_FD = 16384

local M = {}

local function port(sa)
    return bit.bor(bit.lshift(bit.band(sa.port, 0xff), 8), bit.rshift(sa.port, 8))
end

-- Arms a zero linger on this request's client socket; returns true if found.
-- The caller then closes the connection (ngx.exit(444)).
function M.arm()
    local remote, server = tonumber(ngx.var.remote_port), tonumber(ngx.var.server_port)
    local peer = ffi.new("struct ravan_mock_sockaddr_in")
    local own = ffi.new("struct ravan_mock_sockaddr_in")
    local len = ffi.new("uint32_t[1]")
    for fd = 3, MAX_FD do
        len[0] = ffi.sizeof(peer)
        if C.getpeername(fd, peer, len) == 0 and peer.family == AF_INET and port(peer) == remote then
            len[0] = ffi.sizeof(own)
            if C.getsockname(fd, own, len) == 0 and port(own) == server then
                local linger = ffi.new("struct ravan_mock_linger", 1, 0)
                return C.setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, ffi.sizeof(linger)) == 0
            end
        end
    end
    return false
end

return M
