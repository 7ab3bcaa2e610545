//! Approvals in Telegram: a bot posts each approval message to the private chat of every eligible
//! approver who linked their Telegram account, with Approve / Reject buttons, and edits it as the
//! action is decided, runs and ends.
//!
//! - [`config`]: `[telegram]` (the bot token by variable name, `api_url`, `mode`).
//! - [`api`]: the Bot API client (JSON POSTs, the answer envelope, retries, the token kept out
//!   of every error).
//! - [`layout`]: an approval message as `sendMessage` / `editMessageText` parameters.
//! - [`receiver`]: what the bot receives (by `getUpdates` long polling, or `POST /hooks/telegram`
//!   in webhook mode): `/start CODE` links, button taps decide, a typed code completes a decision
//!   that needs a second factor.
//!
//! [`Telegram`] is the [`ChatChannel`]: the router (`chat::Chat`) decides who is told; this module
//! only speaks Telegram.

pub mod api;
pub mod awaiting;
pub mod config;
pub mod layout;
pub mod receiver;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mttrly_core::ChatProvider;
use serde_json::Value;

pub use awaiting::CODE_WAIT;
pub use config::{Mode, TelegramConfig};

use crate::chat::message::Shared;
use crate::chat::{ChannelFuture, ChatChannel, Posted, Recipient};
use crate::db::chat::Subject;
use crate::notify::DeliveryError;
use api::{ApiError, BotApi};
use awaiting::{Awaiting, AwaitingCode, Miss};

/// How long posting one approval message may take, retries included (the router gives every
/// channel 15 s in all; a dead Telegram must not use it all up on one person).
pub const POST_BUDGET: Duration = Duration::from_secs(8);

/// How long an edit may take, retries included.
const EDIT_BUDGET: Duration = Duration::from_secs(8);

/// The Telegram channel: the bot's client, how it receives, and the decisions waiting for a code.
pub struct Telegram {
    api: Arc<BotApi>,
    mode: Mode,
    webhook_secret: Option<config::Secret>,
    /// The decisions waiting for a person's code, and which one a typed code is for.
    awaiting: Mutex<Awaiting>,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl Telegram {
    /// The channel for a resolved `[telegram]` section (its secrets read by
    /// [`TelegramConfig::resolve`]).
    pub fn new(config: &TelegramConfig) -> Result<Arc<Self>, mttrly_core::MttrlyError> {
        let Some(token) = &config.token else {
            return Err(mttrly_core::MttrlyError::new(
                mttrly_core::ErrorCode::InternalError,
                "[telegram] was not resolved before the bot started",
            ));
        };
        Ok(Arc::new(Self {
            api: BotApi::new(&config.api_url, &token.0),
            mode: config.mode,
            webhook_secret: config.webhook_secret.clone(),
            awaiting: Mutex::new(Awaiting::default()),
        }))
    }

    /// How updates arrive.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The Bot API client.
    pub fn api(&self) -> &Arc<BotApi> {
        &self.api
    }

    /// Remembers that `user`'s decision on `posted` waits for their code ([`awaiting`]).
    pub(crate) fn await_code(&self, user: i64, posted: Posted, subject: Subject) {
        self.awaiting().insert(user, posted, subject, Instant::now());
    }

    /// Records `prompt`, the bot's message asking `user` for the code of the decision on `posted`.
    pub(crate) fn prompted(&self, user: i64, posted: &Posted, prompt: i64) {
        self.awaiting().prompted(user, posted, prompt);
    }

    /// Takes the decision a code from `user` is for (`reply_to`: the message the code replies to).
    pub(crate) fn take_awaiting(&self, user: i64, reply_to: Option<i64>) -> Result<AwaitingCode, Miss> {
        self.awaiting().take(user, reply_to, Instant::now())
    }

    fn awaiting(&self) -> std::sync::MutexGuard<'_, Awaiting> {
        self.awaiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `method` with `body`, within `budget`; a failure is logged (never with the token).
    pub(crate) async fn call_logged(&self, method: &'static str, body: Value, budget: Duration) -> Option<Value> {
        match self.api.call::<Value>(method, body, budget).await {
            Ok(v) => Some(v),
            Err((e, attempts)) => {
                tracing::warn!(method, attempts, error = %e, "Telegram call failed");
                None
            }
        }
    }
}

/// A failed call as the router reports it.
fn delivery_error(error: ApiError, attempts: u32) -> DeliveryError {
    let last = match error.status() {
        Some(status) if !error.is_temporary() => {
            tracing::warn!(status, description = error.description(), "Telegram refused an approval message");
            DeliveryError::Status(status)
        }
        _ => DeliveryError::Transport(Box::new(error)),
    };
    if attempts > 1 { DeliveryError::Exhausted { attempts, last: Box::new(last) } } else { last }
}

impl ChatChannel for Telegram {
    fn provider(&self) -> ChatProvider {
        ChatProvider::Telegram
    }

    fn post(&self, to: Recipient, message: Shared) -> ChannelFuture<Posted> {
        let api = Arc::clone(&self.api);
        Box::pin(async move {
            let body = layout::send(&to.chat_id, message.as_ref());
            let sent: api::Message =
                api.call("sendMessage", body, POST_BUDGET).await.map_err(|(e, n)| delivery_error(e, n))?;
            Ok(Posted { chat_id: sent.chat.id.to_string(), message_id: sent.message_id.to_string() })
        })
    }

    fn notify(&self, to: Recipient, notice: crate::chat::notice::Notice) -> ChannelFuture<()> {
        let api = Arc::clone(&self.api);
        Box::pin(async move {
            let body = layout::notice(&to.chat_id, &notice);
            api.call::<api::Message>("sendMessage", body, POST_BUDGET).await.map_err(|(e, n)| delivery_error(e, n))?;
            Ok(())
        })
    }

    fn edit(&self, posted: Posted, message: Shared) -> ChannelFuture<()> {
        let api = Arc::clone(&self.api);
        Box::pin(async move {
            let body = layout::edit(&posted, message.as_ref());
            match api.call::<Value>("editMessageText", body, EDIT_BUDGET).await {
                Ok(_) => Ok(()),
                // Two follow-ups showing the same state: the message already says it.
                Err((ApiError::Refused { status: 400, description, .. }, _))
                    if description.contains("message is not modified") =>
                {
                    Ok(())
                }
                Err((e, n)) => Err(delivery_error(e, n)),
            }
        })
    }
}
