//! The `servers` toolset: capabilities, the registry, health, alerts, triage.

use mttrly_core::MttrlyError;
use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::{ConnectionStatus, ServerSummary, Severity};
use mttrly_core::tools::servers::{
    AlertList, AlertStatus, Capabilities, GetAlertsInput, GetCapabilitiesInput, GetServerStatusInput, HostInfo,
    ListServersInput, QuickTriageInput, RestrictedTool, ServerList, ServerStatus, TriageSummary, TriageVerdict,
};

use crate::agents::registry::LiveStatus;
use crate::db::accounts::TokenOwner;
use crate::db::alerts::AlertFilter;
use crate::db::servers::ServerRow;
use crate::db::{now_ms, timestamp};
use crate::servers::Observed;
use crate::state::Central;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub(crate) async fn capabilities(
    central: &Central,
    caller: &TokenOwner,
    _input: GetCapabilitiesInput,
) -> Result<Capabilities, MttrlyError> {
    let servers_registered = central.db.account(&caller.account_id).servers().count_live().await?;
    let mut available_tools = Vec::new();
    let mut restricted_tools = Vec::new();
    for (tool_id, reach) in super::reach(central, caller) {
        match reach.reason() {
            None => available_tools.push(tool_id),
            Some(reason) => {
                restricted_tools.push(RestrictedTool { tool_id, reason, required_plan: reach.required_plan() });
            }
        }
    }
    let surface = super::surface(central, caller);
    let read_only = surface.read_only || available_tools.iter().all(|t| t.spec().hints.read_only());
    Ok(Capabilities {
        plan: caller.plan,
        limits: caller.plan.limits(),
        available_tools,
        restricted_tools,
        read_only,
        toolsets: surface.toolsets_on(),
        servers_registered,
    })
}

/// The summary of a stored server with its live status (both from
/// [`crate::servers::Observed`], so that the row holds the hello of the stream the status
/// reflects).
pub(crate) fn summary(row: &ServerRow, live: &LiveStatus) -> ServerSummary {
    ServerSummary {
        server_id: row.id.clone(),
        name: row.name.clone(),
        environment: row.environment,
        status: live.status,
        last_seen_at: live.last_seen_ms.or(row.last_seen_at).map(timestamp),
        agent_version: row.host.as_ref().map(|h| h.agent_version.clone()).filter(|v| !v.is_empty()),
    }
}

pub(crate) async fn list(
    central: &Central,
    caller: &TokenOwner,
    input: ListServersInput,
) -> Result<ServerList, MttrlyError> {
    let mark = central.agents.mark();
    let rows = central.db.account(&caller.account_id).servers().list().await?;
    let servers = crate::servers::observe_rows(central, &caller.account_id, mark, rows)
        .await?
        .iter()
        .map(|o| summary(&o.row, &o.live))
        .filter(|s| input.environment.is_none_or(|e| e == s.environment))
        .filter(|s| input.status.is_none_or(|st| st == s.status))
        .collect();
    Ok(ServerList { servers })
}

async fn open_alerts(
    central: &Central,
    caller: &TokenOwner,
    server: &ServerId,
) -> Result<Vec<mttrly_core::tools::servers::Alert>, MttrlyError> {
    let filter = AlertFilter {
        server_id: Some(server.clone()),
        status: Some(AlertStatus::Open),
        since: 0,
        limit: 500,
        ..AlertFilter::default()
    };
    central.db.account(&caller.account_id).alerts().list(&filter).await
}

pub(crate) async fn status(
    central: &Central,
    caller: &TokenOwner,
    input: GetServerStatusInput,
) -> Result<ServerStatus, MttrlyError> {
    let observed = crate::servers::observe(central, &caller.account_id, &input.server_id).await?;
    status_of(central, caller, observed).await
}

/// The status of a server already observed (and so already checked to be the caller's).
pub(crate) async fn status_of(
    central: &Central,
    caller: &TokenOwner,
    observed: Observed,
) -> Result<ServerStatus, MttrlyError> {
    let Observed { row, live } = observed;
    let alerts = open_alerts(central, caller, &row.id).await?;
    let server = summary(&row, &live);
    let metrics = live.metrics.or_else(|| row.metrics_json.as_deref().and_then(|j| serde_json::from_str(j).ok()));
    Ok(ServerStatus {
        server,
        host: row.host.map(|h| HostInfo { hostname: h.hostname, os: h.os, kernel: h.kernel, arch: h.arch }),
        metrics,
        active_alerts: u32::try_from(alerts.len()).unwrap_or(u32::MAX),
    })
}

pub(crate) async fn alerts(
    central: &Central,
    caller: &TokenOwner,
    input: GetAlertsInput,
) -> Result<AlertList, MttrlyError> {
    if let Some(server) = &input.server_id {
        crate::servers::find(central, caller, server).await?;
    }
    let retention_days = caller.plan.limits().log_retention_days;
    let filter = AlertFilter {
        server_id: input.server_id,
        severity: input.severity,
        status: input.status,
        since: now_ms() - i64::from(retention_days) * DAY_MS,
        limit: input.limit.get(),
    };
    let db = central.db.account(&caller.account_id);
    let alerts = db.alerts().list(&filter).await?;
    // Alerts for no known host belong to no server: a call about one server leaves them out.
    let unmatched_alerts =
        if filter.server_id.is_some() { Vec::new() } else { db.alerts().list_unmatched(&filter).await? };
    Ok(AlertList { alerts, retention_days, unmatched_alerts })
}

pub(crate) async fn triage(
    central: &Central,
    caller: &TokenOwner,
    input: QuickTriageInput,
) -> Result<TriageSummary, MttrlyError> {
    let Observed { row, live } = crate::servers::observe(central, &caller.account_id, &input.server_id).await?;
    let mut active_alerts = open_alerts(central, caller, &row.id).await?;
    active_alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));
    let server = summary(&row, &live);
    let metrics = live.metrics;
    let fullest = metrics
        .as_ref()
        .and_then(|m| m.filesystems.iter().max_by(|a, b| a.used_percent.total_cmp(&b.used_percent)).cloned());
    let mut notes = Vec::new();
    let verdict = match server.status {
        ConnectionStatus::Pending => {
            notes.push("the agent has never connected".to_owned());
            TriageVerdict::Unknown
        }
        ConnectionStatus::Offline => {
            notes.push("the agent is offline: its last heartbeat is too old".to_owned());
            TriageVerdict::Critical
        }
        ConnectionStatus::Online => {
            let critical = active_alerts.iter().any(|a| a.severity == Severity::Critical);
            if let Some(m) = &metrics {
                if m.cpu_percent >= 90.0 {
                    notes.push(format!("CPU at {:.1}%", m.cpu_percent));
                }
                if m.memory_percent >= 90.0 {
                    notes.push(format!("memory at {:.1}%", m.memory_percent));
                }
            }
            if let Some(fs) = &fullest
                && fs.used_percent >= 85.0
            {
                notes.push(format!("{} is {:.1}% full", fs.mount_point, fs.used_percent));
            }
            for alert in &active_alerts {
                notes.push(format!("open {:?} alert: {}", alert.severity, alert.summary).to_lowercase());
            }
            if critical {
                TriageVerdict::Critical
            } else if !notes.is_empty() {
                TriageVerdict::Degraded
            } else if metrics.is_none() {
                notes.push("no heartbeat metrics yet".to_owned());
                TriageVerdict::Unknown
            } else {
                TriageVerdict::Healthy
            }
        }
    };
    Ok(TriageSummary {
        server,
        verdict,
        cpu_percent: metrics.as_ref().map(|m| m.cpu_percent),
        memory_percent: metrics.as_ref().map(|m| m.memory_percent),
        fullest_filesystem: fullest,
        active_alerts,
        notes,
    })
}
