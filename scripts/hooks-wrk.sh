#!/usr/bin/env bash
# Inbound alerts measured from outside (BENCHMARKS.md, "Inbound alerts"): the release central
# (`quickstart` on a temporary data directory, `[hooks.alertmanager]` configured, its own agent
# registered under this machine's name), and wrk posting Alertmanager webhook notifications of
# ALERTS alerts each for that server, every alert new, over CONNECTIONS keep-alive connections.
# Reports notifications/s and latency from wrk's clock, the server's CPU per notification, and
# the open alerts central holds afterwards (counted in its database: nothing lost or doubled).
#
# scripts/hooks-wrk.sh        env: DURATION=10 CONNECTIONS=8 THREADS=2 ALERTS=10 NO_BUILD=1
set -euo pipefail

duration=${DURATION:-10}
connections=${CONNECTIONS:-8}
threads=${THREADS:-2}
alerts=${ALERTS:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
central_pid=""
cleanup() {
    if [ -n "$central_pid" ]; then kill "$central_pid" 2>/dev/null || true; wait "$central_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed (apt-get install sqlite3), for the count" >&2; exit 1; }
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -q -p mttrly-central -p mttrly-cli)
fi
bin=$root/target/release/mttrly-central
cli=$root/target/release/mttrly-cli

export HOOKS_TOKEN
HOOKS_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '[hooks.alertmanager]\ntoken_env = "HOOKS_TOKEN"\n' >"$work/central.toml"
"$bin" --output json quickstart --config "$work/central.toml" --data-dir "$work/data" \
    --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 >"$work/central.json" 2>"$work/central.log" &
central_pid=$!
for _ in $(seq 200); do
    [ -s "$work/central.json" ] && break
    kill -0 "$central_pid" 2>/dev/null || { cat "$work/central.log" >&2; exit 1; }
    sleep 0.1
done
field() { python3 -c "import json,sys; print(json.load(open('$work/central.json'))['$1'])"; }
http_url=$(field http_url)
export HOOKS_HOST HOOKS_ALERTS=$alerts
HOOKS_HOST=$("$cli" --central "$(field grpc_url)" --token "$(field admin_token)" --output json servers list \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["servers"][0]["name"])')

cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
echo "$(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$threads -c$connections -d${duration}s, $alerts alerts per notification for $HOOKS_HOST"
before=$(cpu_seconds "$central_pid")
result=$(wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$root/scripts/hooks-wrk.lua" "$http_url/hooks/alertmanager" | grep '^result')
after=$(cpu_seconds "$central_pid")
stored=$(sqlite3 "file:$work/data/central.db?mode=ro" "SELECT count(*), count(DISTINCT rule || subject) FROM alerts WHERE rule = 'alertmanager:DiskFull'")
awk -v before="$before" -v after="$after" -v per="$alerts" -v stored="$stored" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    rate = v["notifications"] / v["seconds"]; cpu = after - before
    split(stored, s, "|")
    printf "%.0f notifications/s (%.0f alerts/s)  p50 %.2f ms  p99 %.2f ms  server CPU %.0f us/notification (%.2f cores)  non-2xx %d, socket errors %d\n",
        rate, rate * per, v["p50_ms"], v["p99_ms"], cpu / v["notifications"] * 1e6, cpu / v["seconds"], v["non_2xx"], v["errors"]
    printf "stored: %d alerts, %d distinct; answered notifications carried %d (requests still in flight when wrk stopped may add a few)\n",
        s[1], s[2], v["notifications"] * per
}' <<<"$result"
