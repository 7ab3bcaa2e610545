//! The dashboard's biggest pages measured from outside, as a person's load arrives (issue 14's
//! bar: "rendered server-side in < 30 ms median").
//!
//! A real release `mttrly-central serve` process, its database seeded while it was stopped
//! (between `init` and `serve`, by `mttrly_tests::dashboard_seed`, as the in-process
//! `benches/dashboard.rs` seeds it): 200 pending actions and 10,000 servers, 150 of them
//! alerting. Bob, an operator, signs in through his invite (password, authenticator code), and
//! `wrk` (a separate C load generator, Debian's package `wrk`) sends his session cookie with
//! `GET /` (every pending action, each judged for him), `GET /servers` (the fleet's totals and
//! the first page of 100) and `GET /servers?state=alerting` over keep-alive HTTP/1.1 connections,
//! at each connection count given. A response counts only when it is a 200 whose body holds the
//! page's totals and exactly the rows it must show (200 actions, 100 servers), so a sign-in
//! redirect or an error page answered fast never counts; latency is wrk's, from request sent to
//! the whole response read. Central's CPU time per request (from `/proc`) is printed beside it.
//!
//! cargo bench -p mttrly-tests --bench dashboard_outside -- [--connections 1,4,16] [--seconds 10] [--threads 1]
//!
//! `--threads` is wrk's (at most one per connection). wrk runs on the same machine as central,
//! so at high connection counts the two share its cores.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

use std::path::Path;
use std::process::Command;

use mttrly_tests::TestCentral;
use mttrly_tests::bench::arg;
use mttrly_tests::dashboard_seed::{self, ACTION_MARK, ALERTING, PAGE, PENDING, SERVER_ROW_MARK, SERVERS};

/// Issue 14's goal for a page's median, in milliseconds.
const GOAL_MS: f64 = 30.0;

/// The config central serves the pages with: the offline rule off (see `main`); the host-metric
/// rules judge heartbeats, and none come.
const OFFLINE_RULE_OFF: &str = "[alerts.agent_offline]\nenabled = false\n";

/// A page under load and what its body must hold to count.
struct Page {
    path: &'static str,
    /// What starts one shown row, and how many of them the page must show.
    mark: &'static str,
    rows: usize,
    /// Text the page must also hold (its totals).
    holds: String,
}

/// `10,000`, as the servers page writes its totals.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Lua string literal.
fn lua_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// The wrk script: Bob's session on every request, each answer checked (status, totals, the
/// count of rows), counts across wrk's threads, the latency percentiles (microseconds) and the
/// run's totals printed at the end.
fn script(cookie: &str, page: &Page) -> String {
    format!(
        r#"
wrk.method = "GET"
wrk.headers["Cookie"] = {cookie}
wrk.headers["Accept"] = "text/html"
local mark = {mark}
local rows = {rows}
local holds = {holds}
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  ok = 0
  bad = 0
  sample = nil
end
function response(status, headers, body)
  local n = 0
  if status == 200 and string.find(body, holds, 1, true) then
    local at = 1
    while true do
      local s, e = string.find(body, mark, at, true)
      if s == nil then break end
      n = n + 1
      at = e + 1
    end
  end
  if n == rows then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == nil then sample = status .. " (" .. n .. " rows) " .. string.sub(body, 1, 300) end
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
  local e = summary.errors
  io.write(string.format("SUMMARY duration_us=%d requests=%d bytes=%d errors=%d\n", summary.duration,
    summary.requests, summary.bytes, e.connect + e.read + e.write + e.status + e.timeout))
  for _, p in ipairs({{50, 90, 99, 99.9}}) do
    io.write(string.format("LATENCY p%g=%d\n", p, latency:percentile(p)))
  end
end
"#,
        cookie = lua_string(cookie),
        mark = lua_string(page.mark),
        rows = page.rows,
        holds = lua_string(&page.holds),
    )
}

/// `key=N` on the line wrk printed starting with `prefix`.
fn field(output: &str, prefix: &str, key: &str) -> u64 {
    output
        .lines()
        .filter(|l| l.starts_with(prefix))
        .flat_map(str::split_whitespace)
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no {prefix} {key}:\n{output}"))
}

/// `--connections 1,4,16`: the connection counts to run each page at.
fn connection_counts() -> Vec<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == "--connections").map_or_else(
        || vec![1, 4, 16],
        |w| w[1].split(',').map(|n| n.trim().parse().expect("--connections N[,N…]")).collect(),
    )
}

/// The 1-, 5- and 15-minute load averages, printed beside each figure: the machine is shared.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let connections = connection_counts();
    let threads = arg("--threads", 1);
    let seconds = arg("--seconds", 10);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("this bench needs wrk on PATH (Debian: apt-get install wrk)");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().unwrap();
    // Seeded between `init` and `serve`: central is not running, the file is the whole state.
    let mut central = TestCentral::start_with(dir.path(), &[], &[], |data_dir| {
        let mut conn = rusqlite::Connection::open(data_dir.join("central.db")).unwrap();
        assert_eq!(dashboard_seed::seed(&mut conn).unwrap().len(), SERVERS);
    });
    // The seeded servers have no agent: once the start's grace ends (40 s), every one is judged
    // offline and 10,000 `agent_offline` alerts would open in the middle of the measurement.
    central.write_config(OFFLINE_RULE_OFF);
    central.restart();
    let invite = central.cli_json(&["users", "add", "bob", "--role", "operator"]);
    let invite_url = invite["invite_url"].as_str().unwrap_or_else(|| panic!("no invite_url: {invite}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let servers = format!("{} servers", thousands(SERVERS));
    let alerting = format!("{ALERTING} alerting");
    let pages = [
        Page { path: "/", mark: ACTION_MARK, rows: PENDING, holds: "</html>".to_owned() },
        Page { path: "/servers", mark: SERVER_ROW_MARK, rows: PAGE, holds: servers },
        Page { path: "/servers?state=alerting", mark: SERVER_ROW_MARK, rows: PAGE, holds: alerting },
    ];
    let cookie = runtime.block_on(async {
        let mut http = dashboard_seed::sign_in(&central.http_url, invite_url).await;
        // Each page checked once here as the wrk script checks it, so a wrong page stops the
        // bench with its body shown before any figure is taken.
        for page in &pages {
            let (status, body) = http.get(page.path).await;
            assert!(
                status == 200 && body.contains(&page.holds) && body.matches(page.mark).count() == page.rows,
                "{} for Bob: {status}, {} rows of {}, `{}` {}:\n{body}",
                page.path,
                body.matches(page.mark).count(),
                page.rows,
                page.holds,
                if body.contains(&page.holds) { "shown" } else { "missing" },
            );
        }
        http.cookie_header()
    });
    println!(
        "release mttrly-central pid {} at {}; {PENDING} pending actions, {SERVERS} servers ({ALERTING} alerting); \
         wrk -t{threads} -d{seconds}s per run; load average at the start: {}",
        central.pid(),
        central.http_url,
        loadavg()
    );
    println!(
        "| page | connections | median | p90 | p99 | req/s | central CPU per request | body | load average | goal (< {GOAL_MS} ms median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for page in &pages {
        let script_path = dir.path().join("page.lua");
        std::fs::write(&script_path, script(&cookie, page)).unwrap();
        // A one-second run first: the script's own check proven on the real page (and central
        // warmed up).
        let check = Command::new("wrk")
            .args(["-t1", "-c1", "-d1s", "-s"])
            .arg(&script_path)
            .arg(format!("{}{}", central.http_url, page.path))
            .output()
            .unwrap();
        let check = String::from_utf8_lossy(&check.stdout).into_owned();
        assert!(
            field(&check, "COUNTS", "ok") > 0 && field(&check, "COUNTS", "bad") == 0,
            "{} is not the page expected:\n{check}",
            page.path
        );
        for &c in &connections {
            let cpu_before = mttrly_tests::cpu_time(central.pid()).unwrap_or_default();
            let out = run_wrk(&script_path, threads.min(c), c, seconds, &format!("{}{}", central.http_url, page.path));
            let cpu = mttrly_tests::cpu_time(central.pid()).unwrap_or_default().saturating_sub(cpu_before);
            let (ok, bad) = (field(&out, "COUNTS", "ok"), field(&out, "COUNTS", "bad"));
            let requests = field(&out, "SUMMARY", "requests");
            let errors = field(&out, "SUMMARY", "errors");
            assert!(
                bad == 0 && errors == 0,
                "{} at {c} connections: {bad} wrong answers, {errors} errors:\n{out}",
                page.path
            );
            let duration = field(&out, "SUMMARY", "duration_us") as f64 / 1e6;
            let ms = |key: &str| field(&out, "LATENCY", key) as f64 / 1000.0;
            let median = ms("p50");
            println!(
                "| `{}` | {c} | {median:.1} ms | {:.1} ms | {:.1} ms | {:.0} | {:.1} ms | {:.0} kB | {} | {} |",
                page.path,
                ms("p90"),
                ms("p99"),
                ok as f64 / duration,
                cpu.as_secs_f64() * 1000.0 / requests.max(1) as f64,
                field(&out, "SUMMARY", "bytes") as f64 / requests.max(1) as f64 / 1000.0,
                loadavg(),
                if median < GOAL_MS { "met" } else { "**not met**" }
            );
        }
    }
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
