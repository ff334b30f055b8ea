-- Run by spec/openresty/prometheus_spec.lua under examples/openresty/run (the example serving
-- on RAVAN_EXAMPLE_PORT against the local server at RAVAN_BASE_URL): puts a known load through
-- the example, starts a real Prometheus in a temp dir on loopback scraping its /metrics, and
-- prints as JSON what Prometheus's HTTP API then answers.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local example = "http://127.0.0.1:" .. assert(os.getenv("RAVAN_EXAMPLE_PORT"))
local server = assert(os.getenv("RAVAN_BASE_URL"))

local function get(url)
  local chunks = {}
  local _, status = http.request { url = url, sink = ltn12.sink.table(chunks) }
  return status, table.concat(chunks)
end

local function post(url, body)
  local _, status = http.request { url = url, method = "POST", source = ltn12.source.string(body),
    headers = { ["content-type"] = "application/json", ["content-length"] = #body } }
  assert(status == 200, "control " .. url)
end

-- The load: two 503s before the first answer (2 retries), three more pages of one phone, and
-- every call of a 250-call history (3 pages): 7 calls, 9 attempts.
post(server .. "/__mock/reset", "")
post(server .. "/__mock/faults", cjson.encode { kind = "status", status = 503, count = 2 })
local statuses = {}
for page = 1, 4 do
  statuses[#statuses + 1] = get(example .. "/history?phone=%2B14155550100&page=" .. page)
end
statuses[#statuses + 1] = get(example .. "/calls?phone=%2B15550000250&limit=250")
local _, text = get(example .. "/metrics")

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

local dir = io.popen("mktemp -d"):read("*l")
local port = free_port()
local f = assert(io.open(dir .. "/prometheus.yml", "w"))
f:write(([[
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ravan
    static_configs:
      - targets: ["127.0.0.1:%s"]
]]):format(example:match(":(%d+)$")))
f:close()
local pid = io.popen(("prometheus --config.file=%s/prometheus.yml --storage.tsdb.path=%s/data"
  .. " --web.listen-address=127.0.0.1:%d >%s/prometheus.log 2>&1 & echo $!")
  :format(dir, dir, port, dir)):read("*l")
local api = "http://127.0.0.1:" .. port .. "/api/v1/"

local function query(q)
  local status, body = get(api .. "query?query=" .. q:gsub("[^%w_]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
  if status ~= 200 then return nil end
  local r = cjson.decode(body).data.result
  return r[1] and tonumber(r[1].value[2])
end

-- Until Prometheus has scraped the flushed figures (a second's flush, a second's scrape).
local out = { statuses = statuses, metrics_text = text }
for _ = 1, 300 do
  if query("ravan_requests_total") == 7 then break end
  socket.sleep(0.1)
end
for _, q in ipairs { "ravan_requests_total", "ravan_attempts_total",
    'ravan_retries_total{reason="server"}', 'ravan_errors_total{kind="server"}',
    "ravan_request_duration_seconds_count", 'ravan_request_duration_seconds_bucket{le="+Inf"}',
    "ravan_response_bytes_total", "ravan_rate_limited_total" } do
  out[q] = query(q) or cjson.null
end
local _, series = get(api .. "series?match[]=" .. ('{__name__=~"ravan_.+"}'):gsub("[^%w_]",
  function(c) return ("%%%02X"):format(c:byte()) end))
out.series = cjson.decode(series).data
os.execute("kill " .. pid .. "; while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.1; done; rm -rf " .. dir)
print(cjson.encode(out))
