//! Choosing the release an update action installs, and refusing early what the agent could not
//! take: no such release, the wrong target, an expired manifest, a downgrade nobody allowed, a
//! release that needs a newer central. The approver then sees exactly what will happen: from → to,
//! the binary's SHA-256 and size, the manifest's expiry, and whether it is a downgrade.

use mttrly_core::action::ActionContent;
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::release::{ReleaseBundle, ReleaseChecks, ReleaseVersion, verify_unrooted};
use mttrly_core::tools::updates::UpdateAgentInput;
use mttrly_core::{ErrorCode, MttrlyError, Source};
use serde_json::json;

use crate::db::accounts::TokenOwner;
use crate::db::servers::ServerRow;
use crate::state::Central;

/// The action content and the approver's description of an update.
#[derive(Debug, Clone)]
pub struct Picked {
    /// What the action will do.
    pub content: ActionContent,
    /// What the approver reads.
    pub description: String,
}

/// Picks and checks the release for `input` on `server` (already the caller's).
pub async fn pick(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    server: &ServerRow,
    input: &UpdateAgentInput,
) -> Result<Picked, MttrlyError> {
    let host = server.host.as_ref().ok_or_else(|| {
        MttrlyError::new(
            ErrorCode::ServerOffline,
            "the server's agent never connected: its version and target are unknown",
        )
        .with_detail("server_id", server.id.as_str())
    })?;
    let current: ReleaseVersion = host.agent_version.parse().map_err(|e| {
        MttrlyError::new(ErrorCode::ValidationError, format!("the agent reports a version central cannot compare: {e}"))
    })?;
    let target = super::target_of(&host.arch);
    let mut rows = central.db.account(&caller.account_id).releases().list(Some(target.clone())).await?;
    super::publish::sort_newest_first(&mut rows);
    let row = match &input.target_version {
        Some(wanted) => rows.into_iter().find(|r| r.version == wanted.as_str()).ok_or_else(|| {
            MttrlyError::new(ErrorCode::NotFound, format!("no release {} is published for {target}", wanted.as_str()))
                .with_detail("target", target.as_str())
                .with_detail("version", wanted.as_str())
        })?,
        None => rows.into_iter().next().ok_or_else(|| {
            MttrlyError::new(ErrorCode::NotFound, format!("no release is published for {target}"))
                .with_detail("target", target.as_str())
        })?,
    };
    let bundle: ReleaseBundle = serde_json::from_str(&row.bundle_json)
        .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "a stored release bundle cannot be read"))?;
    let central_version = super::central_version();
    let checks = ReleaseChecks {
        now: jiff::Timestamp::now(),
        current_version: Some(&current),
        allow_downgrade: input.allow_downgrade,
        target: Some(&target),
        central_version: central_version.as_ref(),
    };
    let verified = match verify_unrooted(&bundle, &checks) {
        Ok(v) => v,
        Err(refusal) => {
            let error = refusal.to_error().with_detail("server_id", server.id.as_str());
            let refused = Refused {
                account: &caller.account_id,
                server: &server.id,
                actor: caller.principal.clone().into(),
                source,
                stage: "central",
                from: &current.to_string(),
                to: &row.version,
            };
            audit_refusal(central, &refused, &error);
            return Err(error);
        }
    };
    let m = &verified.manifest;
    let description = format!(
        "Update the agent on {} ({}) from {current} to {}{}: binary sha256 {}, {} bytes, for {}; manifest expires {}; \
         signed by key {} certified by root {}. The new version must reconnect and pass its self-test within 30 s, \
         or the previous version comes back and {} is marked skipped",
        server.name,
        server.environment,
        m.version,
        if verified.downgrade { " (a DOWNGRADE, explicitly allowed)" } else { "" },
        m.sha256,
        m.size,
        m.target,
        m.expires_at,
        verified.statement.key_id,
        verified.root_key_id,
        m.version,
    );
    let content = ActionContent::AgentUpdate {
        from_version: current.to_string(),
        to_version: m.version.to_string(),
        target: m.target.clone(),
        sha256: m.sha256.clone(),
        size_bytes: m.size,
        manifest_expires_at: m.expires_at.to_string(),
        downgrade: verified.downgrade,
        allow_downgrade: input.allow_downgrade,
        bundle_json: row.bundle_json,
    };
    Ok(Picked { content, description })
}

/// Where and between which versions a release was refused, for the audit log.
pub struct Refused<'a> {
    /// The tenant.
    pub account: &'a AccountId,
    /// The server.
    pub server: &'a ServerId,
    /// Who asked (the caller before approval, the agent on the host).
    pub actor: AuditActor,
    /// Through which channel.
    pub source: Source,
    /// `central` (before approval) or `agent` (on the host).
    pub stage: &'static str,
    /// The running version.
    pub from: &'a str,
    /// The release's version.
    pub to: &'a str,
}

/// Records a refused release in the audit log: where it was refused, why (the error's `reason`
/// detail: `bad_manifest_signature`, `hash_mismatch`, `downgrade`...), and between which versions.
pub fn audit_refusal(central: &Central, refused: &Refused<'_>, error: &MttrlyError) {
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: refused.account.clone(),
        server_id: Some(refused.server.clone()),
        actor: refused.actor.clone(),
        source: refused.source,
        kind: AuditKind::AgentEvent,
        subject: "agent_update_refused".to_owned(),
        parameters: json!({
            "stage": refused.stage,
            "reason": error.details().get("reason").cloned().unwrap_or(serde_json::Value::Null),
            "message": error.message(),
            "from_version": refused.from,
            "to_version": refused.to,
        }),
        outcome: AuditOutcome::Error { code: error.code() },
        duration_ms: None,
    };
    central.audit(event);
}
