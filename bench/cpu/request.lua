-- wrk script of bench/cpu/run.sh: GET as given on the command line, or with BENCH_BASIC set, POST /token
-- (client_credentials, client_secret_basic, as client-credentials.lua). Reports like report.lua.
if os.getenv("BENCH_BASIC") and os.getenv("BENCH_BASIC") ~= "" then
  wrk.method = "POST"
  wrk.path = "/token"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
  wrk.body = "grant_type=client_credentials&scope=" .. os.getenv("BENCH_SCOPE")
end

dofile(os.getenv("BENCH_DIR") .. "/report.lua")
