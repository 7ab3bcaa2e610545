//! The war room (issue 17): `mttrly_publish_notification` over `/mcp` on loopback (release build,
//! one process: central on its own runtime, the load on another, both on this machine's two
//! cores), then the reads an incident makes.
//!
//! 1. Publish throughput: 64 MCP sessions publishing back to back into one channel, each call a
//!    committed SQLite row plus its audit row: notifications/s, and the latency percentiles.
//! 2. Reads: `mttrly_get_notifications` with a cursor (nothing new, and 50 new),
//!    `mttrly_get_incident_summary` of a six-message thread, `mttrly_get_incident_stats` over
//!    200 incidents.
//!
//! cargo bench -p mttrly-tests --bench warroom -- [--sessions 64] [--seconds 10]

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use mttrly_tests::bench::{arg, percentile};
use mttrly_tests::mcp;
use serde_json::{Value, json};

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: n={} p50={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

async fn timed(session: &mcp::Session, tool: &str, args: &Value, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        mcp::call_ok(session, tool, args.clone()).await;
        out.push(t.elapsed());
    }
    out
}

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
        mcp::call_ok(&clients[0], "mttrly_create_channel", json!({ "channel": "incidents" })).await;
        mcp::call_ok(&clients[0], "mttrly_create_channel", json!({ "channel": "load" })).await;

        // 1. Publish throughput.
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, c) in clients.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let args = json!({
                        "channel": "load", "title": format!("update {i}/{n}"),
                        "body": "**Status:** investigating\n- error rate 98%\n- connections 100/100",
                        "priority": "high", "theme": "status", "tags": ["p1", "database"],
                        "thread_id": format!("load-{i}"),
                    });
                    let t = Instant::now();
                    mcp::call_ok(&c, "mttrly_publish_notification", args).await;
                    samples.push(t.elapsed());
                    n += 1;
                }
                (c, samples)
            }));
        }
        let mut all = Vec::new();
        let mut clients = Vec::new();
        for t in tasks {
            let (c, s) = t.await.unwrap();
            clients.push(c);
            all.extend(s);
        }
        let elapsed = started.elapsed();
        println!(
            "publish: {sessions} sessions, {} notifications in {:.1?} = {:.0}/s",
            all.len(),
            elapsed,
            all.len() as f64 / elapsed.as_secs_f64()
        );
        report("publish latency under load", all);
        let one = &clients[0];

        // 2. Reads.
        let latest = mcp::call_ok(one, "mttrly_get_notifications", json!({ "channel": "load", "limit": 1 })).await;
        let cursor = latest["next_cursor"].clone();
        report(
            "get_notifications since the latest (nothing new)",
            timed(one, "mttrly_get_notifications", &json!({ "channel": "load", "since": cursor }), 500).await,
        );
        for n in 0..50 {
            mcp::call_ok(one, "mttrly_publish_notification", json!({ "channel": "load", "title": format!("new {n}") }))
                .await;
        }
        report(
            "get_notifications since a cursor 50 behind",
            timed(one, "mttrly_get_notifications", &json!({ "channel": "load", "since": cursor }), 500).await,
        );
        for i in 0..200 {
            let thread = format!("incident-{i}");
            for (theme, priority) in [
                ("incident-alert", "critical"),
                ("incident-update", "critical"),
                ("incident-update", "critical"),
                ("incident-decision", "critical"),
                ("incident-update", "critical"),
                ("incident-resolved", "high"),
            ] {
                mcp::call_ok(
                    one,
                    "mttrly_publish_notification",
                    json!({ "channel": "incidents", "title": theme, "priority": priority, "theme": theme,
                            "tags": ["p0", if i % 3 == 0 { "deploy" } else { "database" }], "thread_id": thread }),
                )
                .await;
            }
        }
        report(
            "get_incident_summary (6 notifications)",
            timed(one, "mttrly_get_incident_summary", &json!({ "thread_id": "incident-7" }), 500).await,
        );
        report(
            "get_incident_stats (200 incidents, 1,200 notifications)",
            timed(one, "mttrly_get_incident_stats", &json!({}), 50).await,
        );
    });
}
