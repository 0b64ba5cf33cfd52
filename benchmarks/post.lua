-- wrk script for the publish benchmark: every request is the same ntfy publish,
-- POST <url> with a short text body (the URL's path is the topic).
-- done() prints one JSON line after wrk's own report, for benchmarks/publish.py to parse.
wrk.method = "POST"
wrk.body = "benchmark message"
wrk.headers["Content-Type"] = "text/plain"

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
