-- wrk script for the status benchmark: every request carries the session header, and the run ends
-- with one machine-readable line for status_vs_gunicorn.sh:
--   BENCH_RESULT requests=N duration_s=S rps=R p50_ms=A p90_ms=B p99_ms=C max_ms=D
--                errors=E connect=. read=. write=. timeout=. non2xx=.
-- errors = socket errors (connect, read, write, timeout) + responses that were not 2xx/3xx.
-- Environment: BENCH_SID (the session id, required), BENCH_PATH (default /api/session/status).

local sid = os.getenv("BENCH_SID")
local path = os.getenv("BENCH_PATH") or "/api/session/status"

if sid == nil or sid == "" then
   io.stderr:write("status.lua: BENCH_SID is not set\n")
   os.exit(2)
end

wrk.method = "GET"
wrk.path = path
wrk.headers["X-Session-ID"] = sid

function done(summary, latency, requests)
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   local ms = function(us) return us / 1000.0 end
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
         .. " errors=%d connect=%d read=%d write=%d timeout=%d non2xx=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency.max),
      socket_errors + e.status, e.connect, e.read, e.write, e.timeout, e.status))
end
