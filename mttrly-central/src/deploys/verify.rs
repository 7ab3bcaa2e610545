//! `mttrly_run_deploy_verifier`: gathers the facts (the deploy, the agent's host-side checks,
//! the alerts since the deploy started), lets [`mttrly_core::deploys::evaluate`] decide, stores
//! the run in `deploy_verifications` and audits it.
//!
//! The agent's refusal of an assistant's input (a URL its policy does not list, a service name it
//! cannot pick) is the caller's error and changes nothing; the agent being unreachable or failing
//! is a fact of the run: the verdict says `error` and the run is stored like any other.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::capability::DeployVerify;
use mttrly_core::deploys::{VerifierFacts, evaluate};
use mttrly_core::ids::VerificationId;
use mttrly_core::tools::deploys::{DeployProbeParams, DeployRecord, DeployVerification, RunDeployVerifierInput};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::db::accounts::TokenOwner;
use crate::db::deploys::{DeployFilter, NewVerification};
use crate::db::{now_ms, servers::ServerRow};
use crate::state::Central;

/// Without a recorded deploy, the window looked at is this long.
const LOOKBACK_MS: i64 = 15 * 60 * 1000;
/// The agent's whole run (samples are bounded by the owner's policy; the agent stops sampling
/// after 60 s).
const PROBE_DEADLINE: Duration = Duration::from_secs(90);

/// The deploy to verify: the one named (on this server), or the server's latest (for the service).
async fn deploy_of(
    central: &Central,
    caller: &TokenOwner,
    server: &ServerRow,
    input: &RunDeployVerifierInput,
) -> Result<Option<DeployRecord>, MttrlyError> {
    let deploys = central.db.account(&caller.account_id).deploys();
    match &input.deploy_id {
        Some(id) => {
            let not_found = || {
                MttrlyError::new(ErrorCode::NotFound, format!("no deploy `{id}` on server {}", server.id))
                    .with_detail("deploy_id", id.as_str())
            };
            let deploy = deploys.get(id).await?.ok_or_else(not_found)?;
            // Another server's deploy answers like an unknown one: the id names nothing here.
            if deploy.server_id != server.id {
                return Err(not_found());
            }
            if let Some(service) = &input.service
                && service.as_str() != deploy.service
            {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("deploy `{id}` is of service `{}`, not `{}`", deploy.service, service.as_str()),
                )
                .with_detail("field", "service"));
            }
            Ok(Some(deploy))
        }
        None => Ok(deploys
            .list(DeployFilter {
                server_id: Some(server.id.clone()),
                service: input.service.as_ref().map(|s| s.as_str().to_owned()),
                limit: 1,
            })
            .await?
            .into_iter()
            .next()),
    }
}

/// Whether an agent's error is the caller's bad input (refused, nothing stored) rather than a
/// failed measurement.
fn is_refusal(e: &MttrlyError) -> bool {
    matches!(e.code(), ErrorCode::PolicyDenied | ErrorCode::ValidationError)
}

/// Runs the verifier.
pub(crate) async fn run(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: RunDeployVerifierInput,
) -> Result<DeployVerification, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    if let Some(url) = &input.healthcheck_url {
        mttrly_core::deploys::check_http_url(url.as_str()).map_err(|why| {
            MttrlyError::new(ErrorCode::ValidationError, format!("`healthcheck_url` {why}"))
                .with_detail("field", "healthcheck_url")
        })?;
    }
    let deploy = deploy_of(central, caller, &server, &input).await?;
    let service =
        input.service.as_ref().map(|s| s.as_str().to_owned()).or_else(|| deploy.as_ref().map(|d| d.service.clone()));
    let now = now_ms();
    let since_ms = deploy.as_ref().map_or(now - LOOKBACK_MS, |d| d.started_at.as_millisecond());
    let params = DeployProbeParams {
        service: service.clone(),
        since_ms,
        healthcheck_url: input.healthcheck_url.as_ref().map(|u| u.as_str().to_owned()),
    };
    let probe = match central.agents.ask::<DeployVerify>(&server.id, &params, PROBE_DEADLINE).await {
        Ok(probe) => Ok(probe),
        Err(e) if is_refusal(&e) => return Err(e),
        Err(e) => Err(format!("{} ({})", e.message(), e.code().as_str())),
    };
    let deploys = central.db.account(&caller.account_id).deploys();
    let alerts = deploys.alerts_since(&server.id, since_ms).await?;
    let verification = evaluate(VerifierFacts {
        verification_id: VerificationId::generate(),
        server_id: server.id.clone(),
        service,
        deploy,
        since_ms,
        probe,
        alerts,
        checked_at: jiff::Timestamp::now(),
    });
    let evidence_json = serde_json::to_string(&verification)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the verification: {e}")))?;
    deploys
        .add_verification(NewVerification {
            id: verification.verification_id.clone(),
            server_id: server.id.clone(),
            deploy_id: verification.deploy.as_ref().map(|d| d.deploy_id.clone()),
            service: verification.service.clone(),
            verdict: verification.verdict,
            evidence_json,
            checked_at: verification.checked_at.as_millisecond(),
        })
        .await?;
    central.audit(AuditEvent {
        at: verification.checked_at,
        account_id: caller.account_id.clone(),
        server_id: Some(server.id.clone()),
        actor: caller.principal.clone().into(),
        source: Source::Api,
        kind: AuditKind::ApiCall,
        subject: crate::db::timeline::VERIFIER_RUN.to_owned(),
        parameters: serde_json::json!({
            "verification_id": verification.verification_id,
            "deploy_id": verification.deploy.as_ref().map(|d| &d.deploy_id),
            "service": verification.service,
            "verdict": verification.verdict,
            "reasons": verification.reasons,
        }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    });
    Ok(verification)
}
