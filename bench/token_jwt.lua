-- token_jwt.lua — POST /auth/token, client_credentials with private_key_jwt (SMART Backend
-- Services): each request carries the next unused client assertion of BENCH_ASSERTIONS (one
-- JWT per line, unique jti each: the server refuses a replay), split between the wrk threads.
-- Once a thread runs out it repeats its last assertion, which the server refuses (400): such
-- requests show up as non-2xx in the RESULT line, never as issued tokens.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Accept"] = "application/json" }
local prefix = "grant_type=client_credentials&client_assertion_type=" ..
  "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
local mine, i = {}, 0

function init(args)
  local n = 0
  for line in io.lines(os.getenv("BENCH_ASSERTIONS")) do
    if n % nthreads == tid then mine[#mine + 1] = line end
    n = n + 1
  end
end

function request()
  i = i + 1
  return wrk.format("POST", "/auth/token", hdrs, prefix .. (mine[i] or mine[#mine]))
end
