-- wrk script for scripts/mcp-wrk.sh: every connection posts `tools/call mttrly_list_servers`
-- into ONE MCP session. The session, token and protocol version come from the environment.
-- JSON-RPC ids are unique across threads (a duplicate id in flight is a protocol error).
-- The layers of the cost, for the profile's breakdown: MCP_TOOL names another tool to call
-- (with no arguments), or `ping` / `tools/list` for those methods (no tool runs, no audit row);
-- MCP_TOOL_ERROR=1 counts a tool's error result (`isError: true`) as an answer.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  seq = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["Mcp-Session-Id"] = os.getenv("MCP_SESSION")
  wrk.headers["MCP-Protocol-Version"] = os.getenv("MCP_PROTOCOL")
  local token = os.getenv("MCP_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  failed = 0
  tool = os.getenv("MCP_TOOL") or "mttrly_list_servers"
  tool_error_ok = os.getenv("MCP_TOOL_ERROR") == "1"
end

function request()
  seq = seq + 1
  local id = tid * 100000000 + seq
  local body
  if tool == "ping" or tool == "tools/list" then
    body = '{"jsonrpc":"2.0","id":' .. id .. ',"method":"' .. tool .. '"}'
  else
    body = '{"jsonrpc":"2.0","id":' .. id ..
      ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{}}}'
  end
  return wrk.format(nil, nil, nil, body)
end

-- Count answers that are not a successful tool result (non-2xx is counted by wrk itself).
-- Only with MCP_CHECK=1 (the warm-up): handing every body to Lua costs wrk CPU, and wrk shares
-- the machine with the server it measures.
local function check(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true)
    or (not tool_error_ok and string.find(body, '"isError":true', 1, true)) then
    failed = failed + 1
  end
end
if os.getenv("MCP_CHECK") == "1" then
  response = check
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("failed") or 0)
  end
  io.write(string.format("RESULT calls=%d seconds=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f failed=%d errors=%d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
