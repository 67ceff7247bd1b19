-- read.lua — GET one resource by id (BENCH_PATH) on every request.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("BENCH_PATH")
function request()
  return wrk.format("GET", path, headers)
end
