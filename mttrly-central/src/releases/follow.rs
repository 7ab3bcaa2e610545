//! Following an approved update to its verdict. The agent answers the update task once the
//! release is verified and staged, then replaces itself with the new version; that version must
//! reconnect and pass its self-test, or the previous one comes back. Central learns which by
//! asking the agent (whichever version is connected) about the action (`agent.update_status`),
//! until it says committed or rolled back, or the deadline passes.

use std::time::{Duration, Instant};

use mttrly_core::capability::AgentUpdateStatus;
use mttrly_core::tools::updates::{UpdateReport, UpdateState, UpdateStatusParams};
use mttrly_core::{ErrorCode, MttrlyError, Source};
use serde_json::{Value, json};

use super::pick::{Refused, audit_refusal};
use crate::db::actions::ActionRow;
use crate::state::Central;

/// How long central waits for the verdict after staging: the new version's 30 s self-test, a
/// crash and restart of the previous one (systemd's restart delay), and margin.
pub const VERDICT_DEADLINE: Duration = Duration::from_secs(90);

/// How often the agent is asked while the update is under way.
const POLL: Duration = Duration::from_millis(200);

/// The verdict on an update.
#[derive(Debug)]
pub struct Followed {
    /// Committed.
    pub ok: bool,
    /// One line for the result's output.
    pub output: String,
    /// Why it failed.
    pub error: Option<MttrlyError>,
    /// From, to, and what the agent reported.
    pub data: Option<Value>,
}

impl Followed {
    fn failed(error: MttrlyError, data: Option<Value>) -> Self {
        Self { ok: false, output: String::new(), error: Some(error), data }
    }
}

/// Whether `error` is the registry's "the agent disconnected while the task was running": after
/// staging, the agent replaces itself, and its answer may not have left before it did.
fn disconnected_mid_task(error: &MttrlyError) -> bool {
    error.code() == ErrorCode::ServerOffline && error.details().get("task_id").is_some()
}

/// Follows `action` after its update task answered `staged` (`Ok`: the agent's staged answer, or
/// the disconnect that may have cut it off; `Err`: the agent's refusal).
pub async fn follow(central: &Central, action: &ActionRow, staged: Result<(), MttrlyError>) -> Followed {
    let (from, to) = match &action.content {
        mttrly_core::action::ActionContent::AgentUpdate { from_version, to_version, .. } => {
            (from_version.clone(), to_version.clone())
        }
        _ => return Followed::failed(MttrlyError::new(ErrorCode::InternalError, "not an agent update"), None),
    };
    match staged {
        Ok(()) => {}
        Err(e) if disconnected_mid_task(&e) => {}
        Err(e) => {
            // The agent refused the release (bad signature, hash mismatch, expiry, downgrade,
            // skipped version...): nothing was staged and `current` is untouched.
            if e.details().get("reason").is_some() {
                let refused = Refused {
                    account: &action.account_id,
                    server: &action.server_id,
                    actor: mttrly_core::audit::AuditActor::Agent { server_id: action.server_id.clone() },
                    source: Source::Agent,
                    stage: "agent",
                    from: &from,
                    to: &to,
                };
                audit_refusal(central, &refused, &e);
            }
            return Followed::failed(e, Some(json!({ "from_version": from, "to_version": to, "state": "refused" })));
        }
    }
    let started = Instant::now();
    let params = UpdateStatusParams { action_id: action.id.clone() };
    let mut last: Option<UpdateReport> = None;
    while started.elapsed() < VERDICT_DEADLINE {
        // Offline while it restarts, or an older version without the capability: ask again.
        if let Ok(report) =
            central.agents.ask::<AgentUpdateStatus>(&action.server_id, &params, Duration::from_secs(5)).await
        {
            match report.state {
                UpdateState::Committed => {
                    let output = format!(
                        "updated from {from} to {to}: the new version connected, passed its self-test and is now current"
                    );
                    let data = json!({
                        "from_version": from,
                        "to_version": to,
                        "running_version": report.running_version,
                        "state": "committed",
                        "took_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    });
                    return Followed { ok: true, output, error: None, data: Some(data) };
                }
                UpdateState::RolledBack => return rolled_back(&from, &to, &report),
                UpdateState::Unknown => {
                    return Followed::failed(
                        MttrlyError::new(
                            ErrorCode::UnknownError,
                            "the agent restarted before it staged the release; nothing changed on the server",
                        ),
                        Some(
                            json!({ "from_version": from, "to_version": to, "running_version": report.running_version, "state": "not_staged" }),
                        ),
                    );
                }
                UpdateState::InProgress => last = Some(report),
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Followed::failed(
        MttrlyError::new(
            ErrorCode::Timeout,
            format!("the agent did not report the update's outcome within {} s", VERDICT_DEADLINE.as_secs()),
        ),
        Some(json!({
            "from_version": from,
            "to_version": to,
            "state": "unknown",
            "running_version": last.map(|r| r.running_version),
        })),
    )
}

fn rolled_back(from: &str, to: &str, report: &UpdateReport) -> Followed {
    let reason = report.reason.clone().unwrap_or_else(|| "rolled_back".to_owned());
    let code = match reason.as_str() {
        "deadline_passed" => ErrorCode::Timeout,
        "exited_before_commit" | "self_test_failed" => ErrorCode::ServerOffline,
        _ => ErrorCode::UnknownError,
    };
    let detail = report.detail.clone().unwrap_or_default();
    let error = MttrlyError::new(
        code,
        format!("{to} did not pass its self-test and was rolled back; {from} runs again and {to} is marked skipped. {detail}"),
    )
    .with_detail("reason", reason.as_str());
    let data = json!({
        "from_version": from,
        "to_version": to,
        "running_version": report.running_version,
        "state": "rolled_back",
        "reason": reason,
    });
    Followed::failed(error, Some(data))
}
