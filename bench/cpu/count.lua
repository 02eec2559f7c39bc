-- wrk script: stops after COUNT responses (environment, per wrk thread; run wrk with -t1), then reports like
-- report.lua. Optional: BENCH_BASIC (client_secret_basic token request, as client-credentials.lua), BENCH_BEARER.
-- A fixed number of requests makes an instruction count (callgrind) comparable between two binaries.
local count = tonumber(os.getenv("COUNT") or "0")
local seen = 0

if os.getenv("BENCH_BASIC") then
  wrk.method = "POST"
  wrk.path = "/token"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
  wrk.body = "grant_type=client_credentials&scope=" .. os.getenv("BENCH_SCOPE")
end

dofile(os.getenv("BENCH_DIR") .. "/report.lua")

function response(status, headers, body)
  seen = seen + 1
  if count > 0 and seen >= count then
    wrk.thread:stop()
  end
end
