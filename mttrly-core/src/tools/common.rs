//! Types shared by several toolsets.

use serde::{Deserialize, Serialize};

use crate::bounded::bounded_text;
use crate::environment::Environment;
use crate::ids::ServerId;

/// How serious something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// Every severity, least serious first.
    pub const ALL: [Self; 3] = [Self::Info, Self::Warning, Self::Critical];

    /// The name serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Whether a server's agent is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Heartbeats are arriving.
    Online,
    /// The agent missed too many heartbeats or disconnected.
    Offline,
    /// Registered, but the agent has never connected.
    Pending,
}

/// A server as the registry knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerSummary {
    /// The server's id.
    pub server_id: ServerId,
    /// The name given at registration.
    pub name: String,
    /// The server's environment.
    pub environment: Environment,
    /// Whether its agent is connected.
    pub status: ConnectionStatus,
    /// When the last heartbeat arrived, if ever.
    pub last_seen_at: Option<jiff::Timestamp>,
    /// The agent's version, once it has connected.
    pub agent_version: Option<String>,
}

/// One filesystem's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FilesystemUsage {
    /// Where it is mounted.
    pub mount_point: String,
    /// Its type (`ext4`, `xfs`, ...).
    pub fs_type: String,
    /// Total size in bytes.
    pub total_bytes: u64,
    /// Used bytes.
    pub used_bytes: u64,
    /// Used share, 0 to 100.
    pub used_percent: f64,
}

/// A host's resource metrics from its latest heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostMetrics {
    /// When the agent took the sample.
    pub collected_at: jiff::Timestamp,
    /// CPU busy share across all cores, 0 to 100.
    pub cpu_percent: f64,
    /// Physical memory in bytes.
    pub memory_total_bytes: u64,
    /// Memory in use (excluding caches) in bytes.
    pub memory_used_bytes: u64,
    /// Memory in use, 0 to 100.
    pub memory_percent: f64,
    /// Swap size in bytes.
    pub swap_total_bytes: u64,
    /// Swap in use in bytes.
    pub swap_used_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load_average: [f64; 3],
    /// Seconds since boot.
    pub uptime_seconds: u64,
    /// Every real (non-virtual) filesystem.
    pub filesystems: Vec<FilesystemUsage>,
}

bounded_text!(
    /// Why the action is wanted, shown to the human who approves it (1 to 500 characters).
    Reason, min 1, max 500
);

bounded_text!(
    /// An absolute path on the server (1 to 4096 characters). Checked against the server's
    /// allowlist after symlinks are resolved.
    ServerPath, min 1, max 4096
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_are_what_serde_writes() {
        for severity in Severity::ALL {
            assert_eq!(
                serde_json::to_value(severity).ok(),
                Some(serde_json::Value::String(severity.as_str().to_owned()))
            );
        }
    }
}
