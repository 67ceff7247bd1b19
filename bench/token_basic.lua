-- token_basic.lua — POST /auth/token, client_credentials with client_secret_basic
-- (BENCH_BASIC = the Authorization header value): one Argon2id verification per request.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Accept"] = "application/json",
  ["Authorization"] = os.getenv("BENCH_BASIC") }
function request()
  return wrk.format("POST", "/auth/token", hdrs, "grant_type=client_credentials")
end
