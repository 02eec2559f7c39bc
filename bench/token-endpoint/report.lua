-- Shared by the wrk scripts: one machine-readable line at the end of a run.
-- RESULT rps=<completed requests per second> requests=<n> seconds=<duration> errors=<non-2xx/3xx + socket errors>
--        lost=<broken chains> p50_ms=<median latency> p99_ms=<99th percentile latency>
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local e = summary.errors
  local lost = 0
  for _, t in ipairs(threads) do
    lost = lost + (tonumber(t:get("lost")) or 0)
  end
  io.write(string.format("RESULT rps=%.1f requests=%d seconds=%.3f errors=%d lost=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests / (summary.duration / 1e6), summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout, lost,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
