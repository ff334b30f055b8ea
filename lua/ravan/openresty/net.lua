--- How `ravan.openresty` reaches the API: directly or through an HTTP proxy (a CONNECT tunnel
-- for https://, the absolute URL in the request line for http://), and with which client
-- certificate. The proxy is the one `ravan.validate` chose for both transports (the `proxy`
-- option, else the environment); `no_proxy` is matched here as libcurl matches it.
-- @module ravan.openresty.net

local core = require "ravan.core"
local wire = require "ravan.openresty.wire"

local M = {}

local ngx = rawget(_G, "ngx")

-- Whether `host` is one of the comma-separated names of `list`: "*" is every host, a name
-- covers itself and its subdomains (a leading dot or not), as in curl.
function M.bypassed(host, list)
  if not list then return false end
  host = host:lower():gsub("^%[(.*)%]$", "%1")
  for entry in list:gmatch("[^,%s]+") do
    entry = entry:lower():gsub("^%.", ""):gsub("^%[(.*)%]$", "%1")
    if entry == "*" or host == entry or host:sub(-#entry - 1) == "." .. entry then return true end
  end
  return false
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The route to `ep` (the endpoint's parts): nil when direct, else the proxy's host and port, the
-- Proxy-Authorization line its userinfo makes (a secret: the caller keeps it out of the client
-- table) and a tag for the pool's name that holds the credential only as a hash.
function M.route(cfg, ep)
  if not cfg.proxy or cfg.proxy == "" or M.bypassed(ep.host, cfg.no_proxy) then return nil end
  local url = core.parse_url(cfg.proxy)
  -- ravan.validate accepted it with the same parser.
  local userinfo = cfg.proxy:match("^[^:]+://([^@/]*)@")
  local auth
  if userinfo and ngx then
    local user, password = userinfo:match("^([^:]*):?(.*)$")
    auth = "Proxy-Authorization: Basic "
      .. ngx.encode_base64(unescape(user) .. ":" .. unescape(password)) .. "\r\n"
  end
  local port = url.port or 1080
  local host = url.host:gsub("^%[(.*)%]$", "%1")
  return {
    host = host, port = port, auth = auth,
    tag = " via " .. url.host .. ":" .. port
      .. (auth and (":" .. ngx.encode_base64(ngx.sha1_bin(auth))) or ""),
  }
end

-- Opens the tunnel on a new connection to the proxy: CONNECT `authority`, then a 2xx. The
-- answer's words are the proxy's own (a status), never the credential sent.
function M.connect(sock, route, authority, until_t, cfg)
  local ok, err = nil, "timeout"
  if wire.arm(sock, until_t) then
    ok, err = sock:send { "CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n",
      route.auth or "", "\r\n" }
  end
  if not ok then
    if err == "timeout" then return nil, "timeout", "timed out sending CONNECT to the proxy" end
    return nil, "network", "the proxy closed the connection: " .. err
  end
  local r = wire.reader(sock, until_t, cfg.low_speed_time)
  local status, kind, msg = wire.read_head(r, cfg.max_response_bytes)
  if not status then return nil, kind, "from the proxy: " .. msg end
  -- 407 is the standard answer; some proxies (tinyproxy 1.11) send 401 to a CONNECT.
  if status == 407 or status == 401 then
    return nil, "network", "the proxy wants credentials (HTTP " .. status .. ")"
      .. (route.auth and ": it refused the ones in proxy" or ": give them in proxy's user:password@"),
      true
  end
  if status < 200 or status > 299 then
    return nil, "network", "the proxy refused the CONNECT tunnel to " .. authority .. " (HTTP "
      .. status .. ")", true
  end
  return true
end

local function read_all(name, path)
  local f, err = io.open(path, "rb")
  if not f then return nil, name .. " cannot be opened: " .. tostring(err) end
  local text = f:read("*a")
  f:close()
  return text
end

local ffi_ready

-- OpenSSL's PEM reader, through nginx's own libcrypto, for a key under a passphrase:
-- ngx.ssl.parse_pem_priv_key takes none.
local function encrypted_key(pem, password)
  local ffi = require "ffi"
  if not ffi_ready then
    ffi.cdef [[
      typedef struct bio_st BIO;
      typedef struct evp_pkey_st EVP_PKEY;
      BIO *BIO_new_mem_buf(const void *buf, int len);
      int BIO_free(BIO *a);
      EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, void *cb, void *u);
      void EVP_PKEY_free(EVP_PKEY *pkey);
      void ERR_clear_error(void);
    ]]
    ffi_ready = true
  end
  local C = ffi.C
  local bio = C.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil end
  local pass = ffi.new("char[?]", #password + 1, password)
  local key = C.PEM_read_bio_PrivateKey(bio, nil, nil, pass)
  ffi.fill(pass, #password + 1)
  C.BIO_free(bio)
  C.ERR_clear_error()
  if key == nil then return nil end
  return ffi.gc(key, C.EVP_PKEY_free)
end

-- The client certificate and key as cosocket:setclientcert takes them, and a pool tag that
-- tells certificates apart (a hash of the certificate and of the key file); nil when none.
function M.client_cert(cfg)
  if not cfg.client_cert then
    if cfg.client_key then return nil, "client_key needs client_cert" end
    return false
  end
  local cert_pem, err = read_all("client_cert", cfg.client_cert)
  if not cert_pem then return nil, err end
  local key_pem = cert_pem
  if cfg.client_key then
    key_pem, err = read_all("client_key", cfg.client_key)
    if not key_pem then return nil, err end
  end
  if not ngx then return false end
  local ssl = require "ngx.ssl"
  local cert = ssl.parse_pem_cert(cert_pem)
  if not cert then return nil, "client_cert holds no PEM certificate" end
  local key
  if cfg.key_password then
    key = encrypted_key(key_pem, cfg.key_password)
  else
    key = ssl.parse_pem_priv_key(key_pem)
  end
  if not key then
    return nil, (cfg.client_key and "client_key" or "client_cert")
      .. " holds no PEM private key that " .. (cfg.key_password and "key_password opens" or
      "opens without a key_password")
  end
  return cert, key, " cert:" .. ngx.encode_base64(ngx.sha1_bin(cert_pem .. "\0" .. key_pem))
end

return M
