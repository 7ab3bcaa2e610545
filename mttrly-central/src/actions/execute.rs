//! Executing an action that is already recorded as `running`.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::capability::CapabilityId;
use mttrly_core::tools::actions::ExecutionResult;
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{ErrorCode, MttrlyError, Source};
use mttrly_proto::agent::v1::TaskStatus;
use serde_json::{Value, json};

use crate::agents::registry::{ActionGrant, TaskSpec};
use crate::db::actions::ActionRow;
use crate::db::{now_ms, timestamp};
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// How long central waits for an agent-side action.
fn deadline(content: &ActionContent) -> Duration {
    let secs = match content {
        ActionContent::Command { timeout_seconds, .. } | ActionContent::Script { timeout_seconds, .. } => {
            u64::from(*timeout_seconds) + 15
        }
        // The agent holds the playbook's own deadline (at most an hour) and kills at it.
        ActionContent::Playbook { .. } => 3600 + 15,
        _ => 300,
    };
    Duration::from_secs(secs)
}

/// Output kept in a result, at most.
const MAX_OUTPUT: usize = 256 * 1024;

struct Outcome {
    ok: bool,
    exit_code: Option<i32>,
    output: String,
    truncated: bool,
    error: Option<MttrlyError>,
    /// Stored with the action.
    data: Option<Value>,
    /// Returned once to whoever waits for this execution, never stored (install commands).
    once: Option<Value>,
}

impl Outcome {
    fn failed(error: MttrlyError) -> Self {
        Self {
            ok: false,
            exit_code: None,
            output: String::new(),
            truncated: false,
            error: Some(error),
            data: None,
            once: None,
        }
    }
}

async fn central_side(central: &Arc<Central>, action: &ActionRow) -> Outcome {
    let online = central.agents.status(&action.server_id, now_ms()).status == ConnectionStatus::Online;
    let online_refusal = || {
        Outcome::failed(
            MttrlyError::new(
                ErrorCode::ServerOnline,
                "the server's agent is connected; this operation is only for offline servers",
            )
            .with_detail("server_id", action.server_id.as_str()),
        )
    };
    match &action.content {
        ActionContent::InstallTokenRotation => {
            if online {
                return online_refusal();
            }
            let token = secrets::generate(SecretKind::Install);
            let hash = secrets::hash(&token);
            let expires_at = now_ms() + i64::from(central.config.install_token_ttl_minutes) * 60_000;
            let servers = central.db.account(&action.account_id).servers();
            match servers.rotate_credentials(&action.server_id, &hash, expires_at).await {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome::failed(
                        MttrlyError::new(ErrorCode::ServerNotFound, "the server is no longer in this account")
                            .with_detail("server_id", action.server_id.as_str()),
                    );
                }
                Err(e) => return Outcome::failed(e),
            }
            central.agents.kick(&action.server_id);
            let command = crate::servers::agent_command(central, &token);
            Outcome {
                ok: true,
                exit_code: None,
                output: "agent credentials rotated; the old ones stopped working".to_owned(),
                truncated: false,
                error: None,
                data: Some(json!({
                    "install_token_expires_at": timestamp(expires_at),
                    "agent_command": "shown once to whoever approved and waited; regenerate to get a new one",
                })),
                once: Some(json!({ "agent_command": command, "install_token_expires_at": timestamp(expires_at) })),
            }
        }
        ActionContent::Decommission => {
            if online {
                return online_refusal();
            }
            match crate::servers::remove(central, &action.account_id, &action.server_id).await {
                Ok(()) => Outcome {
                    ok: true,
                    exit_code: None,
                    output: "removed from the registry; the host was not touched".to_owned(),
                    truncated: false,
                    error: None,
                    data: None,
                    once: None,
                },
                Err(e) => Outcome::failed(e),
            }
        }
        // Issue 16: like a rotation, online or not (a broken agent may still be connected), with
        // a short-lived token and the install one-liner (pinned binary hash, CA) shown once.
        ActionContent::BootstrapRecovery => {
            let token = secrets::generate(SecretKind::Install);
            let Some(command) = crate::dist::one_liner(central, &token).await else {
                return Outcome::failed(MttrlyError::new(
                    ErrorCode::ValidationError,
                    "central serves no agent binary to re-install from: put mttrly-agent next to mttrly-central, or set agent_dist_dir",
                ));
            };
            let minutes = central.config.install_token_ttl_minutes.min(15);
            let expires_at = now_ms() + i64::from(minutes) * 60_000;
            let servers = central.db.account(&action.account_id).servers();
            match servers.rotate_credentials(&action.server_id, &secrets::hash(&token), expires_at).await {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome::failed(
                        MttrlyError::new(ErrorCode::ServerNotFound, "the server is no longer in this account")
                            .with_detail("server_id", action.server_id.as_str()),
                    );
                }
                Err(e) => return Outcome::failed(e),
            }
            central.agents.kick(&action.server_id);
            Outcome {
                ok: true,
                exit_code: None,
                output: "agent credentials rotated; run the one-liner on the host as root to re-install".to_owned(),
                truncated: false,
                error: None,
                data: Some(json!({
                    "install_token_expires_at": timestamp(expires_at),
                    "install_command": "shown once to whoever approved and waited; recover again to get a new one",
                })),
                once: Some(json!({ "install_command": command, "install_token_expires_at": timestamp(expires_at) })),
            }
        }
        _ => Outcome::failed(MttrlyError::new(ErrorCode::InternalError, "not a central-side action")),
    }
}

/// Keeps the first `max` lines of `output`; says whether anything was cut.
fn cap_lines(output: &mut String, max: usize) -> bool {
    match output.match_indices('\n').nth(max.saturating_sub(1)) {
        Some((i, _)) if i + 1 < output.len() => {
            output.truncate(i + 1);
            true
        }
        _ => false,
    }
}

async fn agent_side(central: &Central, action: &ActionRow, capability: CapabilityId) -> Outcome {
    let payload = if matches!(action.content, ActionContent::FileWrite { .. }) {
        match central.db.account(&action.account_id).actions().payload(&action.id).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Outcome::failed(MttrlyError::new(
                    ErrorCode::InternalError,
                    "the file content of this write is missing from the database",
                ));
            }
            Err(e) => return Outcome::failed(e),
        }
    } else {
        Vec::new()
    };
    // Pages following this action see what it prints while it runs.
    let _watching = central.agents.live_output().watch(&action.account_id, &action.id);
    let reply = central
        .agents
        .send(
            &action.server_id,
            TaskSpec {
                capability,
                params_json: action.content.canonical_bytes(),
                payload,
                deadline: deadline(&action.content),
                action: Some(ActionGrant {
                    id: action.id.clone(),
                    content_sha256: action.content_sha256.clone(),
                    // Actions started at once (read-only) need no approvals; every other one
                    // reached its quorum.
                    human_approved: action.approvals_required > 0,
                }),
            },
        )
        .await;
    match reply {
        Err(e) => Outcome::failed(e),
        Ok(reply) => {
            let mut raw = String::new();
            for (_, chunk) in &reply.output {
                raw.push_str(&String::from_utf8_lossy(chunk));
            }
            // The agent redacts before sending; central redacts again before storing (defense in depth).
            let mut output = mttrly_core::redactor::redact(&raw).text.into_owned();
            let mut truncated = reply.truncated;
            if output.len() > MAX_OUTPUT {
                let mut cut = MAX_OUTPUT;
                while !output.is_char_boundary(cut) {
                    cut -= 1;
                }
                output.truncate(cut);
                truncated = true;
            }
            // The plan's `Log lines` limit applies to everything returned.
            let plan = central.db.account(&action.account_id).plan().await.ok().flatten();
            if let Some(plan) = plan {
                let max = usize::try_from(plan.limits().log_lines).unwrap_or(usize::MAX);
                truncated |= cap_lines(&mut output, max);
            }
            let ok = reply.status == TaskStatus::Succeeded && reply.error.is_none();
            let error = match (ok, reply.error, reply.status) {
                (true, _, _) => None,
                (false, Some(e), _) => Some(e),
                (false, None, TaskStatus::TimedOut) => {
                    Some(MttrlyError::new(ErrorCode::Timeout, "the action hit its deadline and was killed"))
                }
                (false, None, TaskStatus::Cancelled) => {
                    Some(MttrlyError::new(ErrorCode::Timeout, "the action was cancelled"))
                }
                // The process ran and exited non-zero: `exit_code` is the whole story.
                (false, None, TaskStatus::Failed) if reply.exit_code.is_some_and(|c| c != 0) => None,
                (false, None, _) => Some(MttrlyError::new(ErrorCode::UnknownError, "the action failed")),
            };
            Outcome {
                ok,
                exit_code: reply.exit_code,
                output,
                truncated,
                error,
                data: answer_data(capability, &reply.answer),
                once: None,
            }
        }
    }
}

/// An agent update: the agent verifies and stages the release (the task), then restarts into it;
/// `crate::releases::follow` waits for the new version's verdict (committed or rolled back).
async fn update_side(central: &Central, action: &ActionRow) -> Outcome {
    let staged = agent_side(central, action, CapabilityId::AgentUpdate).await;
    let staged = match staged.error {
        None if staged.ok => Ok(()),
        Some(e) => Err(e),
        None => Err(MttrlyError::new(ErrorCode::UnknownError, "the agent could not stage the update")),
    };
    let followed = crate::releases::follow::follow(central, action, staged).await;
    Outcome {
        ok: followed.ok,
        exit_code: None,
        output: followed.output,
        truncated: false,
        error: followed.error,
        data: followed.data,
        once: None,
    }
}

/// The agent's answer as stored with the action, checked against the capability's answer type.
/// A malformed answer is logged and left out: the status, exit code and output still say what
/// happened, and nothing unchecked is stored.
fn answer_data(capability: CapabilityId, answer: &[u8]) -> Option<Value> {
    if answer.is_empty() {
        return None;
    }
    capability
        .decode_answer(answer)
        .inspect_err(|e| tracing::warn!(%capability, error = %e, "an agent's action answer was malformed"))
        .ok()
}

/// Runs a `running` action once and records its terminal state. Returns that state, the stored
/// result, and (for install-token rotation) the one-time data shown to the waiting approver.
pub async fn run_once(central: Arc<Central>, action: ActionRow) -> (ActionState, ExecutionResult, Option<Value>) {
    let started = now_ms();
    let outcome = match action.content.capability() {
        Some(CapabilityId::AgentUpdate) => update_side(&central, &action).await,
        Some(capability) => agent_side(&central, &action, capability).await,
        None => central_side(&central, &action).await,
    };
    let finished = now_ms();
    let result = ExecutionResult {
        exit_code: outcome.exit_code,
        output: outcome.output,
        truncated: outcome.truncated,
        duration_ms: u64::try_from(finished - started).unwrap_or(0),
        started_at: timestamp(started),
        finished_at: timestamp(finished),
        error: outcome.error.as_ref().map(MttrlyError::body),
        data: outcome.data,
    };
    // Redact before anything is stored: the stored result outlives any fix (the agent redacted
    // the output already; structured data and error messages get the same treatment here).
    let mut result = result;
    if let Some(data) = result.data.as_mut() {
        mttrly_core::redactor::redact_json(data);
    }
    if let Some(error) = result.error.as_mut() {
        if let std::borrow::Cow::Owned(clean) = mttrly_core::redactor::redact(&error.message).text {
            error.message = clean;
        }
        mttrly_core::redactor::redact_json(&mut error.details);
    }
    let state = if outcome.ok { ActionState::Succeeded } else { ActionState::Failed };
    // Never sent to the agent: nothing ran, so a bypass slot it took comes back in the same
    // transaction that records the failure.
    let undispatched =
        action.content.capability().is_some() && outcome.error.as_ref().is_some_and(crate::agents::never_dispatched);
    let actions = central.db.account(&action.account_id).actions();
    let recorded = if undispatched {
        actions.fail_undispatched(&action.id, result.clone()).await.map(|(_, returned)| returned)
    } else {
        actions.transition(&action.id, ActionState::Running, state, Some(result.clone())).await.map(|_| false)
    };
    let slot_returned = recorded.unwrap_or_else(|e| {
        tracing::error!(action_id = %action.id, error = %e, "cannot record the action's outcome");
        false
    });
    let executed =
        crate::events::Payload::ActionExecuted { action: (&action).into(), status: state, exit_code: result.exit_code };
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: action.account_id.clone(),
        server_id: Some(action.server_id.clone()),
        actor: AuditActor::Agent { server_id: action.server_id.clone() },
        source: Source::Agent,
        kind: AuditKind::ExecutionResult,
        subject: action.id.to_string(),
        parameters: json!({
            "action_type": action.content.action_type(),
            "status": state.as_str(),
            "exit_code": result.exit_code,
            "truncated": result.truncated,
            "bypass_slot_returned": slot_returned.then_some(true),
        }),
        outcome: match &outcome.error {
            None => AuditOutcome::Ok,
            Some(e) => AuditOutcome::Error { code: e.code() },
        },
        duration_ms: Some(result.duration_ms),
    };
    central.audit(crate::events::Recorded::new(event, executed));
    (state, result, outcome.once)
}

/// Like [`run_once`], for callers that only need the state and the stored result.
pub async fn run(central: Arc<Central>, action: ActionRow) -> (ActionState, ExecutionResult) {
    let (state, mut result, once) = run_once(central, action).await;
    if let Some(once) = once {
        result.data = Some(once);
    }
    (state, result)
}
