//! Incident memory (issue 15), release build, the storage layer on a real SQLite file:
//!
//! - `mttrly_get_server_timeline`'s query: the first page (100 items) and a deep page of a server
//!   with 1,000,000 audit rows (plus alerts and actions), merged from every source;
//! - `mttrly_search_knowledge`'s query over 10,000 entries: median, p90 and p99, on a worst-case
//!   corpus (70 words, every query matching thousands), with a server named (its entries first)
//!   and without, and on a Zipf-distributed one (5,000 words, like prose); beside them the
//!   previous ranked statement, whose join order the planner chose from the statistics (a few
//!   queries: each takes seconds), and the same search on a `unicode61` index beside the
//!   production `porter unicode61` one.
//!
//! The database is ANALYZEd after the audit rows are loaded and before any knowledge exists: the
//! statistics say the knowledge table is empty, as they would on a central that ran ANALYZE early
//! (with none at all the planner chose the same way). The search must not depend on them.
//!
//! cargo bench -p mttrly-central --bench memory
//! (MEMORY_BENCH_UNPINNED=N: how many queries the previous statement runs, 3 by default.)

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::time::{Duration, Instant};

use mttrly_central::db::Db;
use mttrly_central::db::knowledge::{KnowledgeSearch, NewKnowledge};
use mttrly_central::db::servers::Registered;
use mttrly_central::db::timeline::TimelineQuery;
use mttrly_core::ids::KnowledgeId;
use mttrly_core::tools::knowledge::{KnowledgeKind, KnowledgeSource, fts_match, search_terms};
use mttrly_core::tools::timeline::{TimelineEvent, TimelineItem};
use mttrly_core::{Environment, Plan, Principal};

const AUDIT_ROWS: i64 = 1_000_000;
const DOCS: usize = 10_000;

fn report(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!("{name}: median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms ({} runs)", p(0.5), p(0.9), p(0.99), samples.len());
    p(0.5)
}

/// A small deterministic generator (xorshift), so every run indexes the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.next() % words.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "nginx",
    "502",
    "upstream",
    "timeout",
    "disk",
    "full",
    "var",
    "log",
    "rotate",
    "postgres",
    "replication",
    "lag",
    "memory",
    "oom",
    "killer",
    "restart",
    "restarting",
    "deploy",
    "rollback",
    "checkout",
    "api",
    "latency",
    "cpu",
    "load",
    "certificate",
    "expired",
    "dns",
    "resolver",
    "cache",
    "redis",
    "eviction",
    "queue",
    "backlog",
    "worker",
    "crash",
    "loop",
    "systemd",
    "unit",
    "failed",
    "kernel",
    "swap",
    "inode",
    "exhausted",
    "connection",
    "refused",
    "firewall",
    "port",
    "tls",
    "handshake",
    "error",
    "rate",
    "spike",
    "traffic",
    "burst",
    "config",
    "drift",
    "cron",
    "job",
    "stuck",
    "lock",
    "deadlock",
    "index",
    "bloat",
    "vacuum",
    "backup",
    "snapshot",
    "restore",
    "volume",
];

fn text(rng: &mut Rng, words: usize) -> String {
    (0..words).map(|_| rng.pick(WORDS)).collect::<Vec<_>>().join(" ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let (account, user) = db.create_tenant("bench", Plan::DeploymentCrew, "admin", &[7; 32]).await.unwrap();
    let Registered::Added(server) = db
        .account(&account)
        .servers()
        .register("web-1", Environment::Production, &[8; 32], i64::MAX, 10)
        .await
        .unwrap()
    else {
        panic!("under the limit")
    };
    let Registered::Added(other) = db
        .account(&account)
        .servers()
        .register("web-2", Environment::Production, &[9; 32], i64::MAX, 10)
        .await
        .unwrap()
    else {
        panic!("under the limit")
    };

    // 1,000,000 audit rows on the server (a row every 100 ms over ~28 hours: mostly tool calls,
    // some alert copies and action creations the timeline leaves out), 200,000 on another server,
    // 2,000 alerts and 5,000 actions.
    let now = mttrly_central::db::now_ms();
    let start = now - AUDIT_ROWS * 100;
    let (acc, srv, oth, by) = (
        account.to_string(),
        server.to_string(),
        other.to_string(),
        serde_json::json!({ "type": "human", "user_id": user.as_str(), "name": "admin" }).to_string(),
    );
    let loaded = Instant::now();
    db.with_connection_for_tests(move |c| {
        let tx = c.transaction()?;
        {
            let mut audit = tx.prepare(
                "INSERT INTO audit_log (account_id, seq, at, server_id, actor_json, source, kind, subject,
                     parameters_json, outcome_json, duration_ms, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, '{\"type\":\"system\"}', 'mcp', ?5, ?6, '{}', '{\"status\":\"ok\"}', 3, x'00', x'00')",
            )?;
            for seq in 1..=AUDIT_ROWS + AUDIT_ROWS / 5 {
                let server = if seq % 6 == 0 { &oth } else { &srv };
                let at = start + seq * 83;
                let (kind, subject) = match seq % 10 {
                    0 => ("alert", "alt_0"),
                    1 => ("tool_call", "act_0"),
                    _ => ("tool_call", "mttrly_get_server_status"),
                };
                audit.execute(rusqlite::params![acc, seq, at, server, kind, subject])?;
            }
            let mut alerts = tx.prepare(
                "INSERT INTO alerts (id, account_id, server_id, rule, subject, severity, status, summary, opened_at, resolved_at)
                 VALUES (?1, ?2, ?3, 'cpu', ?4, 'warning', 'resolved', 'load high', ?5, ?6)",
            )?;
            for i in 0..2_000_i64 {
                let at = start + i * 50_000;
                alerts.execute(rusqlite::params![format!("alt_{i:032x}"), acc, srv, format!("s{i}"), at, at + 60_000])?;
            }
            let mut actions = tx.prepare(
                "INSERT INTO actions (id, account_id, server_id, environment, action_type, content_json, content_sha256,
                     description, requested_by_json, requested_via, status, approvals_required, created_at, updated_at, expires_at)
                 VALUES (?1, ?2, ?3, 'production', 'command', '{}', '00', 'Run `uptime`', ?4, 'mcp', 'succeeded', 0, ?5, ?5, ?5)",
            )?;
            for i in 0..5_000_i64 {
                let at = start + i * 20_000 + 7;
                actions.execute(rusqlite::params![format!("act_{i:032x}"), acc, srv, by, at])?;
            }
        }
        tx.commit()?;
        c.execute_batch("ANALYZE")?;
        Ok(())
    })
    .await
    .unwrap();
    println!("loaded 1.2M audit rows, 2k alerts, 5k actions in {:.1} s", loaded.elapsed().as_secs_f64());

    let timeline = db.account(&account).timeline();
    let query = |before| TimelineQuery {
        server_id: server.clone(),
        since_ms: now - 30 * 86_400_000,
        until_ms: None,
        before,
        events: TimelineEvent::ALL.to_vec(),
        limit: 101,
        oldest_first: false,
    };
    let first = timeline.page(&query(None)).await.unwrap();
    assert_eq!(first.len(), 101);
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let page = timeline.page(&query(None)).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(page.len(), 101);
    }
    let first_ms = report("timeline first page (100 items) of 1M audit rows", samples);
    // A deep page: from the middle of the history.
    let middle: TimelineItem = {
        let mut q = query(None);
        q.since_ms = start + AUDIT_ROWS * 40;
        q.until_ms = Some(start + AUDIT_ROWS * 42);
        q.limit = 1;
        timeline.page(&q).await.unwrap().remove(0)
    };
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let page = timeline.page(&query(Some(middle.key()))).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(page.len(), 101);
    }
    report("timeline page from a cursor mid-history", samples);

    // 10,000 knowledge entries of 60 to 260 words, a fifth about the server.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let author = Principal::Human { user_id: user.clone(), name: "admin".into() };
    let loaded = Instant::now();
    for i in 0..DOCS {
        let words = 60 + (rng.next() % 200) as usize;
        let body = text(&mut rng, words);
        let new = NewKnowledge {
            id: KnowledgeId::generate(),
            kind: [KnowledgeKind::Postmortem, KnowledgeKind::Recipe, KnowledgeKind::Note][i % 3],
            title: text(&mut rng, 6),
            content_sha256: format!("{i:064x}"),
            body,
            server_id: (i % 5 == 0).then(|| server.clone()),
            author: author.clone(),
            source: KnowledgeSource::Cli,
            created_at: now,
        };
        db.account(&account).knowledge().add(new, false).await.unwrap();
    }
    println!("indexed {DOCS} entries in {:.1} s", loaded.elapsed().as_secs_f64());
    let queries: Vec<String> = (0..500)
        .map(|_| {
            let words = 2 + (rng.next() % 2) as usize;
            text(&mut rng, words)
        })
        .collect();
    let knowledge = db.account(&account).knowledge();
    let mut search_ms = 0.0;
    for (with_server, what) in [(true, "a server named, its ~1,540 matches first"), (false, "no server")] {
        let (mut samples, mut hits) = (Vec::new(), 0);
        for q in &queries {
            let search = KnowledgeSearch {
                fts_match: fts_match(&search_terms(q)).unwrap(),
                server_id: with_server.then(|| server.clone()),
                server_only: false,
                kind: None,
                created_until_ms: None,
                limit: 10,
            };
            let t = Instant::now();
            hits += knowledge.search(&search).await.unwrap().len();
            samples.push(t.elapsed());
        }
        let median = report(
            &format!("knowledge search over {DOCS} entries, ~7,700 matches a query, {what} (top 10; {hits} hits)"),
            samples,
        );
        if with_server {
            search_ms = median;
        }
    }

    // The previous ranked statement, for the record: the same SQL with the join order left to
    // the planner, which read the (stale) statistics and ran the MATCH once per entry of the
    // account. Seconds a query: the first few only.
    let unpinned: usize = std::env::var("MEMORY_BENCH_UNPINNED").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let acc_raw = account.to_string();
    let srv_raw = server.to_string();
    let first_queries: Vec<String> = queries.iter().take(unpinned).cloned().collect();
    let previous = db
        .with_connection_for_tests(move |c| {
            const PREVIOUS: &str = "SELECT k.seq, CASE WHEN k.server_id = ?3 THEN 1 ELSE 0 END AS same
                 FROM knowledge_fts JOIN knowledge k ON k.seq = knowledge_fts.rowid
                 WHERE knowledge_fts MATCH ?1 AND k.account_id = ?2 AND k.removed_at IS NULL
                   AND (?4 IS NULL OR k.kind = ?4) AND (?5 = 0 OR k.server_id = ?3) AND k.created_at <= ?7
                 ORDER BY same DESC, bm25(knowledge_fts, 10.0, 1.0), k.seq LIMIT ?6";
            let args = |q: &str| {
                (
                    fts_match(&search_terms(q)).unwrap(),
                    acc_raw.clone(),
                    srv_raw.clone(),
                    None::<String>,
                    0,
                    10,
                    i64::MAX,
                )
            };
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {PREVIOUS}"))?
                .query_map(args("disk full"), |r| r.get::<_, String>(3))?
                .collect::<Result<_, _>>()?;
            let mut stmt = c.prepare(PREVIOUS)?;
            let mut out = Vec::new();
            for q in &first_queries {
                let args = args(q);
                let t = Instant::now();
                let n = stmt.query_map(args, |r| r.get::<_, i64>(0))?.count();
                out.push(t.elapsed());
                std::hint::black_box(n);
            }
            Ok((plan, out))
        })
        .await
        .unwrap();
    println!("  previous ranked statement's plan: {:?}", previous.0);
    if !previous.1.is_empty() {
        report(&format!("  previous ranked statement, first {unpinned} queries"), previous.1);
    }

    // A Zipf-distributed corpus in another tenant: 5,000 words, the k-th most common with weight
    // 1/k, queries drawn the same way (most match tens to hundreds of entries, a few thousands).
    let (zipf_account, zipf_user) =
        db.create_tenant("bench-zipf", Plan::DeploymentCrew, "admin", &[17; 32]).await.unwrap();
    let vocabulary: Vec<String> = (0..5_000).map(|i| format!("w{i}")).collect();
    let cumulative: Vec<f64> = (1..=vocabulary.len())
        .scan(0.0, |sum, k| {
            *sum += 1.0 / k as f64;
            Some(*sum)
        })
        .collect();
    let total = cumulative[cumulative.len() - 1];
    let zipf = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| {
                let u = (rng.next() % 1_000_000_007) as f64 / 1_000_000_007.0 * total;
                vocabulary[cumulative.partition_point(|c| *c < u).min(vocabulary.len() - 1)].as_str()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let zipf_author = Principal::Human { user_id: zipf_user, name: "admin".into() };
    for i in 0..DOCS {
        let words = 60 + (rng.next() % 200) as usize;
        let new = NewKnowledge {
            id: KnowledgeId::generate(),
            kind: KnowledgeKind::Note,
            title: zipf(&mut rng, 6),
            content_sha256: format!("{i:064x}"),
            body: zipf(&mut rng, words),
            server_id: None,
            author: zipf_author.clone(),
            source: KnowledgeSource::Cli,
            created_at: now,
        };
        db.account(&zipf_account).knowledge().add(new, false).await.unwrap();
    }
    let zipf_queries: Vec<String> = (0..500)
        .map(|_| {
            let words = 2 + (rng.next() % 2) as usize;
            zipf(&mut rng, words)
        })
        .collect();
    let zipf_knowledge = db.account(&zipf_account).knowledge();
    let (mut samples, mut hits) = (Vec::new(), 0);
    for q in &zipf_queries {
        let search = KnowledgeSearch {
            fts_match: fts_match(&search_terms(q)).unwrap(),
            server_id: None,
            server_only: false,
            kind: None,
            created_until_ms: None,
            limit: 10,
        };
        let t = Instant::now();
        hits += zipf_knowledge.search(&search).await.unwrap().len();
        samples.push(t.elapsed());
    }
    let zipf_ms = report(
        &format!("knowledge search over {DOCS} Zipf-distributed entries (2-3 words, top 10; {hits} hits)"),
        samples,
    );

    // The tokenizer: the same corpus in a `unicode61` index, the same queries, raw SQL on one
    // connection for both (so only the index differs).
    let queries_raw = queries.clone();
    let (porter, plain) = db
        .with_connection_for_tests(move |c| {
            c.execute_batch(
                "CREATE VIRTUAL TABLE bench_u61 USING fts5(title, body, content = 'knowledge', content_rowid = 'seq',
                     tokenize = 'unicode61 remove_diacritics 2');
                 INSERT INTO bench_u61 (bench_u61) VALUES ('rebuild');",
            )?;
            let time = |table: &str| -> rusqlite::Result<Vec<Duration>> {
                // CROSS JOIN: the index outermost, whatever the statistics say (see above).
                let mut stmt = c.prepare(&format!(
                    "SELECT k.id, snippet({table}, -1, '«', '»', '…', 32), bm25({table}, 10.0, 1.0) AS r
                     FROM {table} CROSS JOIN knowledge k ON k.seq = {table}.rowid WHERE {table} MATCH ?1
                     ORDER BY r LIMIT 10"
                ))?;
                let mut out = Vec::new();
                for q in &queries_raw {
                    let expr = fts_match(&search_terms(q)).unwrap();
                    let t = Instant::now();
                    let n = stmt.query_map([expr], |r| r.get::<_, String>(0))?.count();
                    out.push(t.elapsed());
                    std::hint::black_box(n);
                }
                Ok(out)
            };
            Ok((time("knowledge_fts")?, time("bench_u61")?))
        })
        .await
        .unwrap();
    report("  raw query, porter unicode61 (production)", porter);
    report("  raw query, unicode61", plain);

    assert!(first_ms < 10.0, "timeline first page {first_ms:.2} ms is over the 10 ms budget");
    assert!(zipf_ms < 5.0, "knowledge search {zipf_ms:.2} ms is over the 5 ms budget");
    if search_ms >= 5.0 {
        println!("worst-case corpus: {search_ms:.2} ms median, over the 5 ms bar (see BENCHMARKS.md)");
    }
}
