//! The agent's self-update: which signed release a server should run, chosen by a human's
//! approval, and what the agent reports about an update while and after it runs.

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::bounded_text;
use crate::ids::{ActionId, ServerId};

bounded_text!(
    /// An agent version such as `0.4.2` (1 to 32 characters).
    AgentVersion, min 1, max 32
);

/// Arguments of `mttrly_update_agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentInput {
    /// The server.
    pub server_id: ServerId,
    /// The release version to install; the newest published release for the server's target
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<AgentVersion>,
    /// Allow installing a release older than the running version. Off by default: without it an
    /// older (possibly replayed) release is refused by central and by the agent.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// The agent's answer to an approved update: the release passed every check and is staged; the
/// agent restarts into it next. Whether it then stays is [`UpdateReport`]'s to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaged {
    /// The version running before.
    pub from_version: String,
    /// The version staged.
    pub to_version: String,
    /// SHA-256 of the staged binary, hex (checked against the manifest).
    pub sha256: String,
    /// The staged binary's size in bytes.
    pub size_bytes: u64,
    /// When the new version must have connected and passed its self-test (RFC 3339).
    pub deadline: String,
}

/// Where an update stands on the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// The agent knows nothing of this action (another action, or none).
    Unknown,
    /// Staged; the new version is starting or under its self-test.
    InProgress,
    /// The new version connected, passed its self-test and is now `current`.
    Committed,
    /// The new version did not pass; the previous one runs again and the new one is skipped.
    RolledBack,
}

/// Parameters of the agent's update report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusParams {
    /// The update action asked about.
    pub action_id: ActionId,
}

/// What the agent says about one update action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReport {
    /// The version running now.
    pub running_version: String,
    /// Where the asked-about update stands.
    pub state: UpdateState,
    /// The version updated from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// The version updated to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<String>,
    /// Why it rolled back (`self_test_failed`, `exited_before_commit`, `deadline_passed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, for a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
