-- wrk script for scripts/hooks-wrk.sh: every request is one Alertmanager webhook notification
-- (version 4) of HOOKS_ALERTS alerts for host HOOKS_HOST, each with a fingerprint unique across
-- threads and requests, so every alert of every notification is new to central.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  seq = 0
  failed = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("HOOKS_TOKEN")
  host = os.getenv("HOOKS_HOST")
  per = tonumber(os.getenv("HOOKS_ALERTS") or "10")
end

function request()
  seq = seq + 1
  local alerts = {}
  for i = 1, per do
    local fp = string.format("%04x%08x%04x", tid, seq, i)
    alerts[i] = '{"status":"firing","labels":{"alertname":"DiskFull","instance":"' .. host .. ':9100",' ..
      '"severity":"warning","mountpoint":"/d' .. fp .. '"},"annotations":{"summary":"Disk almost full"},' ..
      '"startsAt":"2026-12-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",' ..
      '"generatorURL":"http://prometheus:9090/graph","fingerprint":"' .. fp .. '"}'
  end
  local body = '{"version":"4","status":"firing","receiver":"mttrly","groupKey":"{}:{t=\\"' .. tid .. '-' .. seq ..
    '\\"}","truncatedAlerts":0,"groupLabels":{},"commonLabels":{},"commonAnnotations":{},' ..
    '"externalURL":"http://alertmanager:9093","alerts":[' .. table.concat(alerts, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("result notifications=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f errors=%d non_2xx=%d\n",
    summary.requests, seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
