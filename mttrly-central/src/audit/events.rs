//! Building audit events for the things central does, so every call site records the same shape.

use std::time::Duration;

use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::{MttrlyError, Source};
use serde_json::Value;

use crate::db::accounts::TokenOwner;

fn outcome<T>(result: &Result<T, MttrlyError>) -> AuditOutcome {
    match result {
        Ok(_) => AuditOutcome::Ok,
        Err(e) => AuditOutcome::Error { code: e.code() },
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The server a tool call is about, from its `server_id` argument.
pub fn server_of(arguments: &Value) -> Option<ServerId> {
    arguments.get("server_id").and_then(Value::as_str).and_then(|s| ServerId::parse(s).ok())
}

/// A tool call, read or execute, whatever its outcome.
pub fn tool_call<T>(
    caller: &TokenOwner,
    source: Source,
    tool: &str,
    arguments: &Value,
    result: &Result<T, MttrlyError>,
    took: Duration,
) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: caller.account_id.clone(),
        server_id: server_of(arguments),
        actor: caller.principal.clone().into(),
        source,
        kind: AuditKind::ToolCall,
        subject: tool.to_owned(),
        parameters: arguments.clone(),
        outcome: outcome(result),
        duration_ms: Some(millis(took)),
    }
}

/// A human's change through the API (never include secrets in `parameters`).
pub fn api_call<T>(
    caller: &TokenOwner,
    subject: &str,
    server_id: Option<ServerId>,
    parameters: Value,
    result: &Result<T, MttrlyError>,
) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: caller.account_id.clone(),
        server_id,
        actor: caller.principal.clone().into(),
        source: Source::Api,
        kind: AuditKind::ApiCall,
        subject: subject.to_owned(),
        parameters,
        outcome: outcome(result),
        duration_ms: None,
    }
}

/// Something an agent did or that happened to its connection.
pub fn agent_event(account: &AccountId, server: &ServerId, what: &str, details: Value, ok: bool) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: Some(server.clone()),
        actor: AuditActor::Agent { server_id: server.clone() },
        source: Source::Agent,
        kind: AuditKind::AgentEvent,
        subject: what.to_owned(),
        parameters: details,
        outcome: if ok { AuditOutcome::Ok } else { AuditOutcome::Error { code: mttrly_core::ErrorCode::AuthFailed } },
        duration_ms: None,
    }
}

/// An alert opening or resolving.
pub fn alert(account: &AccountId, server: &ServerId, subject: &str, details: Value) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: Some(server.clone()),
        actor: AuditActor::System,
        source: Source::Agent,
        kind: AuditKind::Alert,
        subject: subject.to_owned(),
        parameters: details,
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    }
}
