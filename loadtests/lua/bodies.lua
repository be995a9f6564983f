-- POST bodies taken in turn from a pre-generated file (one JSON document a line), so the key
-- distribution is the file's. CG_BODIES names the file, CG_AUTH the API key (may be empty).
-- Each request is formatted once, at start: formatting per request cost the load generator
-- as much CPU as a small server, on the cores the servers need.
local requests = {}
local n = 0
local idx = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("CG_AUTH")
  if auth ~= nil and auth ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. auth
  end
  local f = assert(io.open(os.getenv("CG_BODIES"), "r"))
  for line in f:lines() do
    n = n + 1
    requests[n] = wrk.format(nil, nil, nil, line)
  end
  f:close()
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  idx = math.random(n) - 1
end

function request()
  idx = idx % n + 1
  return requests[idx]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'CGRESULT {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
