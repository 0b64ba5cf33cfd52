-- wrk script for the benchmarks: every request is the same. POST <url> with a short
-- text body (an ntfy publish; the URL's path is the topic), or, with WRK_METHOD=GET in
-- the environment, a plain GET <url>.
-- done() prints one JSON line after wrk's own report, for benchmarks/_common.py to parse.
wrk.method = os.getenv("WRK_METHOD") or "POST"
if wrk.method ~= "GET" then
  wrk.body = "benchmark message"
  wrk.headers["Content-Type"] = "text/plain"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
