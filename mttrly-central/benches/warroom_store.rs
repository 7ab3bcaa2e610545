//! The war room's storage path alone (issue 17: "10,000 notifications per second published,
//! durable"): `Db`'s publish on a real SQLite file in WAL mode, from many concurrent publishers
//! on a two-worker runtime, as central's request handlers call it. Each publish is checked
//! (channel, reply, thread) and written with one insert; the journal writer commits whatever
//! arrived together in one transaction made durable with `synchronous = FULL` (group commit,
//! `db/sqlite/group_commit.rs`). Afterwards every answered publish is counted in the
//! file.
//!
//! What it leaves out, measured by `tests/benches/warroom_outside.rs` from outside: HTTP, MCP,
//! authentication, redaction and the audit row.
//!
//! cargo bench -p mttrly-central --bench warroom_store -- [--publishers 64] [--seconds 5]

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use mttrly_central::db::Db;
use mttrly_central::db::warroom::NewNotification;
use mttrly_core::ids::{NotificationId, UserId};
use mttrly_core::tools::notify::{Priority, Sender};
use mttrly_core::{Plan, Role, Source};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

fn note(user: &UserId, publisher: u64, n: u64) -> NewNotification {
    NewNotification {
        id: NotificationId::generate(),
        channel: "load".into(),
        thread_id: Some(format!("load-{publisher}-{}", n % 16)),
        in_reply_to: None,
        title: format!("update {publisher}/{n}"),
        body: "**Status:** investigating\n- error rate 98%\n- connections 100/100".into(),
        priority: Priority::High,
        theme: Some("incident-update".into()),
        tags: vec!["p1".into(), "database".into()],
        server_id: None,
        sender: Sender {
            user_id: Some(user.clone()),
            name: "sre".into(),
            role: Some(Role::Operator),
            ai_tool: Some("claude-code".into()),
            via: Source::Mcp,
        },
        redactions: 0,
        published_at: 1_800_000_000_000 + i64::try_from(n).unwrap(),
    }
}

fn main() {
    let publishers = arg("--publishers", 64);
    let seconds = arg("--seconds", 5);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, _) = db.create_tenant("bench", Plan::DeploymentCrew, "sre", &[7; 32]).await.unwrap();
        let user = UserId::generate();
        let sender = note(&user, 0, 0).sender;
        db.account(&account).warroom().create_channel("load".into(), String::new(), sender, 1, 0).await.unwrap();

        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..publishers {
            let (db, account, user) = (db.clone(), account.clone(), user.clone());
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    db.account(&account).warroom().publish(note(&user, p, n)).await.unwrap();
                    samples.push(t.elapsed());
                    n += 1;
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
        let pct = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
        println!(
            "publish (storage): {publishers} publishers, {} notifications in {elapsed:.1?} = {:.0}/s; latency p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            all.len(),
            all.len() as f64 / elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            all[all.len() - 1],
        );
        let channels = db.account(&account).warroom().channels(0).await.unwrap();
        let stored = channels.iter().find(|c| c.channel == "load").map_or(0, |c| c.notifications);
        println!("stored in the file: {stored} (answered {})", all.len());
        assert_eq!(stored, all.len() as u64, "every answered publish is stored");
    });
}
