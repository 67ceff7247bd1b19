-- create_obs.lua — POST a new vital-sign Observation of patient BENCH_PATIENT on every
-- request (durable create; the shape of Synthea's most common resource).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local hdrs
local n = 0
local subject = os.getenv("BENCH_PATIENT")
function init(args)
  hdrs = json_headers()
end
function request()
  n = n + 1
  local body = string.format('{"resourceType":"Observation","status":"final",' ..
    '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category",' ..
    '"code":"vital-signs","display":"vital-signs"}]}],' ..
    '"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Heart rate"},' ..
    '"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2021-%02d-%02dT10:%02d:00+00:00",' ..
    '"issued":"2021-%02d-%02dT10:%02d:00.000+00:00",' ..
    '"valueQuantity":{"value":%d,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}',
    subject, n % 12 + 1, n % 28 + 1, n % 60, n % 12 + 1, n % 28 + 1, n % 60, 50 + (tid * 7 + n) % 80)
  return wrk.format("POST", "/fhir/Observation", hdrs, body)
end
