//! Deploys an agent detected (`AgentMessage.deploy_detected`): a watched release changed on its
//! host. Recorded with source `agent`, idempotent on an id central derives from the session's
//! own server, the service and the release fingerprint, so a report repeated after a reconnect is
//! the same deploy and an agent can never name another server's.

use std::sync::Arc;

use mttrly_core::audit::{AuditActor, AuditKind};
use mttrly_core::ids::{AccountId, DeployId, ServerId};
use mttrly_core::tools::deploys::{DeploySource, DeployStatus, ServiceName};
use mttrly_core::{ErrorCode, MttrlyError, Source};
use mttrly_proto::agent::v1::DeployDetected;

use crate::db::deploys::NewDeploy;
use crate::db::now_ms;
use crate::state::Central;

/// How far back a detection may be dated (an agent that was offline for a while).
const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// How far ahead (clock skew).
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// Checks a detection and turns it into a deploy of `server` (`now` in ms).
fn to_deploy(server: &ServerId, seen: &DeployDetected, now: i64) -> Result<NewDeploy, MttrlyError> {
    let bad = |why: String| MttrlyError::new(ErrorCode::ValidationError, why);
    if !ServiceName::is_valid(&seen.service) {
        return Err(bad("a detected deploy names no valid service".into()));
    }
    if !(16..=128).contains(&seen.fingerprint.len()) || !seen.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("a detected deploy's fingerprint is not 16 to 128 hex digits".into()));
    }
    let version: String = seen.version.chars().filter(|c| !c.is_control()).take(128).collect();
    let version = if version.is_empty() { seen.fingerprint[..12].to_owned() } else { version };
    let at = seen.detected_at_unix_ms;
    let at = if (now - MAX_AGE_MS..=now + MAX_SKEW_MS).contains(&at) { at } else { now };
    Ok(NewDeploy {
        id: DeployId::generate(),
        server_id: server.clone(),
        external_id: mttrly_core::deploys::detected_external_id(server, &seen.service, &seen.fingerprint),
        service: seen.service.clone(),
        version: mttrly_core::redactor::redact(&version).text.into_owned(),
        commit_sha: None,
        repo_url: None,
        environment: None,
        started_at: at,
        finished_at: Some(at),
        status: DeployStatus::Succeeded,
        source: DeploySource::Agent,
        url: None,
    })
}

/// Records what `server`'s agent reported, off the stream's read loop (a database write must not
/// hold up the agent's task results).
pub fn detected(central: &Arc<Central>, server: &ServerId, account: &AccountId, seen: &DeployDetected) {
    let now = now_ms();
    let kind = crate::proactive::flood::ReportKind::DeployDetected;
    if !crate::proactive::flood::admit(central, account, server, kind, now) {
        return;
    }
    let deploy = match to_deploy(server, seen, now) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(server_id = %server, error = %e, "ignored a malformed deploy detection");
            return;
        }
    };
    let changes: Vec<String> = seen
        .changes
        .iter()
        .take(16)
        .map(|c| mttrly_core::redactor::redact(&c.chars().take(512).collect::<String>()).text.into_owned())
        .collect();
    let (central, server, account) = (Arc::clone(central), server.clone(), account.clone());
    tokio::spawn(async move {
        match central.db.account(&account).deploys().record(deploy, now).await {
            Ok(recorded) => {
                tracing::info!(server_id = %server, deploy_id = %recorded.row().deploy_id, "agent detected a deploy");
                super::record::audit(
                    &central,
                    &account,
                    AuditActor::Agent { server_id: server.clone() },
                    Source::Agent,
                    AuditKind::AgentEvent,
                    &recorded,
                );
                if !changes.is_empty() {
                    tracing::debug!(server_id = %server, ?changes, "detected deploy changes");
                }
            }
            Err(e) => tracing::warn!(server_id = %server, error = %e, "cannot record a detected deploy"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(service: &str, fingerprint: &str, at: i64) -> DeployDetected {
        DeployDetected {
            service: service.into(),
            fingerprint: fingerprint.into(),
            version: "releases/42".into(),
            detected_at_unix_ms: at,
            changes: vec![],
        }
    }

    #[test]
    fn detections_are_keyed_by_the_sessions_server_and_checked() {
        let (a, b) = (ServerId::generate(), ServerId::generate());
        let now = 1_796_256_000_000;
        let fp = "ab".repeat(16);
        let da = to_deploy(&a, &seen("web", &fp, now), now).unwrap();
        let db = to_deploy(&b, &seen("web", &fp, now), now).unwrap();
        assert_ne!(da.external_id, db.external_id, "another server's agent cannot name this server's deploy");
        assert_eq!(da.external_id, to_deploy(&a, &seen("web", &fp, now - 5), now).unwrap().external_id);
        assert_eq!((da.source, da.status, da.server_id), (DeploySource::Agent, DeployStatus::Succeeded, a.clone()));
        assert!(to_deploy(&a, &seen("../x", &fp, now), now).is_err());
        assert!(to_deploy(&a, &seen("web", "not-hex", now), now).is_err());
        assert_eq!(to_deploy(&a, &seen("web", &fp, 0), now).unwrap().started_at, now, "an absurd time becomes now");
    }
}
