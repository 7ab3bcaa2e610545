//! The agent's self-update: which release a server should run, chosen by a human's approval.

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::bounded_text;
use crate::ids::ServerId;

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
    /// The version to install; central's current agent version when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<AgentVersion>,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}
