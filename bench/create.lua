-- create.lua — POST a new Patient on every request (durable create).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local hdrs
local n = 0
function init(args)
  hdrs = json_headers()
end
function request()
  n = n + 1
  local body = string.format('{"resourceType":"Patient","active":true,"name":[{"family":"Bench","given":["C%d-%d"]}],' ..
    '"gender":"female","birthDate":"1980-01-%02d"}', tid, n, n % 28 + 1)
  return wrk.format("POST", "/fhir/Patient", hdrs, body)
end
