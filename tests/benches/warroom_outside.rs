//! The war room's publish rate measured from outside, as a team's load arrives (issue 17:
//! "10,000 notifications per second published, durable, without loss").
//!
//! A real release `mttrly-central serve` process, and `wrk` (a separate C load generator, from
//! Debian's package `wrk`) sending stateless MCP 2026-07-28 `tools/call`
//! `mttrly_publish_notification` requests over keep-alive HTTP/1.1 connections, each its own
//! notification (a distinct title). A response counts as published only when it is an HTTP 200
//! carrying the stored notification (its `notification_id`) and no error. Then central is killed
//! with SIGKILL (nothing flushed, nothing closed), started again, and the channel's notifications
//! are counted: every publish that was answered must be there ("without loss"); the few more a
//! crash can leave are requests wrk had in flight when its time ran out, stored but not counted.
//!
//! cargo bench -p mttrly-tests --bench warroom_outside -- [--connections 32] [--threads 1] [--seconds 10]
//!
//! At most 32 connections per user: central serves a person at most 32 stateless requests at
//! once (more are refused with 429 and counted as not published).

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

use std::path::Path;
use std::process::Command;

use mttrly_tests::TestCentral;
use mttrly_tests::bench::arg;
use serde_json::json;

/// The config the bench serves with: rate limits out of the way (one token is the whole load).
const UNLIMITED: &str = "rate_limit_principal_per_minute = 100000000\nrate_limit_account_per_minute = 100000000\n";

/// The wrk script: a distinct notification per request, the answer checked, counts across wrk's
/// threads and the latency percentiles (microseconds) printed at the end.
fn script(path: &str, token: &str) -> String {
    let template = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": "mttrly_publish_notification",
            "arguments": {
                "channel": "load", "title": "TITLE",
                "body": "**Status:** investigating\n- error rate 98%\n- connections 100/100",
                "priority": "high", "theme": "incident-update", "tags": ["p1", "database"],
                "thread_id": "THREAD",
            },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": { "name": "wrk", "version": "4" },
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    })
    .to_string();
    let lua_string = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"));
    format!(
        r#"
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "mttrly_publish_notification"
local template = {template}
local path = {path}
local threads = {{}}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
function init(args)
  ok = 0
  bad = 0
  sample = nil
  n = 0
end
function request()
  n = n + 1
  local body = string.gsub(template, "TITLE", "update " .. tid .. "/" .. n, 1)
  body = string.gsub(body, "THREAD", "load-" .. tid .. "-" .. (n % 16), 1)
  return wrk.format(nil, path, nil, body)
end
function response(status, headers, body)
  if status == 200 and string.find(body, '"notification_id"', 1, true) and not string.find(body, '"isError":true', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == nil then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    b = b + t:get("bad")
    local s = t:get("sample")
    if s ~= nil then io.write("SAMPLE " .. s .. "\n") end
  end
  io.write(string.format("COUNTS ok=%d bad=%d\n", o, b))
  for _, p in ipairs({{50, 90, 99, 99.9}}) do
    io.write(string.format("LATENCY p%g=%d\n", p, latency:percentile(p)))
  end
end
"#,
        template = lua_string(&template),
        path = lua_string(path),
    )
}

fn field(output: &str, prefix: &str, key: &str) -> u64 {
    output
        .lines()
        .filter(|l| l.starts_with(prefix))
        .flat_map(str::split_whitespace)
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no {prefix} {key}:\n{output}"))
}

fn stored(central: &TestCentral) -> u64 {
    let channels = central.call_tool(&central.admin_token, "mttrly_list_channels", &json!({}));
    channels["channels"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["channel"] == "load"))
        .and_then(|c| c["notifications"].as_u64())
        .unwrap_or_else(|| panic!("no channel `load`: {channels}"))
}

fn main() {
    let connections = arg("--connections", 32);
    let threads = arg("--threads", 1);
    let seconds = arg("--seconds", 10);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("this bench needs wrk on PATH (Debian: apt-get install wrk)");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut central = TestCentral::start_with(dir.path(), &[], &[], |_| {});
    central.write_config(UNLIMITED);
    central.restart();
    let token = central.admin_token.clone();
    central.call_tool(&token, "mttrly_create_channel", &json!({ "channel": "load" }));

    let url = central.mcp_url.clone();
    let path = url.find("/mcp").map_or("/mcp", |i| &url[i..]).to_owned();
    let script_path = dir.path().join("publish.lua");
    std::fs::write(&script_path, script(&path, &token)).unwrap();
    println!(
        "wrk -t{threads} -c{connections} -d{seconds}s against {url} (release mttrly-central pid {}), MCP 2026-07-28 stateless",
        central.pid()
    );
    let out = run_wrk(&script_path, threads, connections, seconds, &url);
    print!("{out}");
    let (ok, bad) = (field(&out, "COUNTS", "ok"), field(&out, "COUNTS", "bad"));
    let rate = ok as f64 / seconds as f64;
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "published and answered: {ok} in {seconds} s = {rate:.0}/s (refused or failed: {bad}); latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        ms(field(&out, "LATENCY", "p50")),
        ms(field(&out, "LATENCY", "p90")),
        ms(field(&out, "LATENCY", "p99")),
    );

    // Without loss: kill -9, start again, count.
    central.crash_and_restart();
    let kept = stored(&central);
    println!(
        "after SIGKILL and restart: {kept} stored; answered {ok}; lost {}; stored beyond the answered (in flight at the end): {}",
        ok.saturating_sub(kept),
        kept.saturating_sub(ok)
    );
    assert!(kept >= ok, "{} answered publishes were lost", ok - kept);
    assert!(kept - ok <= connections, "more stored than answered plus in flight");
}

fn run_wrk(script: &Path, threads: u64, connections: u64, seconds: u64, url: &str) -> String {
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{seconds}s")])
        .args(["--timeout", "10s", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
