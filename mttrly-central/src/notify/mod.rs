//! Approval prompts: telling humans an action waits for them.
//!
//! A [`Notifier`] delivers an [`ApprovalPrompt`] (today: a signed webhook; later chat and the
//! dashboard). When the configuration requires a prompt and no notifier could deliver one, the
//! action is failed closed (`APPROVAL_NOTIFICATION_FAILED`): an action nobody was told about must
//! never sit there waiting to be approved by surprise.

pub mod webhook;

use serde::Serialize;

/// What a human needs to decide, exactly.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalPrompt {
    /// Always `action.pending`.
    pub event: &'static str,
    /// The action.
    pub action_id: String,
    /// The tenant.
    pub account_id: String,
    /// The server.
    pub server_id: String,
    /// The server's name.
    pub server_name: String,
    /// Its environment.
    pub environment: String,
    /// The action type.
    pub action_type: String,
    /// One line.
    pub description: String,
    /// Exactly what runs.
    pub content: serde_json::Value,
    /// The hash an approval binds to.
    pub content_sha256: String,
    /// Who asked.
    pub requested_by: String,
    /// When it expires (RFC 3339).
    pub expires_at: String,
    /// The command that approves it.
    pub approve_command: String,
}

/// Delivers approval prompts. Blocking: called on the blocking pool.
pub trait Notifier: Send + Sync {
    /// A name for logs and error details.
    fn name(&self) -> String;
    /// Delivers one prompt (with its own retries and timeout); `Err` explains the last failure.
    fn deliver(&self, prompt: &ApprovalPrompt) -> Result<(), String>;
}
