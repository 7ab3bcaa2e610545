//! Inbound alerts: sustained Alertmanager webhook notifications per second into a real central
//! over loopback HTTP (release build, central on a 2-worker runtime, senders on their own threads
//! with keep-alive connections, as Alertmanager's notifiers are), 10 alerts per notification.
//!
//! Three passes over the same notifications: every alert new (each opens one alert), the same
//! again (Alertmanager's repeats: nothing opens), then all resolved. After each pass the alerts in
//! the database are counted: nothing lost, nothing duplicated.
//!
//! cargo bench -p mttrly-central --bench hooks
//! (`HOOKS_BENCH_NOTIFICATIONS`, default 20000, and `HOOKS_BENCH_SENDERS`, default 8, to vary it.)

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mttrly_central::config::Config;
use mttrly_central::db::alerts::AlertFilter;
use mttrly_central::hooks::AlertmanagerHook;
use mttrly_central::server::start;
use mttrly_core::tools::servers::AlertStatus;
use mttrly_proto::central::v1::AddServerRequest;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use serde_json::{Value, json};

/// Alerts per notification.
const ALERTS: usize = 10;

/// Servers the alerts spread over (the default plan allows 9).
const SERVERS: usize = 8;

/// The variable holding the bearer token: one Cargo sets when it runs a bench (a bench cannot set
/// variables: `unsafe_code` is forbidden).
const TOKEN_ENV: &str = "CARGO_PKG_NAME";

fn authed<T>(token: &str, body: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// Notification `n` with `status`: alerts with fingerprints `n*10 .. n*10+9`, over the servers.
fn notification(n: usize, status: &str) -> Vec<u8> {
    let alerts: Vec<Value> = (0..ALERTS)
        .map(|i| {
            let id = n * ALERTS + i;
            json!({
                "status": status,
                "labels": { "alertname": "DiskFull", "instance": format!("web-{}:9100", id % SERVERS),
                    "job": "node", "severity": "warning", "mountpoint": format!("/data{id}") },
                "annotations": { "summary": "Disk almost full", "description": "Over 90% used." },
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": if status == "resolved" { "2026-12-01T11:00:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
                "fingerprint": format!("{id:016x}"),
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "receiver": "mttrly", "status": status, "alerts": alerts,
        "groupLabels": { "alertname": "DiskFull" }, "commonLabels": { "alertname": "DiskFull" },
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"DiskFull\",n=\"{n}\"}}"), "truncatedAlerts": 0
    }))
    .unwrap()
}

/// CPU seconds used so far by this process's threads, by thread name (from `/proc`), so a pass's
/// cost per notification can be read apart from the rest of a busy machine. Sender threads are
/// named `sender`; central's are `tokio-rt-worker` (runtime and blocking pool: HTTP, JSON, the
/// alert writer's transactions), `mttrly-journal` (audit rows and notifications), `mttrly-db-read…`.
fn thread_cpu() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += ticks / 100.0;
    }
    out
}

/// What the receiver answered, summed over a pass.
#[derive(Default)]
struct Totals {
    opened: AtomicU64,
    already_open: AtomicU64,
    resolved: AtomicU64,
    failed: AtomicU64,
}

/// Sends notifications `0..count` with `status` from `senders` threads and prints the rate and
/// the latency of each; returns notifications per second.
fn pass(url: &str, token: &str, count: usize, senders: usize, status: &'static str, totals: &Arc<Totals>) -> f64 {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..count).map(|n| notification(n, status)).collect());
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let (bodies, totals, url, auth) =
                (Arc::clone(&bodies), Arc::clone(totals), url.to_owned(), format!("Bearer {token}"));
            std::thread::Builder::new()
                .name("sender".into())
                .spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(30)))
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut latencies = Vec::new();
                    for body in bodies.iter().skip(s).step_by(senders) {
                        let t = Instant::now();
                        let mut resp = agent
                            .post(&url)
                            .header("Authorization", &auth)
                            .header("Content-Type", "application/json")
                            .send(&body[..])
                            .unwrap();
                        let text = resp.body_mut().read_to_string().unwrap();
                        latencies.push(t.elapsed());
                        if !resp.status().is_success() {
                            totals.failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let outcome: Value = serde_json::from_str(&text).unwrap();
                        let n = |k: &str| outcome[k].as_u64().unwrap_or(0);
                        totals.opened.fetch_add(n("opened"), Ordering::Relaxed);
                        totals.already_open.fetch_add(n("already_open"), Ordering::Relaxed);
                        totals.resolved.fetch_add(n("resolved"), Ordering::Relaxed);
                    }
                    latencies
                })
                .unwrap()
        })
        .collect();
    let mut latencies: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    let cpu: Vec<(String, f64)> = thread_cpu()
        .into_iter()
        .map(|(name, after)| {
            let spent = after - cpu_before.get(&name).copied().unwrap_or(0.0);
            (name, spent)
        })
        .filter(|(_, spent)| *spent > 0.0)
        .collect();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    let rate = count as f64 / took.as_secs_f64();
    println!(
        "{status:>8}: {count} notifications ({} alerts) in {:.2}s = {rate:.0} notifications/s \
         ({:.0} alerts/s); latency median {:.2} ms, p99 {:.2} ms ({senders} senders)",
        count * ALERTS,
        took.as_secs_f64(),
        rate * ALERTS as f64,
        p(0.5),
        p(0.99),
    );
    let central: f64 = cpu.iter().filter(|(name, _)| name != "sender").map(|(_, spent)| spent).sum();
    println!(
        "          central CPU {:.0} µs per notification ({:.2} cores; capacity on 2 cores ≈ {:.0}/s): {}",
        central * 1e6 / count as f64,
        central / took.as_secs_f64(),
        2.0 * count as f64 / central,
        cpu.iter()
            .map(|(name, spent)| format!("{name} {:.0} µs", spent * 1e6 / count as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rate
}

fn main() {
    let count: usize = std::env::var("HOOKS_BENCH_NOTIFICATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let senders: usize = std::env::var("HOOKS_BENCH_SENDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: TOKEN_ENV.into() });
    let admin = mttrly_central::init::init(&cfg, None).unwrap().admin_token;
    let token = std::env::var(TOKEN_ENV).expect("run through cargo bench, which sets CARGO_PKG_NAME");
    let central = runtime.block_on(start(cfg)).unwrap();
    let account = runtime.block_on(central.central.db.first_account()).unwrap().unwrap().0;
    runtime.block_on(async {
        let channel =
            tonic::transport::Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
        for i in 0..SERVERS {
            ServerServiceClient::new(channel.clone())
                .add_server(authed(&admin, AddServerRequest { name: format!("web-{i}"), environment: 3 }))
                .await
                .unwrap();
        }
    });
    let url = format!("{}/hooks/alertmanager", central.http_url());
    let count_alerts = |status: AlertStatus| {
        let filter = AlertFilter {
            status: Some(status),
            limit: u32::try_from(count * ALERTS + 1).unwrap(),
            ..AlertFilter::default()
        };
        let alerts = runtime.block_on(central.central.db.account(&account).alerts().list(&filter)).unwrap();
        let distinct: std::collections::HashSet<_> =
            alerts.iter().map(|a| (a.server_id.clone(), a.summary.clone())).collect();
        (alerts.len(), distinct.len())
    };
    let expected = count * ALERTS;
    println!("inbound Alertmanager notifications, {ALERTS} alerts each, over {SERVERS} servers, loopback HTTP");

    let totals = Arc::new(Totals::default());
    let new = pass(&url, &token, count, senders, "firing", &totals);
    let (open, distinct) = count_alerts(AlertStatus::Open);
    println!(
        "  after: {open} open alerts ({distinct} distinct), expected {expected}; receiver said opened {}",
        totals.opened.load(Ordering::Relaxed)
    );
    assert_eq!((open, distinct, totals.opened.load(Ordering::Relaxed)), (expected, expected, expected as u64));

    let totals = Arc::new(Totals::default());
    let repeat = pass(&url, &token, count, senders, "firing", &totals);
    let (open, _) = count_alerts(AlertStatus::Open);
    println!(
        "  after the repeats: {open} open alerts; receiver said already open {}, opened {}",
        totals.already_open.load(Ordering::Relaxed),
        totals.opened.load(Ordering::Relaxed)
    );
    assert_eq!(
        (open, totals.already_open.load(Ordering::Relaxed), totals.opened.load(Ordering::Relaxed)),
        (expected, expected as u64, 0)
    );

    let totals = Arc::new(Totals::default());
    let resolve = pass(&url, &token, count, senders, "resolved", &totals);
    let (open, _) = count_alerts(AlertStatus::Open);
    let (resolved, _) = count_alerts(AlertStatus::Resolved);
    println!(
        "  after: {open} open, {resolved} resolved; receiver said resolved {}",
        totals.resolved.load(Ordering::Relaxed)
    );
    assert_eq!((open, resolved, totals.resolved.load(Ordering::Relaxed)), (0, expected, expected as u64));
    assert_eq!(totals.failed.load(Ordering::Relaxed), 0, "failed deliveries");
    println!("slowest pass: {:.0} notifications/s (goal 1000)", new.min(repeat).min(resolve));
    runtime.block_on(central.shutdown());
}
