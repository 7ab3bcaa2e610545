//! Audit log benchmark: sustained append rate with durability on (WAL, `synchronous = FULL`,
//! batched commits), and `audit list` for one server over a million rows.
//!
//! The writer publishes every committed row on the event bus; `--subscribers 0` runs without a
//! subscriber, 1 with one reading every event (a live view), 2 adds one that never reads (it
//! lags), to show what the bus costs the writer (its thread's CPU per row is printed).
//!
//! cargo bench -p mttrly-central --bench audit -- [--rows N] [--servers S] [--subscribers 0|1|2]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::time::{Duration, Instant};

use mttrly_central::audit::AuditLog;
use mttrly_central::db::{self, Db};
use mttrly_central::events::{Bus, Next};
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, ServerId, UserId};
use mttrly_core::{Plan, Source};

fn arg(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn event(account: &AccountId, server: &ServerId, user: &UserId, i: usize) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: Some(server.clone()),
        actor: AuditActor::Human { user_id: user.clone(), name: "bench".into() },
        source: Source::Mcp,
        kind: AuditKind::ToolCall,
        subject: "mttrly_get_server_status".into(),
        parameters: serde_json::json!({ "server_id": server.as_str(), "n": i }),
        outcome: AuditOutcome::Ok,
        duration_ms: Some(2),
    }
}

/// CPU time (user + system) of this process's thread named `name`, from /proc (Linux only):
/// what the writer itself spends, whatever else competes for the cores.
fn thread_cpu(name: &str) -> Option<Duration> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // Other threads come and go meanwhile: skip any that vanished.
        if std::fs::read_to_string(task.path().join("comm")).map_or(true, |comm| comm.trim() != name) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the `(comm)`: state is field 3, utime 14 and stime 15 (clock ticks, 100 Hz).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        return Some(Duration::from_millis(ticks * 10));
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn main() {
    let rows = arg("--rows", 1_000_000);
    let servers = arg("--servers", 100);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("central.db");
    let db = Db::open(&path).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (account, user) = runtime.block_on(db.create_tenant("bench", Plan::DeploymentCrew, "bench", &[0; 32])).unwrap();
    let server_ids: Vec<ServerId> = (0..servers).map(|_| ServerId::generate()).collect();
    let bus = Bus::default();
    let subscribers = arg("--subscribers", 2);
    let subscribed = subscribers > 0;
    let mut live = bus.subscribe();
    let stuck = (subscribers > 1).then(|| bus.subscribe());
    let reader = subscribed.then(|| {
        runtime.spawn(async move {
            let (mut seen, mut missed) = (0u64, 0u64);
            loop {
                match live.next().await {
                    Next::Event(_) => seen += 1,
                    Next::Lagged(n) => missed += n,
                    Next::Closed => return (seen, missed),
                }
            }
        })
    });
    let audit = AuditLog::start(&db, bus.clone());
    drop(bus);

    // Sustained append: producers enqueue, the writer commits batches durably.
    // The writer names its thread once it runs: a flush makes sure it does.
    runtime.block_on(audit.flush());
    let cpu_before = thread_cpu("mttrly-journal");
    let started = Instant::now();
    for i in 0..rows {
        audit.append(event(&account, &server_ids[i % servers], &user, i));
    }
    runtime.block_on(audit.flush());
    let took = started.elapsed();
    println!(
        "append: {rows} rows in {:.2}s = {:.0} rows/s (WAL, synchronous=FULL, batched commits; {})",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        match subscribers {
            0 => "bus: no subscriber",
            1 => "bus: one subscriber reading every event",
            _ => "bus: one subscriber reading every event, one never reading",
        }
    );
    if let (Some(before), Some(after)) = (cpu_before, thread_cpu("mttrly-journal")) {
        let cpu = after.saturating_sub(before);
        println!(
            "writer thread CPU: {:.2}s = {:.2} µs per row (capacity {:.0} rows/s per core)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / rows as f64,
            rows as f64 / cpu.as_secs_f64()
        );
    }

    // One caller waiting for each row to be durable (the approval path's pattern).
    let started = Instant::now();
    let n = 2_000;
    runtime.block_on(async {
        for i in 0..n {
            audit.append_durable(event(&account, &server_ids[0], &user, i)).await.unwrap();
        }
    });
    let took = started.elapsed();
    println!(
        "append_durable, one at a time: {:.0} rows/s, {:.2} ms each",
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / n as f64
    );

    // audit list for one server, newest 100 of its ~rows/servers entries.
    let target = server_ids[servers / 2].clone();
    let mut samples = Vec::new();
    for _ in 0..1_000 {
        let filter = db::audit::AuditFilter { server_id: Some(target.clone()), limit: 100, ..Default::default() };
        let t = Instant::now();
        let page = runtime.block_on(db.account(&account).audit().list(&filter)).unwrap();
        samples.push(t.elapsed());
        assert_eq!(page.len(), 100);
    }
    samples.sort();
    println!(
        "audit list, one server of {servers}, {} rows in the log: median {:.3} ms, p99 {:.3} ms",
        rows + n,
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.99).as_secs_f64() * 1000.0
    );

    let t = Instant::now();
    let v = runtime.block_on(db.account(&account).audit().verify()).unwrap();
    println!(
        "audit verify: {} rows in {:.2}s, intact: {}",
        v.rows_checked,
        t.elapsed().as_secs_f64(),
        v.first_bad.is_none()
    );
    // Everything is committed (flushed above): the bus closes with the log's last handle.
    drop(audit);
    drop(stuck);
    if let Some(reader) = reader {
        let (seen, missed) = runtime.block_on(reader).unwrap();
        println!("bus: the reading subscriber saw {seen} events and missed {missed}");
    }
}
