//! The agent's installation: health, bootstrap recovery, repair, updates.

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::bounded_text;
use crate::ids::ServerId;

/// Arguments of `mttrly_get_install_health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInstallHealthInput {
    /// The server.
    pub server_id: ServerId,
}

/// The overall state of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// Everything matches what the installer laid down.
    Healthy,
    /// Something changed since install (unit file, permissions, binary).
    Drifted,
    /// The agent cannot run as installed.
    Broken,
    /// The agent never reported its install state.
    Unknown,
}

/// A way to repair an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepairStrategy {
    /// Fix exactly the issues the health check reported.
    IssueDriven,
    /// Bring the whole install state back to what the installer lays down.
    Converge,
    /// Re-create the service wrapper (systemd unit).
    ReprovisionWrapper,
    /// Remove the agent from the host.
    Uninstall,
}

/// One problem found in an installation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallIssue {
    /// A stable code (`unit_file_modified`, `state_dir_permissions`, ...).
    pub code: String,
    /// What is wrong.
    pub description: String,
    /// The strategy that repairs it.
    pub repair_strategy: RepairStrategy,
}

/// The agent's installation health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallHealth {
    /// The server.
    pub server_id: ServerId,
    /// The overall state.
    pub state: InstallState,
    /// The running agent's version.
    pub agent_version: Option<String>,
    /// The version central would update to.
    pub available_version: Option<String>,
    /// Problems found.
    pub issues: Vec<InstallIssue>,
    /// When the agent last checked.
    pub checked_at: Option<jiff::Timestamp>,
}

bounded_text!(
    /// A single-use install token from `mttrly_regenerate_install_token` (16 to 256 characters).
    InstallToken, min 16, max 256
);

/// Arguments of `mttrly_bootstrap_recover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRecoverInput {
    /// The server to recover.
    pub server_id: ServerId,
    /// The install token to embed in the command.
    pub install_token: InstallToken,
}

/// A command a human runs on the host to reinstall the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootstrapCommand {
    /// The server.
    pub server_id: ServerId,
    /// The one-liner to run as root on the host.
    pub command: String,
    /// The central URL the agent will enroll with.
    pub central_url: String,
    /// When the embedded install token stops working.
    pub token_expires_at: Option<jiff::Timestamp>,
}

bounded_text!(
    /// An issue code from `mttrly_get_install_health` (1 to 64 characters).
    IssueCode, min 1, max 64
);

/// Arguments of `mttrly_repair_install`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairInstallInput {
    /// The server.
    pub server_id: ServerId,
    /// How to repair.
    pub strategy: RepairStrategy,
    /// For `issue_driven`: the issue to fix; all reported issues when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_code: Option<IssueCode>,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}
