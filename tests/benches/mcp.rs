//! MCP over Streamable HTTP: `tools/call mttrly_list_servers` against central's `/mcp` on
//! loopback (release build, one process: central on its own runtime, the load on another; both
//! share this machine's two cores, so every figure includes the client's own cost).
//!
//! 1. Saturation: 64 sessions (real rmcp clients), each calling back to back: calls/s.
//! 2. Latency under load: 64 sessions speaking raw HTTP (keep-alive, one MCP session each) at a
//!    fixed offered rate (open loop), so queueing behind the load generator is not counted.
//! 3. One session, 64 keep-alive connections posting into it back to back (the shape of
//!    `scripts/mcp-wrk.sh`, which measures the same from outside with wrk): its requests are
//!    served concurrently, each answer matched to its JSON-RPC id.
//! 4. One session alone.
//!
//! cargo bench -p mttrly-tests --bench mcp -- [--sessions 64] [--seconds 10] [--rate 2000]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::time::{Duration, Instant};

use mttrly_tests::bench::arg;
use mttrly_tests::mcp;
use serde_json::json;

fn main() {
    let sessions = arg("--sessions", 64) as usize;
    let seconds = arg("--seconds", 10);
    let load = mttrly_tests::bench::central_for_load();
    let (url, token) = (load.url.clone(), load.token.clone());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..sessions {
            clients.push(mcp::connect(&url, &token, None).await.0);
        }
        // Warm up every session.
        for c in &clients {
            mcp::call_ok(c, "mttrly_list_servers", json!({})).await;
        }
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in clients {
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    mcp::call_ok(&c, "mttrly_list_servers", json!({})).await;
                    samples.push(t.elapsed());
                }
                samples
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed();
        all.sort();
        let p = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "rmcp clients, {sessions} sessions back to back: median {:.2} ms, p99 {:.2} ms, {:.0} calls/s ({} calls in {:.1} s)",
            p(0.5),
            p(0.99),
            all.len() as f64 / elapsed.as_secs_f64(),
            all.len(),
            elapsed.as_secs_f64()
        );
        // Raw HTTP sessions: back to back (the server's throughput), then at a fixed offered rate
        // (latency without counting queueing inside the load generator).
        run_raw(&url, &token, sessions, seconds, None, false).await;
        run_raw(&url, &token, sessions, seconds, Some(arg("--rate", 2000) as f64), false).await;
        run_raw(&url, &token, sessions, seconds, None, true).await;

        // One session alone: the latency without queueing behind 63 others.
        let solo = mcp::connect(&url, &token, None).await.0;
        let mut one = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            mcp::call_ok(&solo, "mttrly_list_servers", json!({})).await;
            one.push(t.elapsed());
        }
        one.sort();
        let q = |v: f64| one[((one.len() - 1) as f64 * v).round() as usize].as_secs_f64() * 1000.0;
        println!("rmcp client, one session: median {:.2} ms, p99 {:.2} ms (2000 calls)", q(0.5), q(0.99));
    });
}

/// `sessions` clients, each on its own keep-alive connection: each its own MCP session, or all
/// in one (`one_session`).
async fn run_raw(url: &str, token: &str, sessions: usize, seconds: u64, rate: Option<f64>, one_session: bool) {
    let mut raw = Vec::new();
    let shared = if one_session { Some(RawSession::open(url, token).await) } else { None };
    for _ in 0..sessions {
        raw.push(match &shared {
            Some(s) => s.another_connection(),
            None => RawSession::open(url, token).await,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut tick = rate.map(|r| {
                let every = Duration::from_secs_f64(sessions as f64 / r);
                // Stagger the sessions over one interval so arrivals are spread evenly.
                let first = tokio::time::Instant::now() + every.mul_f64(i as f64 / sessions as f64);
                let mut t = tokio::time::interval_at(first, every);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                t
            });
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                if let Some(t) = &mut tick {
                    t.tick().await;
                }
                let t = Instant::now();
                s.list_servers().await;
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    lat.sort();
    let q = |v: f64| lat[((lat.len() - 1) as f64 * v).round() as usize].as_secs_f64() * 1000.0;
    let mode = rate.map_or_else(|| "back to back".to_owned(), |r| format!("at {r:.0} calls/s offered"));
    let shape =
        if one_session { format!("{sessions} connections into one session") } else { format!("{sessions} sessions") };
    println!(
        "raw HTTP, {shape} {mode}: median {:.2} ms, p99 {:.2} ms, {:.0} calls/s served",
        q(0.5),
        q(0.99),
        lat.len() as f64 / elapsed.as_secs_f64()
    );
}

/// One MCP session over raw HTTP with keep-alive: the cheapest possible client, so the figures
/// are about the server.
struct RawSession {
    http: reqwest::Client,
    url: String,
    auth: String,
    session: String,
    /// JSON-RPC ids, unique across every connection into the session (a duplicate id in flight
    /// is a protocol error).
    next_id: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RawSession {
    async fn open(url: &str, token: &str) -> Self {
        let http = reqwest::Client::builder().pool_max_idle_per_host(1).tcp_nodelay(true).build().unwrap();
        let auth = format!("Bearer {token}");
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "bench", "version": "1" } }
        });
        let r = http
            .post(url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        r.bytes().await.unwrap();
        let s = Self { http, url: url.to_owned(), auth, session, next_id: std::sync::Arc::default() };
        s.post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
        s
    }

    /// The same MCP session over a connection of its own.
    fn another_connection(&self) -> Self {
        Self {
            http: reqwest::Client::builder().pool_max_idle_per_host(1).tcp_nodelay(true).build().unwrap(),
            url: self.url.clone(),
            auth: self.auth.clone(),
            session: self.session.clone(),
            next_id: std::sync::Arc::clone(&self.next_id),
        }
    }

    async fn post(&self, body: &serde_json::Value) -> bytes::Bytes {
        self.http
            .post(&self.url)
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    }

    async fn list_servers(&self) {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let body = self
            .post(&json!({
                "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": { "name": "mttrly_list_servers", "arguments": {} }
            }))
            .await;
        assert!(body.windows(9).any(|w| w == b"\"servers\""), "{}", String::from_utf8_lossy(&body));
        // The answer to this request, not another connection's.
        let own = format!("\"id\":{id},");
        assert!(body.windows(own.len()).any(|w| w == own.as_bytes()), "{}", String::from_utf8_lossy(&body));
    }
}
