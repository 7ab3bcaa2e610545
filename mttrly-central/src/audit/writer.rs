//! The audit writer: what producers call to append to the log.
//!
//! Rows are written by the database's journal writer (`db/sqlite/group_commit.rs`: one thread,
//! batched `synchronous = FULL` transactions shared with the war room's publishes). After a batch
//! commits, each row is published as one event on the event bus, in chain order: subscribers only
//! ever hear of rows that are durable, and per account in `seq` order. Publishing never blocks
//! (see [`crate::events::Bus`]), so a slow subscriber cannot slow the log.

use mttrly_core::audit::AuditEvent;
use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use tokio::sync::oneshot;

use super::chain::ChainedRow;
use crate::db::Db;
use crate::db::audit::{Appended, AuditAppender};
use crate::events::{Bus, Event, Recorded};

/// A handle to the audit log's writer. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    appender: AuditAppender,
    bus: Bus,
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
    /// The audit log of `db`, publishing committed rows on `bus`. One per database: every row of
    /// an account's chain goes through the database's one journal writer.
    pub fn start(db: &Db, bus: Bus) -> Self {
        Self { appender: db.audit_appender(), bus }
    }

    /// `Err` when the journal writer has stopped: the item, its ack included, was dropped.
    fn send(&self, recorded: Recorded, ack: Option<Ack>) -> Result<(), MttrlyError> {
        self.appender.append(Box::new(Pending { recorded, ack, bus: self.bus.clone() }))
    }

    /// Queues an event; it is written within milliseconds, in order, then published.
    pub fn append(&self, event: impl Into<Recorded>) {
        if self.send(event.into(), None).is_err() {
            tracing::error!("audit writer stopped; an audit event was lost during shutdown");
        }
    }

    /// Writes an event and waits until it is committed; returns its sequence number.
    pub async fn append_durable(&self, event: impl Into<Recorded>) -> Result<u64, MttrlyError> {
        let (ack, done) = oneshot::channel();
        self.send(event.into(), Some(ack))
            .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "the audit log is not running"))?;
        done.await.map_err(|_| MttrlyError::new(ErrorCode::InternalError, "the audit log stopped"))?
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.appender.flush(ack).is_ok() {
            let _ = done.await;
        }
    }
}

type Ack = oneshot::Sender<Result<u64, MttrlyError>>;

/// One event on its way into the log: the journal writer asks it for its row, and tells it what
/// became of it once the batch has committed.
struct Pending {
    recorded: Recorded,
    ack: Option<Ack>,
    bus: Bus,
}

impl Appended for Pending {
    fn account(&self) -> &AccountId {
        &self.recorded.audit.account_id
    }

    fn row(&self) -> ChainedRow {
        stored_row(&self.recorded.audit, 0)
    }

    fn can_wait(&self) -> bool {
        self.ack.is_none() && self.recorded.can_wait()
    }

    fn committed(self: Box<Self>, result: Result<(ChainedRow, [u8; 32]), MttrlyError>) {
        let Pending { recorded, ack, bus } = *self;
        match result {
            Ok((row, hash)) => {
                let seq = row.seq;
                // Published before the waiter is answered, so a caller of `append_durable` finds
                // its event already on the bus.
                bus.publish(Event::committed(recorded, row, hash));
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(seq));
                }
            }
            Err(err) => {
                if let Some(ack) = ack {
                    let _ = ack.send(Err(err));
                }
            }
        }
    }
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
