//! The `install` toolset: install health, repair and bootstrap recovery (issue 16).
//!
//! Health asks the agent to compare its host with the root-owned install receipt and adds
//! central's own facts (connection, last heartbeat, clock skew measured on this very call).
//! Repair asks for a fresh plan and submits exactly that plan (every change, and its hash) for a
//! human's approval; the host's root oneshot performs it only while the hash still matches.
//! Bootstrap recovery is a central-side action like install-token rotation: the approver alone
//! sees the one-liner with the fresh token, once.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::InstallHealth as InstallHealthCap;
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::common::{ConnectionStatus, Severity};
use mttrly_core::tools::install::{
    BootstrapRecoverInput, Finding, FindingStatus, GetInstallHealthInput, InstallHealth, InstallHealthParams,
    InstallReport, InstallState, RepairInstallInput, RepairPlan, RepairStrategy,
};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::state::Central;

/// How long the agent has to check its installation (it hashes a few binaries).
const CHECK_DEADLINE: Duration = Duration::from_secs(90);
/// Clock skew beyond which a finding is raised.
const SKEW_WARNING_MS: i64 = 5_000;

/// What central adds: the connection and the clock skew.
fn central_findings(connection: ConnectionStatus, skew_ms: Option<i64>) -> Vec<Finding> {
    let mut out = vec![Finding {
        code: "connection".to_owned(),
        subject: "agent stream".to_owned(),
        expected: "online".to_owned(),
        actual: connection_name(connection).to_owned(),
        status: if connection == ConnectionStatus::Online { FindingStatus::Ok } else { FindingStatus::Missing },
        severity: if connection == ConnectionStatus::Online { Severity::Info } else { Severity::Critical },
        repaired_by: Vec::new(),
    }];
    if let Some(skew) = skew_ms {
        let ok = skew.abs() <= SKEW_WARNING_MS;
        out.push(Finding {
            code: "clock_skew".to_owned(),
            subject: "agent clock".to_owned(),
            expected: format!("within {SKEW_WARNING_MS} ms of central"),
            actual: format!("{skew:+} ms"),
            status: if ok { FindingStatus::Ok } else { FindingStatus::Drift },
            severity: if ok { Severity::Info } else { Severity::Warning },
            repaired_by: Vec::new(),
        });
    }
    out
}

fn connection_name(c: ConnectionStatus) -> &'static str {
    match c {
        ConnectionStatus::Online => "online",
        ConnectionStatus::Offline => "offline",
        ConnectionStatus::Pending => "never connected",
    }
}

/// The overall state from the findings.
fn state_of(installed: bool, findings: &[Finding]) -> InstallState {
    if !installed {
        return InstallState::Unknown;
    }
    let bad = findings.iter().filter(|f| f.status != FindingStatus::Ok);
    let mut state = InstallState::Healthy;
    for f in bad {
        if f.severity == Severity::Critical {
            return InstallState::Broken;
        }
        state = InstallState::Drifted;
    }
    state
}

/// Asks the agent for its report; returns it with the measured skew: the agent's clock as its
/// answer left minus central's as it arrived (off by the one-way transit, milliseconds on a LAN;
/// the checks' own duration does not count, the agent stamps its answer last).
async fn ask_report(
    central: &Central,
    server: &mttrly_core::ids::ServerId,
    issue_codes: Vec<String>,
) -> Result<(InstallReport, i64), MttrlyError> {
    let report =
        central.agents.ask::<InstallHealthCap>(server, &InstallHealthParams { issue_codes }, CHECK_DEADLINE).await?;
    let received = now_ms();
    let skew = report.checked_at.as_millisecond().saturating_sub(received);
    Ok((report, skew))
}

pub(crate) async fn health(
    central: &Central,
    caller: &TokenOwner,
    input: GetInstallHealthInput,
) -> Result<InstallHealth, MttrlyError> {
    let crate::servers::Observed { row: server, live } =
        crate::servers::observe(central, &caller.account_id, &input.server_id).await?;
    let last_heartbeat_at = live.last_seen_ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    if live.status != ConnectionStatus::Online {
        return Ok(InstallHealth {
            server_id: server.id,
            state: InstallState::Unknown,
            agent_version: server.host.as_ref().map(|h| h.agent_version.clone()),
            connection: live.status,
            last_heartbeat_at,
            clock_skew_ms: None,
            findings: central_findings(live.status, None),
            plans: Vec::new(),
            checked_at: None,
        });
    }
    let (report, skew) = ask_report(central, &server.id, Vec::new()).await?;
    let mut findings = report.findings;
    findings.extend(central_findings(live.status, Some(skew)));
    Ok(InstallHealth {
        state: state_of(report.installed, &findings),
        server_id: server.id,
        agent_version: server.host.as_ref().map(|h| h.agent_version.clone()),
        connection: live.status,
        last_heartbeat_at,
        clock_skew_ms: Some(skew),
        findings,
        plans: report.plans,
        checked_at: Some(report.checked_at),
    })
}

/// The approver's one line: the strategy, then every change.
fn describe(server: &crate::db::servers::ServerRow, plan: &RepairPlan) -> String {
    let mut out = format!(
        "Repair the agent install on {} ({}) with `{}`: {} change(s), plan {}",
        server.name,
        server.environment,
        plan.strategy.as_str(),
        plan.changes.len(),
        &plan.plan_hash[..12.min(plan.plan_hash.len())]
    );
    for change in &plan.changes {
        let kind =
            serde_json::to_value(change.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        out.push_str(&format!("; {kind} {}", change.target));
        if !change.detail.is_empty() {
            out.push_str(&format!(" ({})", change.detail));
        }
    }
    out
}

pub(crate) async fn repair(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: RepairInstallInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let codes: Vec<String> = if input.strategy == RepairStrategy::Issue {
        input.finding_codes.iter().map(|c| c.as_str().to_owned()).collect()
    } else {
        Vec::new()
    };
    let (report, _) = ask_report(central, &server.id, codes.clone()).await?;
    if !report.installed {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "this agent was not installed by `mttrly-agent install` (no install receipt): nothing to repair; use mttrly_bootstrap_recover to re-install it",
        )
        .with_detail("server_id", server.id.as_str()));
    }
    if let Some(unknown) = codes.iter().find(|c| !report.findings.iter().any(|f| &f.code == *c)) {
        return Err(MttrlyError::new(ErrorCode::ValidationError, format!("no finding `{unknown}` on this server"))
            .with_detail("finding_code", unknown.clone()));
    }
    let plan =
        report.plans.into_iter().find(|p| p.strategy == input.strategy).ok_or_else(|| {
            MttrlyError::new(ErrorCode::InternalError, "the agent returned no plan for this strategy")
        })?;
    if let Some(expected) = &input.plan_hash
        && expected.as_str() != plan.plan_hash
    {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "plan hash mismatch: the host changed since you read it (you read {}, the plan now is {}); read mttrly_get_install_health again",
                expected.as_str(),
                plan.plan_hash
            ),
        )
        .with_detail("approved_plan_hash", expected.as_str())
        .with_detail("current_plan_hash", plan.plan_hash.clone()));
    }
    if plan.changes.is_empty() {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("nothing to repair: the `{}` plan makes no change on this host", plan.strategy.as_str()),
        ));
    }
    let description = describe(&server, &plan);
    let content = ActionContent::InstallRepair {
        strategy: plan.strategy,
        finding_codes: codes,
        changes: plan.changes,
        plan_hash: plan.plan_hash,
    };
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    actions::submit(
        central,
        caller,
        source,
        NewAction { server, content, description, reason, run_at_once: false, payload: None },
    )
    .await
}

pub(crate) async fn bootstrap_recover(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: BootstrapRecoverInput,
) -> Result<ActionSubmission, MttrlyError> {
    if input.install_token.is_some() {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "install_token is not accepted: on approval central issues a fresh single-use install token itself and shows the one-liner only to the approver; an assistant never chooses or sees one",
        )
        .with_detail("field", "install_token"));
    }
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    if crate::dist::artifacts_off_runtime(central).await.is_empty() {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "central serves no agent binary to re-install from: put mttrly-agent next to mttrly-central, or set agent_dist_dir",
        ));
    }
    let description = format!(
        "Re-install the agent of {} ({}) keeping its id and history: rotate its credentials (the current ones stop working) and show you, once, a one-liner with a fresh single-use install token and the pinned binary SHA-256",
        server.name, server.environment
    );
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let new = NewAction {
        server,
        content: ActionContent::BootstrapRecovery,
        description,
        reason,
        run_at_once: false,
        payload: None,
    };
    actions::submit(central, caller, source, new).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(status: FindingStatus, severity: Severity) -> Finding {
        Finding {
            code: "x".into(),
            subject: "s".into(),
            expected: "e".into(),
            actual: "a".into(),
            status,
            severity,
            repaired_by: Vec::new(),
        }
    }

    #[test]
    fn the_state_is_the_worst_finding() {
        assert_eq!(state_of(true, &[finding(FindingStatus::Ok, Severity::Info)]), InstallState::Healthy);
        assert_eq!(
            state_of(
                true,
                &[finding(FindingStatus::Ok, Severity::Info), finding(FindingStatus::Drift, Severity::Warning)]
            ),
            InstallState::Drifted
        );
        assert_eq!(state_of(true, &[finding(FindingStatus::Missing, Severity::Critical)]), InstallState::Broken);
        assert_eq!(state_of(false, &[]), InstallState::Unknown);
    }

    #[test]
    fn skew_beyond_five_seconds_is_a_finding() {
        let f = central_findings(ConnectionStatus::Online, Some(-7_000));
        assert_eq!(f[1].status, FindingStatus::Drift);
        assert_eq!(f[1].actual, "-7000 ms");
        assert_eq!(central_findings(ConnectionStatus::Online, Some(40))[1].status, FindingStatus::Ok);
        assert_eq!(central_findings(ConnectionStatus::Offline, None)[0].severity, Severity::Critical);
    }
}
