//! The audit log's SQL: reading it, and appending to its chains (the journal writer's part,
//! `group_commit.rs`, for `crate::audit::writer`).

use std::collections::HashMap;

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, ServerId, UserId};
use mttrly_core::tools::actions::AuditEntry;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::internal;
use crate::audit::chain::{self, ChainedRow, Verification};
use crate::db::audit::{ActorFilter, AuditFilter, AuditPage};
use crate::db::timestamp;

fn entry(r: &Row<'_>) -> rusqlite::Result<Option<AuditEntry>> {
    let seq: i64 = r.get(0)?;
    let server: Option<String> = r.get(2)?;
    let actor: String = r.get(3)?;
    let source: String = r.get(4)?;
    let kind: String = r.get(5)?;
    let parameters: String = r.get(7)?;
    let outcome: String = r.get(8)?;
    let parsed = (|| {
        Some(AuditEntry {
            seq: u64::try_from(seq).ok()?,
            at: timestamp(r.get(1).ok()?),
            server_id: match server {
                Some(s) => Some(ServerId::parse(&s).ok()?),
                None => None,
            },
            actor: serde_json::from_str(&actor).ok()?,
            source: source.parse().ok()?,
            kind: serde_json::from_value(serde_json::Value::String(kind)).ok()?,
            subject: r.get(6).ok()?,
            parameters: serde_json::from_str(&parameters).ok()?,
            outcome: serde_json::from_str(&outcome).ok()?,
            duration_ms: r.get::<_, Option<i64>>(9).ok()?.map(|d| u64::try_from(d).unwrap_or(0)),
        })
    })();
    Ok(parsed)
}

const COLUMNS: &str =
    "seq, at, server_id, actor_json, source, kind, subject, parameters_json, outcome_json, duration_ms";

/// The account's `AddUser` and `InviteUser` rows naming `user`, newest first, at or before
/// `until_ms` (the subject index narrows to those two subjects; the user is matched in the
/// parameters, where both events record it).
pub(in crate::db) fn introductions(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    until_ms: i64,
) -> Result<Vec<AuditEntry>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE account_id = ?1 AND subject IN ('AddUser', 'InviteUser') AND at <= ?3
               AND json_extract(parameters_json, '$.user_id') = ?2
             ORDER BY seq DESC"
        ))
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), user.as_str(), until_ms], entry).map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(e) = r.map_err(internal)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// The account's audit rows matching `filter`, newest first.
///
/// The statement is assembled from fixed fragments, one per filter present, and every value is
/// bound as a parameter. Server and subject narrow through their indexes (SQLite picks the one
/// that matches); the actor, source, kind and time filters are checked on the rows the chosen
/// index walks, newest first, so a page costs the rows walked until `limit` match.
pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, MttrlyError> {
    Ok(page(conn, account, filter)?.entries)
}

/// One page of [`list`], with where the scan stopped: a row that no longer decodes is left out
/// of `entries` but still counts as scanned, so paging by `last_scanned` goes on past it.
pub(in crate::db) fn page(
    conn: &Connection,
    account: &AccountId,
    filter: &AuditFilter,
) -> Result<AuditPage, MttrlyError> {
    let (sql, values) = list_query(account, filter);
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(internal)?;
    let mut page = AuditPage::default();
    while let Some(row) = rows.next().map_err(internal)? {
        page.scanned += 1;
        page.last_scanned = row.get::<_, i64>(0).ok().and_then(|s| u64::try_from(s).ok()).or(page.last_scanned);
        match entry(row).map_err(internal)? {
            Some(e) => page.entries.push(e),
            None => page.undecodable += 1,
        }
    }
    Ok(page)
}

/// The SQL for [`list`] and its parameters, in order.
fn list_query(account: &AccountId, filter: &AuditFilter) -> (String, Vec<SqlValue>) {
    let before = filter.before_seq.map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE account_id = ?");
    let mut values = vec![SqlValue::Text(account.to_string())];
    let mut and = |clause: &str, value: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(server) = &filter.server_id {
        and("server_id = ?", SqlValue::Text(server.to_string()));
    }
    if let Some(subject) = &filter.subject {
        and("subject = ?", SqlValue::Text(subject.clone()));
    }
    and("seq < ?", SqlValue::Integer(before));
    match &filter.actor {
        None => {}
        Some(ActorFilter::AnyHuman) => and("json_extract(actor_json, '$.type') = ?", text("human")),
        Some(ActorFilter::AnyAssistant) => and("json_extract(actor_json, '$.type') = ?", text("assistant")),
        Some(ActorFilter::Agent) => and("json_extract(actor_json, '$.type') = ?", text("agent")),
        Some(ActorFilter::System) => and("json_extract(actor_json, '$.type') = ?", text("system")),
        Some(ActorFilter::Human(user)) => {
            and("json_extract(actor_json, '$.type') = ?", text("human"));
            and("json_extract(actor_json, '$.user_id') = ?", text(user.as_str()));
        }
        Some(ActorFilter::AssistantFor(user)) => {
            and("json_extract(actor_json, '$.type') = ?", text("assistant"));
            and("json_extract(actor_json, '$.on_behalf_of') = ?", text(user.as_str()));
        }
    }
    if let Some(source) = filter.source {
        and("source = ?", text(source.as_str()));
    }
    if let Some(kind) = filter.kind {
        and("kind = ?", text(kind.as_str()));
    }
    if let Some(since) = filter.since_ms {
        and("at >= ?", SqlValue::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        and("at < ?", SqlValue::Integer(until));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    values.push(SqlValue::Integer(i64::from(filter.limit)));
    (sql, values)
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

/// The account's stored chain head (its last row's `seq` and hash), `None` before its first row:
/// one indexed row, so a caller can tell whether the log moved without reading it.
pub(in crate::db) fn head(conn: &Connection, account: &AccountId) -> Result<Option<(u64, [u8; 32])>, MttrlyError> {
    Ok(conn
        .query_row("SELECT seq, hash FROM audit_heads WHERE account_id = ?1", params![account.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()
        .map_err(internal)?
        .map(|(seq, hash)| {
            (u64::try_from(seq).unwrap_or(0), <[u8; 32]>::try_from(hash.as_slice()).unwrap_or_default())
        }))
}

/// Re-computes the account's whole chain, streaming rows in order.
pub(in crate::db) fn verify(conn: &Connection, account: &AccountId) -> Result<Verification, MttrlyError> {
    let head = head(conn, account)?;
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, server_id, actor_json, source, kind, subject, parameters_json, outcome_json, duration_ms,
             prev_hash, hash FROM audit_log WHERE account_id = ?1 ORDER BY seq",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| {
            let bytes = |i: usize| -> rusqlite::Result<[u8; 32]> {
                let v: Vec<u8> = r.get(i)?;
                Ok(<[u8; 32]>::try_from(v.as_slice()).unwrap_or_default())
            };
            Ok((
                ChainedRow {
                    seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    at: r.get(1)?,
                    server_id: r.get(2)?,
                    actor_json: r.get(3)?,
                    source: r.get(4)?,
                    kind: r.get(5)?,
                    subject: r.get(6)?,
                    parameters_json: r.get(7)?,
                    outcome_json: r.get(8)?,
                    duration_ms: r.get(9)?,
                },
                bytes(10)?,
                bytes(11)?,
            ))
        })
        .map_err(internal)?;
    let mut failure = None;
    let verification = chain::verify(
        account.as_str(),
        rows.map_while(|r| match r {
            Ok(row) => Some(row),
            Err(e) => {
                failure = Some(e);
                None
            }
        }),
        head,
    );
    match failure {
        Some(e) => Err(internal(e)),
        None => Ok(verification),
    }
}

/// Each account's chain head (last `seq` and hash) as the journal writer knows it: read from
/// `audit_heads` on first use, then kept in memory, so an append reads nothing.
pub(in crate::db) type Heads = HashMap<AccountId, (u64, [u8; 32])>;

/// Rows as stored, each with its hash, in the order they were appended.
pub(in crate::db) type Stored = Vec<(ChainedRow, [u8; 32])>;

/// Appends `rows` to their accounts' chains inside the caller's transaction, in order: each gets
/// the next `seq` of its account and its hash, and `audit_heads` is moved to each account's last
/// row. Returns the rows as stored with their hashes, and the new heads, which the caller merges
/// into `heads` only once the transaction has committed.
pub(in crate::db) fn append(
    tx: &Connection,
    heads: &Heads,
    rows: Vec<(&AccountId, ChainedRow)>,
) -> Result<(Stored, Heads), MttrlyError> {
    let mut stored = Vec::with_capacity(rows.len());
    let mut touched = Heads::new();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO audit_log (account_id, seq, at, server_id, actor_json, source, kind, subject,
                     parameters_json, outcome_json, duration_ms, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(internal)?;
    for (account, mut row) in rows {
        let (seq, prev) = match touched.get(account).or_else(|| heads.get(account)) {
            Some(known) => *known,
            None => head(tx, account)?.unwrap_or((0, chain::GENESIS)),
        };
        row.seq = seq + 1;
        let hash = chain::row_hash(&prev, account.as_str(), &row);
        insert
            .execute(params![
                account.as_str(),
                i64::try_from(row.seq).unwrap_or(i64::MAX),
                row.at,
                row.server_id,
                row.actor_json,
                row.source,
                row.kind,
                row.subject,
                row.parameters_json,
                row.outcome_json,
                row.duration_ms,
                prev.as_slice(),
                hash.as_slice()
            ])
            .map_err(internal)?;
        touched.insert(account.clone(), (row.seq, hash));
        stored.push((row, hash));
    }
    drop(insert);
    // Cached like the insert: parsing this upsert again for every batch was a visible share of
    // the writer's time under load, where batches are small.
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO audit_heads (account_id, seq, hash) VALUES (?1, ?2, ?3)
                     ON CONFLICT(account_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .map_err(internal)?;
    for (account, (seq, hash)) in &touched {
        upsert
            .execute(params![account.as_str(), i64::try_from(*seq).unwrap_or(i64::MAX), hash.as_slice()])
            .map_err(internal)?;
    }
    Ok((stored, touched))
}

/// Deletes rows older than `cutoff` (ms) for one account. The chain stays verifiable: the oldest
/// remaining row's stored link is the new anchor.
pub(in crate::db) fn purge(conn: &Connection, account: &str, cutoff: i64) -> Result<usize, MttrlyError> {
    conn.execute("DELETE FROM audit_log WHERE account_id = ?1 AND at < ?2", params![account, cutoff]).map_err(internal)
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::{Duration, Instant};

    use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
    use mttrly_core::ids::{AssistantSessionId, ServerId};
    use mttrly_core::{Plan, Source};

    use crate::audit::AuditLog;
    use crate::db::Db;
    use crate::db::audit::{ActorFilter, AuditFilter};

    /// An API-call row `row {i}` of `account` by the system: committed at once by the journal
    /// writer (nothing about it can wait).
    pub(in crate::db) fn api_call(account: &mttrly_core::ids::AccountId, i: i64) -> AuditEvent {
        AuditEvent {
            at: jiff::Timestamp::now(),
            account_id: account.clone(),
            server_id: None,
            actor: AuditActor::System,
            source: Source::Cli,
            kind: AuditKind::ApiCall,
            subject: format!("row {i}"),
            parameters: serde_json::json!({ "i": i }),
            outcome: AuditOutcome::Ok,
            duration_ms: None,
        }
    }

    fn median(mut samples: Vec<Duration>) -> f64 {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64() * 1000.0
    }

    /// A row that no longer decodes is counted but not returned, and paging goes on past it: the
    /// dashboard's "Older" link and the exports page on where the scan stopped.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn paging_goes_on_past_an_undecodable_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central.db");
        let db = Db::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let (account, _user) = rt.block_on(db.create_tenant("t", Plan::DeploymentCrew, "t", &[0; 32])).unwrap();
        let audit = AuditLog::start(&db, crate::events::Bus::default());
        for i in 0..5 {
            audit.append(api_call(&account, i));
        }
        rt.block_on(audit.flush());
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("UPDATE audit_log SET actor_json = '{' WHERE subject = 'row 2'", []).unwrap();
        let log = db.account(&account);
        let mut filter = AuditFilter { limit: 2, ..AuditFilter::default() };
        let (mut subjects, mut undecodable) = (Vec::new(), 0);
        for _ in 0..10 {
            let page = rt.block_on(log.audit().page(&filter)).unwrap();
            subjects.extend(page.entries.iter().map(|e| e.subject.clone()));
            undecodable += page.undecodable;
            match page.older(filter.limit) {
                Some(older) => filter.before_seq = Some(older),
                None => break,
            }
        }
        assert_eq!(subjects, ["row 4", "row 3", "row 1", "row 0"]);
        assert_eq!(undecodable, 1);
    }

    /// What the dashboard's audit filters and the chain's verification cost on a log of
    /// `MTTRLY_AUDIT_ROWS` rows (default 100 000), in a release build:
    /// `cargo test --release -p mttrly-central --lib -- --ignored --nocapture audit_filters_and_verify_timing`.
    #[test]
    #[ignore = "a measurement, not a check: run by hand in a release build"]
    #[allow(clippy::unwrap_used, clippy::cast_possible_wrap, clippy::print_stdout)]
    fn audit_filters_and_verify_timing() {
        let rows: usize = std::env::var("MTTRLY_AUDIT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central.db");
        let db = Db::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let (account, user) = rt.block_on(db.create_tenant("t", Plan::DeploymentCrew, "t", &[0; 32])).unwrap();
        let servers: Vec<ServerId> = (0..100).map(|_| ServerId::generate()).collect();
        let audit = AuditLog::start(&db, crate::events::Bus::default());
        let session = AssistantSessionId::generate();
        let start_ms = jiff::Timestamp::now().as_millisecond() - rows as i64 * 1000;
        for i in 0..rows {
            // Mostly assistant tool calls over MCP; one row in a thousand a CLI decision by a person.
            let rare = i % 1000 == 0;
            audit.append(AuditEvent {
                at: jiff::Timestamp::from_millisecond(start_ms + i as i64 * 1000).unwrap(),
                account_id: account.clone(),
                server_id: Some(servers[i % servers.len()].clone()),
                actor: if rare {
                    AuditActor::Human { user_id: user.clone(), name: "t".into() }
                } else {
                    AuditActor::Assistant {
                        session_id: session.clone(),
                        client_name: "claude-code".into(),
                        on_behalf_of: user.clone(),
                    }
                },
                source: if rare { Source::Cli } else { Source::Mcp },
                kind: if rare { AuditKind::ApprovalDecision } else { AuditKind::ToolCall },
                subject: "mttrly_get_server_status".into(),
                parameters: serde_json::json!({ "n": i }),
                outcome: AuditOutcome::Ok,
                duration_ms: Some(2),
            });
        }
        rt.block_on(audit.flush());
        let log = db.account(&account);
        let middle = start_ms + (rows as i64 / 2) * 1000;
        let cases: Vec<(&str, AuditFilter)> = vec![
            ("no filter", AuditFilter::default()),
            ("server (index)", AuditFilter { server_id: Some(servers[7].clone()), ..AuditFilter::default() }),
            ("source=mcp (common)", AuditFilter { source: Some(Source::Mcp), ..AuditFilter::default() }),
            ("source=cli (1 in 1000)", AuditFilter { source: Some(Source::Cli), ..AuditFilter::default() }),
            ("source=slack (none)", AuditFilter { source: Some(Source::Slack), ..AuditFilter::default() }),
            (
                "kind=approval_decision (1 in 1000)",
                AuditFilter { kind: Some(AuditKind::ApprovalDecision), ..AuditFilter::default() },
            ),
            (
                "actor=human:USER (1 in 1000)",
                AuditFilter { actor: Some(ActorFilter::Human(user.clone())), ..AuditFilter::default() },
            ),
            (
                "actor=assistant (common)",
                AuditFilter { actor: Some(ActorFilter::AnyAssistant), ..AuditFilter::default() },
            ),
            ("time: the older half", AuditFilter { until_ms: Some(middle), ..AuditFilter::default() }),
            (
                "time: an hour in the middle",
                AuditFilter { since_ms: Some(middle), until_ms: Some(middle + 3_600_000), ..AuditFilter::default() },
            ),
        ];
        for (name, filter) in cases {
            let filter = AuditFilter { limit: 101, ..filter };
            let mut samples = Vec::new();
            let mut found = 0;
            for _ in 0..9 {
                let t = Instant::now();
                found = rt.block_on(log.audit().list(&filter)).unwrap().len();
                samples.push(t.elapsed());
            }
            println!("{rows} rows, {name}: {found} rows in {:.1} ms (median of 9)", median(samples));
        }
        let export = AuditFilter { limit: 1000, ..AuditFilter::default() };
        let t = Instant::now();
        let mut page = export.clone();
        let mut total = 0;
        loop {
            let got = rt.block_on(log.audit().list(&page)).unwrap();
            total += got.len();
            match got.last() {
                Some(last) if got.len() == 1000 => page.before_seq = Some(last.seq),
                _ => break,
            }
        }
        println!(
            "{rows} rows, export reads (1000 a read): {total} rows in {:.0} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let mut samples = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let v = rt.block_on(log.audit().verify()).unwrap();
            assert!(v.first_bad.is_none());
            samples.push(t.elapsed());
        }
        println!("{rows} rows, verify: {:.0} ms (median of 5)", median(samples));
        drop(audit);
    }
}
