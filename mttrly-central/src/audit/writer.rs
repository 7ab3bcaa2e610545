//! The audit writer: one thread, its own SQLite connection, batched transactions.
//!
//! After a batch commits, the writer publishes one event per row on the event bus, in chain
//! order: subscribers only ever hear of rows that are durable, and per account in `seq` order.
//! Publishing never blocks (see [`crate::events::Bus`]), so a slow subscriber cannot slow the log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use mttrly_core::audit::AuditEvent;
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::chain::{ChainedRow, GENESIS, row_hash};
use crate::db::internal;
use crate::events::{Bus, Event, Recorded};

/// Most events written in one transaction.
const MAX_BATCH: usize = 4096;

enum Message {
    Append(Box<Recorded>, Option<oneshot::Sender<Result<u64, MttrlyError>>>),
    Flush(oneshot::Sender<()>),
}

/// A handle to the audit writer. Cheap to clone; the thread stops when every handle is gone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
}

/// The JSON text of `value` with every secret redacted: string by string with the keys as
/// context (`{"password": "…"}` whole, `"mysql -pX"` by content), so it stays valid JSON and a
/// PEM body inside a string is seen as lines, not as `\n` escapes.
fn redact_json(value: &serde_json::Value) -> String {
    let mut value = value.clone();
    mttrly_core::redactor::redact_json(&mut value);
    serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_owned())
}

/// The stored form of an event at `seq`.
pub fn stored_row(event: &AuditEvent, seq: u64) -> ChainedRow {
    ChainedRow {
        seq,
        at: event.at.as_millisecond(),
        server_id: event.server_id.as_ref().map(ToString::to_string),
        actor_json: serde_json::to_string(&event.actor).unwrap_or_default(),
        source: event.source.as_str().to_owned(),
        kind: event.kind.as_str().to_owned(),
        // The subject is free text for some events (a file path, a command): redacted too.
        subject: mttrly_core::redactor::redact(&event.subject).text.into_owned(),
        // Secrets never reach the audit log, whichever producer forgot to strip them.
        parameters_json: redact_json(&event.parameters),
        outcome_json: serde_json::to_string(&event.outcome).unwrap_or_default(),
        duration_ms: event.duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
    }
}

impl AuditLog {
    /// Starts the writer on the database at `path` (already migrated), publishing committed
    /// rows on `bus`.
    pub fn start(path: &Path, bus: Bus) -> Result<(Self, JoinHandle<()>), rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The audit log is the record a post-mortem trusts: every commit reaches the disk.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_handler(Some(crate::db::busy_wait))?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("mttrly-audit".to_owned())
            .spawn(move || Writer { conn, heads: HashMap::new(), bus }.run(&rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok((Self { tx }, handle))
    }

    /// Queues an event; it is written within milliseconds, in order, then published.
    pub fn append(&self, event: impl Into<Recorded>) {
        if self.tx.send(Message::Append(Box::new(event.into()), None)).is_err() {
            tracing::error!("audit writer stopped; an audit event was lost during shutdown");
        }
    }

    /// Writes an event and waits until it is committed; returns its sequence number.
    pub async fn append_durable(&self, event: impl Into<Recorded>) -> Result<u64, MttrlyError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message::Append(Box::new(event.into()), Some(ack)))
            .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "the audit log is not running"))?;
        done.await.map_err(|_| MttrlyError::new(ErrorCode::InternalError, "the audit log stopped"))?
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }
}

struct Writer {
    conn: Connection,
    heads: Heads,
    bus: Bus,
}

type Ack = oneshot::Sender<Result<u64, MttrlyError>>;
type Heads = HashMap<String, (u64, [u8; 32])>;

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Message>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut events = Vec::new();
            let mut flushes = Vec::new();
            for message in batch {
                match message {
                    Message::Append(event, ack) => events.push((event, ack)),
                    Message::Flush(ack) => flushes.push(ack),
                }
            }
            if !events.is_empty() {
                self.write(events);
            }
            for ack in flushes {
                let _ = ack.send(());
            }
        }
    }
}

/// An account's chain head: cached, or read from `audit_heads`.
fn head(heads: &mut Heads, tx: &Connection, account: &str) -> Result<(u64, [u8; 32]), MttrlyError> {
    if let Some(head) = heads.get(account) {
        return Ok(*head);
    }
    let stored = tx
        .query_row("SELECT seq, hash FROM audit_heads WHERE account_id = ?1", params![account], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()
        .map_err(internal)?;
    let head = match stored {
        Some((seq, hash)) => {
            (u64::try_from(seq).unwrap_or(0), <[u8; 32]>::try_from(hash.as_slice()).unwrap_or(GENESIS))
        }
        None => (0, GENESIS),
    };
    heads.insert(account.to_owned(), head);
    Ok(head)
}

impl Writer {
    fn write(&mut self, events: Vec<(Box<Recorded>, Option<Ack>)>) {
        let result = write_batch(&self.conn, &mut self.heads, &events);
        match result {
            Ok(rows) => {
                // Committed: publish in chain order (the batch's order), then answer the waiters,
                // so a caller of `append_durable` finds its event already on the bus.
                let mut acks = Vec::new();
                for ((recorded, ack), (row, hash)) in events.into_iter().zip(rows) {
                    if let Some(ack) = ack {
                        acks.push((ack, row.seq));
                    }
                    self.bus.publish(Event::committed(*recorded, row, hash));
                }
                for (ack, seq) in acks {
                    let _ = ack.send(Ok(seq));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, count = events.len(), "cannot write audit events");
                // The in-memory heads may be ahead of what was committed: reload them lazily.
                self.heads.clear();
                for (_, ack) in events {
                    if let Some(ack) = ack {
                        let _ = ack.send(Err(err.clone()));
                    }
                }
            }
        }
    }
}

/// Writes one batch in one transaction and returns the rows as stored, with their hashes.
fn write_batch(
    conn: &Connection,
    heads: &mut Heads,
    events: &[(Box<Recorded>, Option<Ack>)],
) -> Result<Vec<(ChainedRow, [u8; 32])>, MttrlyError> {
    // Redaction and serialisation are pure and most of a row's cost: done before the transaction,
    // so the database's one write lock (which every other writer waits for) is held only for the
    // inserts. Under inbound alert load this is what kept the alert writes waiting.
    let prepared: Vec<ChainedRow> = events.iter().map(|(recorded, _)| stored_row(&recorded.audit, 0)).collect();
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let mut rows = Vec::with_capacity(events.len());
    let mut touched: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO audit_log (account_id, seq, at, server_id, actor_json, source, kind, subject,
                         parameters_json, outcome_json, duration_ms, prev_hash, hash)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .map_err(internal)?;
        for ((recorded, _), mut row) in events.iter().zip(prepared) {
            let account = recorded.audit.account_id.to_string();
            let (seq, prev) = match touched.get(&account) {
                Some(head) => *head,
                None => head(heads, &tx, &account)?,
            };
            row.seq = seq + 1;
            let hash = row_hash(&prev, &account, &row);
            insert
                .execute(params![
                    account,
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
            touched.insert(account, (row.seq, hash));
            rows.push((row, hash));
        }
    }
    // Cached like the insert: parsing this upsert again for every batch was a visible share of
    // the writer's time under load, where batches are small.
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO audit_heads (account_id, seq, hash) VALUES (?1, ?2, ?3)
                     ON CONFLICT(account_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .map_err(internal)?;
    for (account, (seq, hash)) in &touched {
        upsert.execute(params![account, i64::try_from(*seq).unwrap_or(i64::MAX), hash.as_slice()]).map_err(internal)?;
    }
    drop(upsert);
    tx.commit().map_err(internal)?;
    heads.extend(touched);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use mttrly_core::audit::{AuditActor, AuditKind, AuditOutcome};
    use mttrly_core::ids::{AccountId, ServerId};
    use mttrly_core::principal::Source;

    use super::*;

    /// The probe's audit leak (F7): a command and a reason carrying secrets reached the
    /// hash-chained log, where they can never be removed.
    #[test]
    fn secrets_in_commands_reasons_and_subjects_are_redacted_before_the_row_exists() {
        let server = ServerId::generate();
        let event = AuditEvent {
            at: jiff::Timestamp::now(),
            account_id: AccountId::generate(),
            server_id: Some(server.clone()),
            actor: AuditActor::Agent { server_id: server },
            source: Source::Agent,
            kind: AuditKind::AgentEvent,
            subject: "/etc/app/env DB_PASS=FakeAuditS60".to_owned(),
            parameters: serde_json::json!({
                "command": "mysql -h db -pFakeAuditS61 app",
                "reason": "DB_PASS=FakeAuditS63 leaked; rotate the password FakeAuditS65",
                "env": { "password": "FakeAuditS66", "token_type": "Bearer" },
                "key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQFakeAuditS67\n-----END OPENSSH PRIVATE KEY-----",
            }),
            outcome: AuditOutcome::Ok,
            duration_ms: None,
        };
        let row = stored_row(&event, 1);
        let stored = format!("{} {}", row.subject, row.parameters_json);
        for secret in ["FakeAuditS60", "FakeAuditS61", "FakeAuditS63", "FakeAuditS65", "FakeAuditS66", "FakeAuditS67"] {
            assert!(!stored.contains(secret), "{secret} reached the audit row: {stored}");
        }
        let parameters: serde_json::Value = serde_json::from_str(&row.parameters_json).expect("still JSON");
        assert_eq!(parameters["env"]["token_type"], "Bearer");
        assert!(
            parameters["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n[REDACTED:"))
        );
    }
}
