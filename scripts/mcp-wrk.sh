#!/usr/bin/env bash
# The MCP call path measured from outside (BENCHMARKS.md, "MCP over Streamable HTTP").
#
# Starts the release central with `quickstart` on a temporary data directory (tool-call rate
# limits lifted, everything else default: bearer token checked on every request, every call
# audited, the in-process agent connected), opens ONE MCP session (initialize +
# notifications/initialized), then has wrk post `tools/call mttrly_list_servers` into that one
# session over CONNECTIONS keep-alive connections. Reports calls/s, p50/p99 (wrk's own clock)
# and the server's CPU per call (utime + stime from /proc/PID/stat, before and after the run).
# The same load then runs against the official TypeScript SDK's Streamable HTTP server with a
# trivial tool (scripts/mcp-wrk-ts-server.mjs), in the same run, for the comparison.
#
# scripts/mcp-wrk.sh [central|ts|both]     (default both)
# env: DURATION=10 (seconds) CONNECTIONS=64 THREADS=2 WARMUP=3 ROUNDS=1 NO_BUILD=1 (reuse the binary)
#      TOOL=mttrly_list_servers (another tool called without arguments, or `ping`, `tools/list`:
#      the cost's layers; TOOL_ERROR=1 when the tool answers a tool error, e.g. a validation error)
#      CENTRAL_BIN=path (another central binary, e.g. an older build for a before/after; implies NO_BUILD)
#      SERVER_CPUS=0 WRK_CPUS=1 (pin the servers and wrk to these CPUs with taskset, e.g. to see
#      what one core of server does when wrk has the other to itself)
#      KEEP=1 (copy the servers' logs to target/)  PERF=1 (record `perf record -g` of central during the measured run into target/mcp-wrk.perf)
set -euo pipefail

which_servers=${1:-both}
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
warmup=${WARMUP:-3}
protocol=2025-06-18
root=$(cd "$(dirname "$0")/.." && pwd)
node_dir="$root/target/mcp-wrk-node"
work=$(mktemp -d)
pids=()
# taskset prefixes (empty: unpinned).
server_pin=()
wrk_pin=()
[ -n "${SERVER_CPUS:-}" ] && server_pin=(taskset -c "$SERVER_CPUS")
[ -n "${WRK_CPUS:-}" ] && wrk_pin=(taskset -c "$WRK_CPUS")

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP:-}" ]; then cp "$work"/*.log "$root/target/" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

need_wrk() {
    command -v wrk >/dev/null && return
    echo "installing wrk" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
}

need_sdk() {
    [ -d "$node_dir/node_modules/@modelcontextprotocol/sdk" ] && return
    echo "installing @modelcontextprotocol/sdk into $node_dir (git-ignored)" >&2
    mkdir -p "$node_dir"
    [ -f "$node_dir/package.json" ] || echo '{"private":true,"type":"module"}' >"$node_dir/package.json"
    (cd "$node_dir" && npm install --no-audit --no-fund @modelcontextprotocol/sdk >/dev/null)
}

# CPU seconds (user + system) a process used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# initialize + notifications/initialized; prints the session id.
open_session() {
    local url=$1 token=$2 auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
    curl -sS -D "$work/headers" -o "$work/init.body" "$url" "${auth[@]}" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"$protocol\",\"capabilities\":{},\"clientInfo\":{\"name\":\"mcp-wrk\",\"version\":\"1\"}}}"
    local session
    session=$(awk 'tolower($1) == "mcp-session-id:" { gsub("\r", "", $2); print $2 }' "$work/headers")
    [ -n "$session" ] || { echo "no Mcp-Session-Id from $url:" >&2; cat "$work/headers" "$work/init.body" >&2; exit 1; }
    curl -sS -o /dev/null "$url" "${auth[@]}" -H "Mcp-Session-Id: $session" -H "MCP-Protocol-Version: $protocol" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    # One call by hand: the load must measure successful tool calls, not refusals.
    local answer
    answer=$(curl -sS "$url" "${auth[@]}" -H "Mcp-Session-Id: $session" -H "MCP-Protocol-Version: $protocol" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mttrly_list_servers","arguments":{}}}')
    if ! grep -q '"result"' <<<"$answer" || grep -q '"isError":true' <<<"$answer"; then
        echo "the first tools/call failed: $answer" >&2
        exit 1
    fi
    echo "$session"
}

# load NAME URL TOKEN PID: warm-up, then the measured run; prints one summary line.
load() {
    local name=$1 url=$2 token=$3 pid=$4 session
    session=$(open_session "$url" "$token")
    export MCP_SESSION=$session MCP_TOKEN=$token MCP_PROTOCOL=$protocol MCP_TOOL=${TOOL:-mttrly_list_servers} MCP_TOOL_ERROR=${TOOL_ERROR:-0}
    # The warm-up checks every answer (a result, the request's own, not a tool error); the
    # measured run leaves that to the warm-up (CHECK=1 checks it too, at wrk's expense).
    local checked
    checked=$(MCP_CHECK=1 "${wrk_pin[@]}" wrk -t "$threads" -c "$connections" -d "${warmup}s" --timeout 10s -s "$root/scripts/mcp-wrk.lua" "$url")
    if ! grep -q '^RESULT.* failed=0 errors=0$' <<<"$checked"; then
        echo "$name: the warm-up got failed answers: $checked" >&2
        exit 1
    fi
    export MCP_CHECK=${CHECK:-0}
    local perf_pid=
    if [ "${PERF:-0}" = 1 ] && [ "$name" = central ]; then
        perf record ${PERF_ARGS:--g} -F 999 -p "$pid" -o "$root/target/mcp-wrk.perf" -- sleep "$duration" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local before after out
    before=$(cpu_seconds "$pid")
    out=$("${wrk_pin[@]}" wrk -t "$threads" -c "$connections" -d "${duration}s" --timeout 10s -s "$root/scripts/mcp-wrk.lua" "$url")
    after=$(cpu_seconds "$pid")
    [ -n "$perf_pid" ] && wait "$perf_pid"
    local result
    result=$(grep '^RESULT' <<<"$out") || { echo "$out" >&2; exit 1; }
    awk -v name="$name" -v tool="$MCP_TOOL" -v before="$before" -v after="$after" -v c="$connections" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        cps = v["calls"] / v["seconds"]; cpu = after - before
        printf "%-8s %s, %d connections, one session: %8.0f calls/s  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.1f ms  server CPU %.2f s = %.0f us/call (%.2f cores)  failed %d, socket errors %d\n",
            name, tool, c, cps, v["p50_ms"], v["p90_ms"], v["p99_ms"], v["max_ms"], cpu, cpu / v["calls"] * 1e6, cpu / v["seconds"], v["failed"], v["errors"]
    }' <<<"$result"
}

start_central() {
    local bin=${CENTRAL_BIN:-$root/target/release/mttrly-central}
    if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${CENTRAL_BIN:-}" ]; then
        (cd "$root" && cargo build --release -q -p mttrly-central)
    fi
    # The load is one token calling as fast as it can: lift the tool-call rate limits only.
    printf 'rate_limit_principal_per_minute = 1000000000\nrate_limit_account_per_minute = 1000000000\n' >"$work/central.toml"
    "${server_pin[@]}" "$bin" --output json quickstart --config "$work/central.toml" \
        --data-dir "$work/data" --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 >"$work/central.json" 2>"$work/central.log" &
    central_pid=$!
    pids+=("$central_pid")
    for _ in $(seq 200); do
        [ -s "$work/central.json" ] && break
        kill -0 "$central_pid" 2>/dev/null || { cat "$work/central.log" >&2; exit 1; }
        sleep 0.1
    done
    central_url=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["mcp_url"])' <"$work/central.json")
    central_token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["assistant_token"])' <"$work/central.json")
}

start_ts() {
    need_sdk
    cp "$root/scripts/mcp-wrk-ts-server.mjs" "$node_dir/server.mjs"
    "${server_pin[@]}" node "$node_dir/server.mjs" 0 >"$work/ts.log" 2>&1 &
    ts_pid=$!
    pids+=("$ts_pid")
    for _ in $(seq 100); do
        grep -q '^listening' "$work/ts.log" 2>/dev/null && break
        sleep 0.1
    done
    ts_url="http://127.0.0.1:$(awk '/^listening/ { print $2 }' "$work/ts.log")/mcp"
}

need_wrk
echo "$(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$threads -c$connections -d${duration}s into one MCP session${SERVER_CPUS:+; servers on CPU $SERVER_CPUS}${WRK_CPUS:+, wrk on CPU $WRK_CPUS}"
case $which_servers in central | both) start_central ;; esac
case $which_servers in ts | both) start_ts ;; esac
# Each round runs the servers back to back, so a round compares them under the same machine load.
for round in $(seq "${ROUNDS:-1}"); do
    [ "${ROUNDS:-1}" -gt 1 ] && echo "round $round"
    case $which_servers in central | both) load central "$central_url" "$central_token" "$central_pid" ;; esac
    case $which_servers in ts | both) load ts-sdk "$ts_url" "" "$ts_pid" ;; esac
done
