-- batch.lua — POST /fhir a batch Bundle of 100 Patient creates per request.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local hdrs
local n = 0
function init(args)
  hdrs = json_headers()
end
function request()
  n = n + 1
  local e = {}
  for i = 1, 100 do
    e[i] = string.format('{"resource":{"resourceType":"Patient","active":true,"name":[{"family":"Batch",' ..
      '"given":["B%d-%d-%d"]}]},"request":{"method":"POST","url":"Patient"}}', tid, n, i)
  end
  local body = '{"resourceType":"Bundle","type":"batch","entry":[' .. table.concat(e, ",") .. ']}'
  return wrk.format("POST", "/fhir", hdrs, body)
end
