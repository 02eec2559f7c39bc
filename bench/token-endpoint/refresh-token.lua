-- wrk script: POST /token, grant_type=refresh_token, chaining the rotated tokens.
--
-- Every refresh token is single-use (rotation), so each request must present a token no request presented before.
-- The pool starts with one freshly minted token per chain (one line each in the file given as the first script
-- argument); each 200 answer puts its new refresh token back in the pool, so every connection keeps refreshing a
-- live chain for the whole run. Run with one thread and more chains than connections: wrk reads a connection's
-- response (response()) before it builds that connection's next request (request()), so the pool is never empty.
-- (More, not as many: wrk calls request() once before the run to check the request's form, which takes a token.)
-- A non-200 answer or one without a refresh token ends its chain and is counted (`lost`); the run is then invalid.
-- Second script argument: the public client's id.
local pool, head, tail = {}, 1, 0
local client_id
lost = 0

local function push(token)
  tail = tail + 1
  pool[tail] = token
end

function init(args)
  client_id = args[2]
  for line in io.lines(args[1]) do
    if #line > 0 then push(line) end
  end
end

function request()
  local token = pool[head]
  if token then
    pool[head] = nil
    head = head + 1
  else
    -- A lost chain: present a token that cannot exist; it fails and is counted, without stalling the connection
    -- and without touching a live chain (a live token presented twice would revoke its family).
    token = "lost-chain"
  end
  return wrk.format("POST", "/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    push(token)
  else
    lost = lost + 1
    if lost == 1 then io.stderr:write("first lost chain: HTTP " .. status .. " " .. body:sub(1, 300) .. "\n") end
  end
end

dofile(os.getenv("BENCH_DIR") .. "/report.lua")
