-- wrk script: the benchmark request with a DPoP-bound token and a fresh, single-use proof on every request.
-- Arguments (after `--`): PROOFS_FILE (one proof a line, from dpop.mjs) ACCESS_TOKEN. Running out of proofs stops
-- the thread and marks the run lost (report.lua's `lost`): a replayed proof would be refused, not measured.
local proofs, token, i = {}, nil, 0

function init(args)
  for line in io.lines(args[1]) do
    proofs[#proofs + 1] = line
  end
  token = args[2]
end

function request()
  i = i + 1
  local proof = proofs[i]
  if proof == nil then
    wrk.thread:set("lost", 1)
    wrk.thread:stop()
    proof = proofs[#proofs]
  end
  return wrk.format(nil, nil, { ["Authorization"] = "DPoP " .. token, ["DPoP"] = proof })
end

dofile(os.getenv("BENCH_LUA") .. "/report.lua")
