-- update.lua — PUT a new version of one of BENCH_PRELOAD preloaded Patients
-- (ids bench-0 .. bench-N-1), a different id on every request.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local count = tonumber(os.getenv("BENCH_PRELOAD") or "1000")
local hdrs
local n = 0
function init(args)
  hdrs = json_headers()
end
function request()
  n = n + 1
  local id = "bench-" .. ((tid * 7919 + n) % count)
  local body = string.format('{"resourceType":"Patient","id":"%s","active":true,' ..
    '"name":[{"family":"Bench","given":["U%d-%d"]}]}', id, tid, n)
  return wrk.format("PUT", "/fhir/Patient/" .. id, hdrs, body)
end
