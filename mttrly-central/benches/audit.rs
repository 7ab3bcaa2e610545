//! Audit log benchmark: sustained append rate with durability on (WAL, `synchronous = FULL`,
//! batched commits), and `audit list` for one server over a million rows.
//!
//! cargo bench -p mttrly-central --bench audit -- [--rows N] [--servers S]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::time::{Duration, Instant};

use mttrly_central::audit::AuditLog;
use mttrly_central::db::{self, Db};
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
    let (account, user) = db
        .call_blocking(|conn| {
            let account = db::accounts::create_account(conn, "bench", Plan::DeploymentCrew)?;
            let user = db::accounts::create_user(conn, &account, "bench", db::accounts::Role::Admin)?;
            Ok((account, user))
        })
        .unwrap();
    let server_ids: Vec<ServerId> = (0..servers).map(|_| ServerId::generate()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (audit, writer) = AuditLog::start(&path).unwrap();

    // Sustained append: producers enqueue, the writer commits batches durably.
    let started = Instant::now();
    for i in 0..rows {
        audit.append(event(&account, &server_ids[i % servers], &user, i));
    }
    runtime.block_on(audit.flush());
    let took = started.elapsed();
    println!(
        "append: {rows} rows in {:.2}s = {:.0} rows/s (WAL, synchronous=FULL, batched commits)",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );

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
        let page = db.call_blocking(|conn| db::audit::list(conn, &account, &filter)).unwrap();
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
    let v = db.call_blocking(|conn| db::audit::verify(conn, &account)).unwrap();
    println!(
        "audit verify: {} rows in {:.2}s, intact: {}",
        v.rows_checked,
        t.elapsed().as_secs_f64(),
        v.first_bad.is_none()
    );
    drop(audit);
    writer.join().unwrap();
}
