//! One readable log line per action event, so an operator watching central's output sees what
//! waits for them and what happened, with the command to act.
//!
//! Names and descriptions come from servers and requests: they are redacted (a description can
//! quote a command line) and escaped to one line before they reach the log.

use std::borrow::Cow;

use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::{action::ActionState, display, redactor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ActionRef, Bus, Decision, Event, Next, Payload};

/// Text from outside, safe for one log line: secrets redacted, controls escaped, capped.
fn clean(s: &str) -> String {
    let redacted = redactor::redact(s).text;
    display::cap(&display::text(&redacted), 200).into_owned()
}

/// `act_… on web-1 (production)`.
fn on(action: &ActionRef) -> String {
    format!("{} on {} ({})", action.id, clean(&action.server_name), action.environment.as_str())
}

fn who(actor: &AuditActor) -> Cow<'static, str> {
    match actor {
        AuditActor::Human { name, .. } => Cow::Owned(clean(name)),
        AuditActor::Assistant { client_name, .. } => Cow::Owned(format!("assistant {}", clean(client_name))),
        AuditActor::Agent { server_id } => Cow::Owned(format!("the agent of {server_id}")),
        AuditActor::System => Cow::Borrowed("central"),
    }
}

/// The line for an event, or `None` for events that are not about an action.
pub fn line(event: &Event) -> Option<String> {
    let refused = match event.outcome {
        AuditOutcome::Ok => None,
        AuditOutcome::Error { code } => Some(code),
    };
    Some(match &event.payload {
        Payload::ActionCreated(action) if action.status == ActionState::PendingApproval => format!(
            "action {} pending on {} ({}): {} — approve with: mttrly-cli actions approve {}",
            action.id,
            clean(&action.server_name),
            action.environment.as_str(),
            clean(&action.description),
            action.id
        ),
        Payload::ActionCreated(action) => format!(
            "action {} running at once on {} ({}): {} (read-only by policy, no approval needed)",
            action.id,
            clean(&action.server_name),
            action.environment.as_str(),
            clean(&action.description)
        ),
        Payload::ActionDecided { action, decision: Decision::FailedClosed } => {
            format!("action {} failed closed: no approval prompt could be delivered; it will not run", on(action))
        }
        Payload::ActionDecided { action, decision } => match refused {
            None => format!(
                "action {}: {} by {} via {}",
                on(action),
                past(*decision),
                who(&event.actor),
                event.source.as_str()
            ),
            Some(code) => format!(
                "action {}: {} by {} via {} refused ({code})",
                on(action),
                decision.as_str(),
                who(&event.actor),
                event.source.as_str()
            ),
        },
        Payload::ActionExecuted { action, status, exit_code } => {
            let exit = exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
            format!("action {}: {}{exit}", on(action), status.as_str())
        }
        Payload::ActionExpired { action } => format!("action {}: expired without a decision", on(action)),
        _ => return None,
    })
}

fn past(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
        Decision::Cancel => "cancelled",
        Decision::Withdraw => "withdrawn",
        Decision::FailedClosed => "failed closed",
    }
}

/// Logs every action event at info until the bus closes or `stop` changes.
pub fn spawn(bus: &Bus, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        loop {
            match events.next_or_stop(&mut stop).await {
                Next::Event(event) => {
                    if let Some(line) = line(&event) {
                        tracing::info!(target: "mttrly_central::actions", "{line}");
                    }
                }
                Next::Lagged(n) => {
                    tracing::warn!(
                        missed = n,
                        "the action log fell behind; see `mttrly-cli audit list` for the missed events"
                    );
                }
                Next::Closed => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mttrly_core::action::ActionContent;
    use mttrly_core::audit::AuditKind;
    use mttrly_core::ids::{AccountId, ActionId, ServerId, UserId};
    use mttrly_core::{Environment, ErrorCode, Principal, Source};

    use super::*;
    use crate::audit::chain::ChainedRow;
    use crate::db::actions::ActionRow;

    fn action(server_name: &str, description: &str) -> ActionRow {
        ActionRow {
            id: ActionId::generate(),
            account_id: AccountId::generate(),
            server_id: ServerId::generate(),
            server_name: server_name.into(),
            environment: Environment::Production,
            content_sha256: ActionContent::Decommission.content_sha256(),
            content: ActionContent::Decommission,
            description: description.into(),
            reason: None,
            requested_by: Principal::Human { user_id: UserId::generate(), name: "ana".into() },
            requested_via: Source::Cli,
            status: ActionState::PendingApproval,
            approvals_required: 1,
            created_at: 0,
            updated_at: 0,
            expires_at: 0,
            result: None,
        }
    }

    fn event(actor: AuditActor, outcome: AuditOutcome, payload: Payload) -> Event {
        Event {
            account_id: AccountId::generate(),
            seq: 1,
            hash: [0; 32],
            at: jiff::Timestamp::now(),
            server_id: None,
            actor,
            source: Source::Cli,
            kind: AuditKind::ApprovalDecision,
            outcome,
            row: ChainedRow {
                seq: 1,
                at: 0,
                server_id: None,
                actor_json: String::new(),
                source: String::new(),
                kind: String::new(),
                subject: String::new(),
                parameters_json: String::new(),
                outcome_json: String::new(),
                duration_ms: None,
            },
            payload,
        }
    }

    #[test]
    fn a_pending_action_names_where_what_and_the_command_that_approves_it() {
        let a = action("web-1", "decommission web-1");
        let line = line(&event(AuditActor::System, AuditOutcome::Ok, Payload::ActionCreated(Arc::new(a.clone()))));
        assert_eq!(
            line.as_deref(),
            Some(
                format!(
                    "action {0} pending on web-1 (production): decommission web-1 — approve with: mttrly-cli actions approve {0}",
                    a.id
                )
                .as_str()
            )
        );
    }

    #[test]
    fn decisions_executions_and_expiries_each_get_one_line() {
        let a = action("web-1", "restart nginx");
        let r = ActionRef::from(&a);
        let ana = AuditActor::Human { user_id: UserId::generate(), name: "ana".into() };
        let approved = Payload::ActionDecided { action: r.clone(), decision: Decision::Approve };
        assert_eq!(
            line(&event(ana.clone(), AuditOutcome::Ok, approved.clone())).unwrap(),
            format!("action {} on web-1 (production): approved by ana via cli", a.id)
        );
        let refused = line(&event(ana, AuditOutcome::Error { code: ErrorCode::Forbidden }, approved)).unwrap();
        assert!(refused.ends_with("approve by ana via cli refused (FORBIDDEN)"), "{refused}");
        let ran = Payload::ActionExecuted { action: r.clone(), status: ActionState::Succeeded, exit_code: Some(0) };
        assert!(line(&event(AuditActor::System, AuditOutcome::Ok, ran)).unwrap().ends_with(": succeeded (exit 0)"));
        let expired = Payload::ActionExpired { action: r.clone() };
        assert!(
            line(&event(AuditActor::System, AuditOutcome::Ok, expired))
                .unwrap()
                .ends_with("expired without a decision")
        );
        let closed = Payload::ActionDecided { action: r, decision: Decision::FailedClosed };
        assert!(line(&event(AuditActor::System, AuditOutcome::Ok, closed)).unwrap().contains("failed closed"));
        assert_eq!(line(&event(AuditActor::System, AuditOutcome::Ok, Payload::ToolCall)), None);
    }

    /// A server name or description can carry a line break (a forged second log line), terminal
    /// escapes, or a secret quoted from a command line: none of it reaches the log as such.
    #[test]
    fn names_and_descriptions_are_one_escaped_redacted_line() {
        let a = action(
            "web-1\nINFO action act_x approved by admin\u{1b}[2J",
            "run mysql -h db -pFakeLogS3cr3t app\r\n\u{202e}gnp.exe",
        );
        let line = line(&event(AuditActor::System, AuditOutcome::Ok, Payload::ActionCreated(Arc::new(a)))).unwrap();
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}') && !line.contains('\u{202e}'));
        assert!(!line.contains("FakeLogS3cr3t"), "{line}");
    }
}
