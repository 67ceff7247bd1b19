-- common.lua — shared by the wrk scripts of bench/run.sh: the bearer token,
-- per-thread numbering, and one machine-readable RESULT line per run:
--   RESULT name req_per_s p50_ms p99_ms requests non2xx socket_errors
-- (no response() hook: it would cost client CPU on a machine the server shares).
-- Environment: BENCH_TOKEN (access token, empty for nginx), BENCH_NAME.
local token = os.getenv("BENCH_TOKEN") or ""
headers = { ["Accept"] = "application/fhir+json" }
if token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end

-- the headers of a request with a FHIR JSON body (each script's init: json_headers())
function json_headers()
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  h["Content-Type"] = "application/fhir+json"
  return h
end

local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT %s %.1f %.3f %.3f %d %d %d\n", os.getenv("BENCH_NAME") or "?",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
