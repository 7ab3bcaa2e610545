//! One task as the agent's handlers see it: whether it is an action and whether a human approved
//! it, the bytes the approved content names by hash, and where streamed output goes. Kept apart
//! from the dispatch so handler modules (`playbooks`, `files`) depend on it and not on each other.

use mttrly_core::capability::Outcome;
use mttrly_core::{ErrorCode, MttrlyError};
use tokio::sync::mpsc;

/// The task context every [`mttrly_core::capability::Handler`] of this agent receives.
pub struct Task<'a> {
    /// The task carries an action id (central committed it as running).
    pub action: bool,
    /// That action id (empty for plain requests): the update fetches its release by it.
    pub action_id: &'a str,
    /// A human approved that action (actions started at once as read-only were not).
    pub approved: bool,
    /// Bytes the approved content names by hash (a file write's new content).
    pub payload: &'a [u8],
    /// Output chunks, already redacted, in order.
    pub chunks: &'a mpsc::Sender<String>,
}

/// A refusal by this host's policy.
pub fn denied(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message)
}

/// Fails unless the task is an action: changes never run as plain requests.
pub fn require_action<A>(task: &Task<'_>, what: &str) -> Result<(), Outcome<A>> {
    if task.action { Ok(()) } else { Err(Outcome::failed(denied(what.to_owned()))) }
}
