//! Approval prompts: telling humans an action waits for them.
//!
//! A [`Notifier`] delivers an [`ApprovalPrompt`] (today: a signed webhook; later chat and the
//! dashboard). When the configuration requires a prompt and no notifier could deliver one, the
//! action is failed closed (`APPROVAL_NOTIFICATION_FAILED`): an action nobody was told about must
//! never sit there waiting to be approved by surprise.
//!
//! Prompts ride the event bus ([`prompts`]): one leaves only once the action's creation is
//! durable in the audit log, and the submitter waits for its delivery result.

pub mod prompts;
pub mod webhook;

pub use prompts::{Delivery, Prompts};

use mttrly_core::display;
use serde::Serialize;

use crate::db::actions::ActionRow;

/// What a human needs to decide, exactly. Receivers show it to people (chat, pagers), so every
/// text field is escaped for humans ([`display`]) when the prompt is built; `content` stays the
/// exact JSON an approval is bound to, for machines that check `content_sha256`.
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
    /// One line, central's words (escaped).
    pub description: String,
    /// Exactly what runs, as data (not escaped: verify it against `content_sha256`).
    pub content: serde_json::Value,
    /// Exactly what runs, as one escaped line for people to read.
    pub exactly: String,
    /// The hash an approval binds to.
    pub content_sha256: String,
    /// Who asked.
    pub requested_by: String,
    /// When it expires (RFC 3339).
    pub expires_at: String,
    /// The command that approves it.
    pub approve_command: String,
    /// The command that rejects it.
    pub reject_command: String,
    /// The requester's own words, escaped, one line, capped; never a fact. Show it last, under
    /// [`display::ASSISTANT_LABEL`].
    pub assistant_reason_unverified: Option<String>,
}

impl ApprovalPrompt {
    /// The `action.pending` prompt for `action`, every text field escaped for humans.
    pub fn pending(action: &ActionRow) -> Self {
        let canonical = String::from_utf8_lossy(&action.content.canonical_bytes()).into_owned();
        Self {
            event: "action.pending",
            action_id: action.id.to_string(),
            account_id: action.account_id.to_string(),
            server_id: action.server_id.to_string(),
            server_name: display::text(&action.server_name).into_owned(),
            environment: action.environment.as_str().to_owned(),
            action_type: action.content.action_type().as_str().to_owned(),
            description: display::text(&action.description).into_owned(),
            content: serde_json::to_value(&action.content).unwrap_or_default(),
            exactly: display::exact(&canonical).into_owned(),
            content_sha256: action.content_sha256.clone(),
            requested_by: display::text(&action.requested_by.to_string()).into_owned(),
            expires_at: crate::db::timestamp(action.expires_at).to_string(),
            approve_command: format!("mttrly-cli actions approve {}", action.id),
            reject_command: format!("mttrly-cli actions reject {}", action.id),
            assistant_reason_unverified: action
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(display::assistant_text),
        }
    }
}

/// Why a prompt was not delivered. Each notifier (webhook today; chat channels next) reports one
/// of these, so the fail-closed decision and the logs read the same whatever the channel.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The prompt could not be encoded for the channel.
    #[error("the prompt could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// The receiver answered with an unsuccessful HTTP status.
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    /// No answer: connection refused, timeout, TLS failure.
    #[error("the receiver could not be reached")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Every attempt failed; the last failure is the source.
    #[error("{attempts} attempts failed")]
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: Box<DeliveryError>,
    },
}

/// Delivers approval prompts. Blocking: called on the blocking pool.
pub trait Notifier: Send + Sync {
    /// A name for logs and error details.
    fn name(&self) -> String;
    /// Delivers one prompt (with its own retries and timeout); `Err` explains the last failure.
    fn deliver(&self, prompt: &ApprovalPrompt) -> Result<(), DeliveryError>;
    /// The longest [`Notifier::deliver`] can take, every retry and backoff included.
    fn max_duration(&self) -> std::time::Duration;
}
