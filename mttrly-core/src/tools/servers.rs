//! Plan capabilities, the server registry, health and alerts.

use serde::{Deserialize, Serialize};

use super::Toolset;
use super::common::{ConnectionStatus, FilesystemUsage, HostMetrics, ServerSummary, Severity};
use crate::bounded::bounded_int;
use crate::catalog::ToolId;
use crate::environment::Environment;
use crate::ids::{AlertId, ServerId};
use crate::plan::{Plan, PlanLimits};

/// Arguments of `mttrly_get_capabilities` (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetCapabilitiesInput {}

/// A tool the caller cannot use right now, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RestrictedTool {
    /// The tool.
    pub tool_id: ToolId,
    /// Why it is off (plan, read-only mode, toolset selection, token scope).
    pub reason: String,
    /// The plan that would unlock it, when the plan is the reason.
    pub required_plan: Option<Plan>,
}

/// What the caller can do: the plan, its limits, and which tools are on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Capabilities {
    /// The account's plan.
    pub plan: Plan,
    /// The plan's limits.
    pub limits: PlanLimits,
    /// Tools the caller may call.
    pub available_tools: Vec<ToolId>,
    /// Tools that exist but are off for the caller, each with the reason.
    pub restricted_tools: Vec<RestrictedTool>,
    /// Whether only read tools are on.
    pub read_only: bool,
    /// The toolsets that are switched on.
    pub toolsets: Vec<Toolset>,
    /// How many servers the account has registered.
    pub servers_registered: u32,
}

/// Arguments of `mttrly_list_servers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListServersInput {
    /// Only servers in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Only servers with this connection status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConnectionStatus>,
}

/// The account's servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerList {
    /// The servers, ordered by name.
    pub servers: Vec<ServerSummary>,
}

/// Arguments of `mttrly_get_server_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServerStatusInput {
    /// The server, from `mttrly_list_servers`.
    pub server_id: ServerId,
}

/// What the agent reported about its host when it connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostInfo {
    /// The host name.
    pub hostname: String,
    /// Operating system name and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
}

/// A server's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerStatus {
    /// The registry entry.
    pub server: ServerSummary,
    /// The host, once the agent has said hello.
    pub host: Option<HostInfo>,
    /// The latest metrics, once a heartbeat has arrived.
    pub metrics: Option<HostMetrics>,
    /// How many alerts are open.
    pub active_alerts: u32,
}

/// An alert's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition still holds.
    Open,
    /// The condition cleared.
    Resolved,
}

bounded_int!(
    /// How many alerts to return, newest first (1 to 500, default 50).
    AlertLimit: u32, min 1, max 500, default 50
);

/// Arguments of `mttrly_get_alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetAlertsInput {
    /// Only this server's alerts; all servers of the account when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// Only alerts of this severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Only open or only resolved alerts; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AlertStatus>,
    /// How many alerts to return, newest first.
    #[serde(default)]
    pub limit: AlertLimit,
}

/// An alert opened by a threshold rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Alert {
    /// The alert's id.
    pub alert_id: AlertId,
    /// The server it concerns.
    pub server_id: ServerId,
    /// The rule that fired (`disk_usage`, `memory`, `cpu_sustained`, `agent_offline`).
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// Open or resolved.
    pub status: AlertStatus,
    /// What was observed, for a human.
    pub summary: String,
    /// When the rule first fired.
    pub opened_at: jiff::Timestamp,
    /// When the condition cleared.
    pub resolved_at: Option<jiff::Timestamp>,
}

/// Alerts within the plan's retention window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertList {
    /// The alerts, newest first.
    pub alerts: Vec<Alert>,
    /// How many days back alerts are kept on this plan.
    pub retention_days: u32,
    /// Alerts from monitoring (Alertmanager, Grafana, PagerDuty) whose host matches no server,
    /// newest first; left out when the call names a server.
    #[serde(default)]
    pub unmatched_alerts: Vec<UnmatchedAlert>,
}

/// An alert a monitoring system sent for a host that matches no server of the account: kept so
/// the assistant still sees it (a typo in a label, a host not enrolled yet, a service-level page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnmatchedAlert {
    /// The alert's id.
    pub alert_id: AlertId,
    /// Where it came from: `alertmanager`, `grafana` or `pagerduty`.
    pub source: String,
    /// Its name at the source (Alertmanager's `alertname`, a PagerDuty incident's title).
    pub name: String,
    /// The host value the source named (a label, or PagerDuty's service), if any.
    pub host: Option<String>,
    /// How serious it is.
    pub severity: Severity,
    /// Open or resolved.
    pub status: AlertStatus,
    /// What was observed, for a human.
    pub summary: String,
    /// The source's labels (PagerDuty: its custom fields and body details).
    pub labels: std::collections::BTreeMap<String, String>,
    /// When it started.
    pub opened_at: jiff::Timestamp,
    /// When it resolved.
    pub resolved_at: Option<jiff::Timestamp>,
}

/// Arguments of `mttrly_quick_triage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickTriageInput {
    /// The server, from `mttrly_list_servers`.
    pub server_id: ServerId,
}

/// A one-word verdict of a triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriageVerdict {
    /// Online, no open alerts, resources within thresholds.
    Healthy,
    /// Something needs attention.
    Degraded,
    /// Offline, or a critical alert is open.
    Critical,
    /// No metrics yet.
    Unknown,
}

/// A shallow, read-only summary built from data central already has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TriageSummary {
    /// The registry entry.
    pub server: ServerSummary,
    /// The overall verdict.
    pub verdict: TriageVerdict,
    /// Open alerts, most severe first.
    pub active_alerts: Vec<Alert>,
    /// CPU busy share from the latest heartbeat.
    pub cpu_percent: Option<f64>,
    /// Memory in use from the latest heartbeat.
    pub memory_percent: Option<f64>,
    /// The fullest filesystem.
    pub fullest_filesystem: Option<FilesystemUsage>,
    /// Short observations that explain the verdict.
    pub notes: Vec<String>,
}

/// Arguments of `mttrly_regenerate_install_token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateInstallTokenInput {
    /// The offline server whose agent must be reinstalled.
    pub server_id: ServerId,
}

/// Arguments of `mttrly_decommission_server`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecommissionServerInput {
    /// The offline server to remove from the registry. Its history stays in the audit log.
    pub server_id: ServerId,
}
