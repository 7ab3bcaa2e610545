//! Slack: approval messages posted by a Slack app to each approver's direct messages, decided
//! with buttons there.
//!
//! - Out: [`Slack`] is the [`ChatChannel`]: `chat.postMessage` to the linked person's user id
//!   (Slack delivers it in the app's DM with them) with the Block Kit layout of [`blocks`], and
//!   `chat.update` for each follow-up (the buttons go once decided). [`api`] is the Web API client.
//! - In: Slack POSTs to `/hooks/slack/interactions` (button taps, modal submissions) and
//!   `/hooks/slack/commands` (`/mttrly link CODE`, `/mttrly help`); [`handlers`] checks every
//!   request's signature on the raw body first ([`verify`]), then acknowledges within Slack's
//!   3 seconds and does the Web API calls after.
//! - A tap is a [`crate::chat::decide::tap`] by the chat account `TEAM:USER` on the message at
//!   (channel, ts): the decision engine and the tap's binding to the message and its person are
//!   the provider-neutral part's, never re-implemented here.

pub mod api;
pub mod blocks;
pub mod config;
pub mod handlers;
pub mod verify;

use std::sync::Arc;

use mttrly_core::{ChatProvider, MttrlyError};
use serde_json::json;

use self::api::{Api, ApiError};
use self::config::{Secret, SlackConfig};
use crate::chat::message::Shared;
use crate::chat::{ChannelFuture, ChatChannel, Posted, Recipient};

/// The largest request accepted from Slack (an interaction payload repeats the whole message).
pub const MAX_BODY: usize = 256 * 1024;

/// A configured Slack app.
pub struct Slack {
    api: Arc<Api>,
    signing_secret: Secret,
}

impl Slack {
    /// The app of `[slack]`, its secrets read through `env` (a `VALIDATION_ERROR` naming an unset
    /// variable).
    pub fn from_config(config: &SlackConfig, env: impl Fn(&str) -> Option<String>) -> Result<Arc<Self>, MttrlyError> {
        let resolved = config.resolve(env)?;
        Ok(Arc::new(Self {
            api: Api::new(resolved.api_url, resolved.bot_token),
            signing_secret: resolved.signing_secret,
        }))
    }

    /// The Web API client.
    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    fn signing_secret(&self) -> &[u8] {
        self.signing_secret.expose().as_bytes()
    }

    /// Shows `text` to `user` only, in `channel` (`chat.postEphemeral`); a failure is logged.
    async fn tell(&self, channel: &str, user: &str, text: &str) {
        let body = json!({ "channel": channel, "user": user, "text": blocks::escape(&blocks::cut(text, blocks::MAX_SECTION_CHARS)) });
        if let Err(e) = self.api.call("chat.postEphemeral", body).await {
            tracing::warn!(error = %mttrly_core::ErrorChain(&e), "could not tell a Slack user why their tap did nothing");
        }
    }

    /// Sends `text` to `user` in the app's DM with them (`chat.postMessage` to the user id).
    async fn direct(&self, user: &str, text: &str) {
        let body = json!({ "channel": user, "text": blocks::escape(&blocks::cut(text, blocks::MAX_SECTION_CHARS)) });
        if let Err(e) = self.api.call("chat.postMessage", body).await {
            tracing::warn!(error = %mttrly_core::ErrorChain(&e), "could not send a Slack user a direct message");
        }
    }
}

impl ChatChannel for Slack {
    fn provider(&self) -> ChatProvider {
        ChatProvider::Slack
    }

    fn post(&self, to: Recipient, message: Shared) -> ChannelFuture<Posted> {
        let api = Arc::clone(&self.api);
        Box::pin(async move {
            let (text, blocks) = blocks::message(message.as_ref());
            let body = json!({
                "channel": to.chat_id, "text": text, "blocks": blocks,
                "unfurl_links": false, "unfurl_media": false,
            });
            let answer = api.call("chat.postMessage", body).await?;
            match (answer["channel"].as_str(), answer["ts"].as_str()) {
                (Some(channel), Some(ts)) if !channel.is_empty() && !ts.is_empty() => {
                    Ok(Posted { chat_id: channel.to_owned(), message_id: ts.to_owned() })
                }
                _ => {
                    Err(ApiError::Malformed { method: "chat.postMessage", detail: "no channel or ts".to_owned() }
                        .into())
                }
            }
        })
    }

    fn notify(&self, to: Recipient, notice: crate::chat::notice::Notice) -> ChannelFuture<()> {
        let api = Arc::clone(&self.api);
        Box::pin(async move {
            let (text, blocks) = blocks::notice(&notice);
            let body = json!({
                "channel": to.chat_id, "text": text, "blocks": blocks,
                "unfurl_links": false, "unfurl_media": false,
            });
            api.call("chat.postMessage", body).await?;
            Ok(())
        })
    }

    fn edit(&self, posted: Posted, message: Shared) -> ChannelFuture<()> {
        let api = Arc::clone(&self.api);
        Box::pin(async move {
            let (text, blocks) = blocks::message(message.as_ref());
            let body = json!({ "channel": posted.chat_id, "ts": posted.message_id, "text": text, "blocks": blocks });
            api.call("chat.update", body).await?;
            Ok(())
        })
    }
}
