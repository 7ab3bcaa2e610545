//! Diagnostics and service discovery ("service reality").

use serde::{Deserialize, Serialize};

use super::common::Severity;
use super::playbooks::PlaybookId;
use crate::bounded::bounded_text;
use crate::ids::ServerId;

bounded_text!(
    /// A description of the problem in the user's words (1 to 2000 characters).
    ProblemDescription, min 1, max 2000
);

bounded_text!(
    /// A systemd unit name, for example `nginx.service` (1 to 256 characters).
    UnitName, min 1, max 256
);

/// A family of read-only probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Filesystem usage and inodes.
    Disk,
    /// Memory, swap and the OOM killer.
    Memory,
    /// CPU load and the busiest processes.
    Cpu,
    /// Listening ports and connection counts.
    Network,
    /// A systemd unit's state and recent journal.
    Systemd,
    /// Docker containers and their health.
    Docker,
    /// nginx configuration test and error log.
    Nginx,
    /// Database connection counts.
    Database,
    /// Recent errors in allowlisted logs.
    Logs,
}

/// Arguments of `mttrly_run_diagnostic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDiagnosticInput {
    /// The server to investigate.
    pub server_id: ServerId,
    /// What is wrong, in plain words (for example "nginx returns 502 since 10:00"). Keywords in it
    /// choose which probes run.
    pub problem: ProblemDescription,
    /// A systemd unit to inspect as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitName>,
}

/// One thing a probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// The probe that found it.
    pub probe: ProbeKind,
    /// How serious it is.
    pub severity: Severity,
    /// One line for a human.
    pub title: String,
    /// What was observed, redacted.
    pub evidence: String,
    /// What to do next.
    pub suggestion: String,
    /// A playbook that addresses it, if one does.
    pub playbook_id: Option<PlaybookId>,
}

/// The result of a diagnostic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiagnosticReport {
    /// The server.
    pub server_id: ServerId,
    /// When the probes ran.
    pub ran_at: jiff::Timestamp,
    /// Which probes ran.
    pub probes: Vec<ProbeKind>,
    /// What they found, most severe first.
    pub findings: Vec<Finding>,
    /// One paragraph for a human.
    pub summary: String,
}

/// Arguments of `mttrly_get_service_reality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServiceRealityInput {
    /// The server.
    pub server_id: ServerId,
}

/// Arguments of `mttrly_refresh_reality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRealityInput {
    /// The server.
    pub server_id: ServerId,
}

/// Where a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// A systemd unit.
    Systemd,
    /// A Docker container.
    Docker,
    /// A plain process with a listening port.
    Process,
}

/// A discovered service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiscoveredService {
    /// Unit, container or process name.
    pub name: String,
    /// Where it runs.
    pub kind: ServiceKind,
    /// Its state as the service manager reports it (`active`, `running`, `exited`, ...).
    pub state: String,
    /// Whether it looks healthy.
    pub healthy: bool,
    /// Ports it listens on.
    pub ports: Vec<u16>,
}

/// A listening socket and its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListeningPort {
    /// The port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The bound address.
    pub address: String,
    /// The owning process, when it could be mapped.
    pub process: Option<String>,
}

/// A language runtime or web server found on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Runtime {
    /// Its name (`node`, `python3`, `nginx`, ...).
    pub name: String,
    /// Its version, when it reports one.
    pub version: Option<String>,
}

/// Where a reality snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotOrigin {
    /// From central's cache.
    Cached,
    /// Just taken.
    Live,
}

/// What is really running on a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceReality {
    /// The server.
    pub server_id: ServerId,
    /// When the snapshot was taken.
    pub captured_at: jiff::Timestamp,
    /// Cached or live.
    pub origin: SnapshotOrigin,
    /// Services found.
    pub services: Vec<DiscoveredService>,
    /// Listening ports.
    pub listening_ports: Vec<ListeningPort>,
    /// Runtimes and web servers.
    pub runtimes: Vec<Runtime>,
    /// Notable observations (failed units, unhealthy containers, ports without an owner).
    pub findings: Vec<String>,
    /// The earliest time a live refresh is allowed again.
    pub next_refresh_at: Option<jiff::Timestamp>,
}
