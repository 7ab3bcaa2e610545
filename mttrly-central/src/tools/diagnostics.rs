//! The `diagnostics` toolset: `mttrly_run_diagnostic`, `mttrly_get_service_reality`,
//! `mttrly_refresh_reality`.
//!
//! The agent collects evidence with read-only commands `mttrly-core` defines; central applies the
//! deterministic rules (`mttrly_core::diagnose`, `mttrly_core::reality`). Both kinds of run are
//! limited per server by a cooldown, so an assistant cannot turn probing into load.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::capability::{DiagnosticParams, DiagnosticRun, NoParams, RealityDiscover};
use mttrly_core::diagnose;
use mttrly_core::tools::diagnostics::{
    DiagnosticReport, GetServiceRealityInput, RefreshRealityInput, RunDiagnosticInput, ServiceReality, SnapshotOrigin,
};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::db::{self, accounts::TokenOwner};
use crate::state::Central;

/// The seed's per-server diagnostic cooldown.
pub(crate) const DIAGNOSTIC_COOLDOWN: Duration = Duration::from_secs(30);
/// The per-server cooldown of a live discovery.
pub(crate) const REALITY_COOLDOWN: Duration = Duration::from_secs(60);
const PROBE_DEADLINE: Duration = Duration::from_secs(45);

fn cooldown(what: &str, left: Duration, server: &str) -> MttrlyError {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    MttrlyError::new(ErrorCode::DiagnosticCooldown, format!("{what} ran on this server moments ago; retry in {secs} s"))
        .with_detail("retry_after_seconds", secs)
        .with_detail("server_id", server)
}

pub(crate) async fn run_diagnostic(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: RunDiagnosticInput,
) -> Result<DiagnosticReport, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let unit = input.unit.as_ref().map(|u| u.as_str().to_owned());
    if let Some(u) = &unit
        && !diagnose::valid_unit(u)
    {
        return Err(MttrlyError::new(ErrorCode::ValidationError, format!("`{u}` is not a systemd unit name"))
            .with_detail("field", "unit"));
    }
    central
        .cooldowns
        .try_start("diagnostic", server.id.as_str(), DIAGNOSTIC_COOLDOWN)
        .map_err(|left| cooldown("a diagnostic", left, server.id.as_str()))?;
    let probes = diagnose::select_probes(input.problem.as_str(), unit.as_deref());
    let params = DiagnosticParams { probes: probes.clone(), unit: unit.clone() };
    let ev = central.agents.ask::<DiagnosticRun>(&server.id, &params, PROBE_DEADLINE).await?;
    let findings = diagnose::analyze(&probes, unit.as_deref(), &ev);
    Ok(DiagnosticReport {
        server_id: server.id,
        ran_at: jiff::Timestamp::now(),
        summary: diagnose::summary(&findings),
        probes,
        findings,
    })
}

async fn discover(
    central: &Arc<Central>,
    caller: &TokenOwner,
    server: &db::servers::ServerRow,
) -> Result<ServiceReality, MttrlyError> {
    let ev = central.agents.ask::<RealityDiscover>(&server.id, &NoParams, PROBE_DEADLINE).await?;
    let snap = mttrly_core::reality::interpret(&ev);
    let now = jiff::Timestamp::now();
    let reality = ServiceReality {
        server_id: server.id.clone(),
        captured_at: now,
        origin: SnapshotOrigin::Live,
        services: snap.services,
        listening_ports: snap.listening_ports,
        runtimes: snap.runtimes,
        findings: snap.findings,
        next_refresh_at: now.checked_add(REALITY_COOLDOWN).ok(),
    };
    let json = serde_json::to_string(&reality)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the snapshot: {e}")))?;
    central.db.account(&caller.account_id).reality().put(&server.id, now.as_millisecond(), json).await?;
    Ok(reality)
}

/// The cached snapshot, or a live one when there is none yet.
pub(crate) async fn get_reality(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: GetServiceRealityInput,
) -> Result<ServiceReality, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    if let Some(json) = central.db.account(&caller.account_id).reality().get(&server.id).await? {
        let mut cached: ServiceReality = serde_json::from_str(&json)
            .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("stored snapshot is malformed: {e}")))?;
        cached.origin = SnapshotOrigin::Cached;
        return Ok(cached);
    }
    central
        .cooldowns
        .try_start("reality", server.id.as_str(), REALITY_COOLDOWN)
        .map_err(|left| cooldown("a discovery", left, server.id.as_str()))?;
    discover(central, caller, &server).await
}

/// A live discovery, at most once per cooldown window per server.
pub(crate) async fn refresh_reality(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: RefreshRealityInput,
) -> Result<ServiceReality, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    central
        .cooldowns
        .try_start("reality", server.id.as_str(), REALITY_COOLDOWN)
        .map_err(|left| cooldown("a discovery", left, server.id.as_str()))?;
    discover(central, caller, &server).await
}
