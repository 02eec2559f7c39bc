-- wrk script: POST /token, grant_type=client_credentials, client_secret_basic. The same request every time.
-- Environment: BENCH_BASIC = base64(client_id:client_secret), BENCH_SCOPE = the scope to ask for.
wrk.method = "POST"
wrk.path = "/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.body = "grant_type=client_credentials&scope=" .. os.getenv("BENCH_SCOPE")

dofile(os.getenv("BENCH_DIR") .. "/report.lua")
