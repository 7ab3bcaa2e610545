//! What the bot receives, and what it does with it.
//!
//! Updates arrive one of two ways, then go through [`handle`] alike:
//! - polling (the default): a dedicated thread long-polls `getUpdates` (`offset` = last
//!   `update_id` + 1 confirms what was received, `timeout` holds the request open until something
//!   arrives) and hands each update to the runtime. A thread rather than the blocking pool, so a
//!   poll in flight never holds up the runtime's shutdown: the thread notices the stop when its
//!   request returns. Errors back off (1 s doubling to 30 s). Confirmed offsets live in memory: after
//!   a restart Telegram re-delivers what was not confirmed, and a repeated tap finds the action
//!   decided (the engine refuses a second decision).
//! - webhook mode: `POST /hooks/telegram`, accepted only with the `X-Telegram-Bot-Api-Secret-Token`
//!   given to `setWebhook` (compared in constant time; 401 otherwise; 404 when Telegram is not
//!   configured for webhooks). Central answers 200 at once and handles the update after.
//!
//! What an update does:
//! - `/start CODE` in a private chat links that Telegram account (`from.id`) to the person who
//!   made the code; in a group it is refused (approval messages go to private chats only).
//! - A tap (`callback_query`) becomes a decision through [`decide::tap`], bound to the message it
//!   was on; the tap is always answered (`answerCallbackQuery`) within [`ANSWER_WITHIN`], so the
//!   spinner stops even when the decision takes longer (its outcome then follows as a message).
//!   Reject rejects at once, with the reason "rejected in Telegram by @name".
//! - When the approval rule needs a second factor, the bot asks for the code (a force-reply
//!   message) and remembers for [`super::CODE_WAIT`] which message it is for
//!   ([`super::awaiting`]); a message that looks like a code (six digits, or a recovery code)
//!   completes the decision whose prompt or approval message it replies to (or, as no reply, the
//!   only one waiting), and the bot deletes that message so the code does not linger in the chat.
//!   A wrong code says so; the engine counts it towards the lockout.
//! - Anything else in a private chat gets a short help reply; group chatter gets nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mttrly_core::action::ActionState;
use mttrly_core::{ChatProvider, ErrorCode, MttrlyError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::api::{CallbackQuery, Message, Update, User};
use super::awaiting::{AwaitingCode, Miss};
use super::{Mode, Telegram, layout};
use crate::app_state::AppState;
use crate::chat::bypass::Decided;
use crate::chat::decide::{self, Choice, Outcome, Tap};
use crate::chat::{Posted, links};
use crate::db::chat::Subject;
use crate::state::Central;

/// How long `getUpdates` holds a request open waiting for an update (seconds).
pub const POLL_SECONDS: u64 = 25;

/// The longest a tap waits for its decision before the spinner is answered anyway.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// Budget of a reply or an answer (the person is looking at their phone: no long retries).
const REPLY_BUDGET: Duration = Duration::from_secs(5);

/// The largest update accepted on the webhook (an update is a few kilobytes).
pub const MAX_BODY: usize = 1024 * 1024;

/// The header Telegram sends with the webhook's secret token.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Starts receiving in polling mode (nothing in webhook mode): a polling thread feeding a task
/// that handles each update; both stop when `stop` changes.
pub fn spawn(
    telegram: &Arc<Telegram>,
    central: &Arc<Central>,
    mut stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if telegram.mode() != Mode::Polling {
        return None;
    }
    let (tx, mut rx) = mpsc::channel::<Update>(256);
    let stopped = Arc::new(AtomicBool::new(false));
    let api = Arc::clone(telegram.api());
    let flag = Arc::clone(&stopped);
    let spawned = std::thread::Builder::new().name("telegram-poll".into()).spawn(move || poll(&api, &tx, &flag));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the Telegram polling thread; the bot receives nothing");
        return None;
    }
    let (telegram, central) = (Arc::clone(telegram), Arc::clone(central));
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                update = rx.recv() => match update {
                    Some(update) => {
                        let (telegram, central) = (Arc::clone(&telegram), Arc::clone(&central));
                        tokio::spawn(async move { handle(&central, &telegram, update).await });
                    }
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        stopped.store(true, Ordering::Relaxed);
    }))
}

/// The polling loop (on its own thread): `getUpdates` until stopped or nobody listens.
fn poll(api: &super::BotApi, tx: &mpsc::Sender<Update>, stopped: &AtomicBool) {
    let mut offset: Option<i64> = None;
    let mut backoff = Duration::from_secs(1);
    while !stopped.load(Ordering::Relaxed) && !tx.is_closed() {
        let mut body = json!({ "timeout": POLL_SECONDS, "allowed_updates": ["message", "callback_query"] });
        if let Some(o) = offset {
            body["offset"] = Value::from(o);
        }
        let wait = Duration::from_secs(POLL_SECONDS + 10);
        match api.call_once::<Vec<Value>>("getUpdates", &body, wait) {
            Ok(updates) => {
                backoff = Duration::from_secs(1);
                for raw in updates {
                    let Some(id) = raw.get("update_id").and_then(Value::as_i64) else { continue };
                    offset = Some(offset.map_or(id + 1, |o| o.max(id + 1)));
                    match serde_json::from_value::<Update>(raw) {
                        Ok(update) => {
                            if tx.blocking_send(update).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(update_id = id, error = %e, "a Telegram update could not be read; skipped");
                        }
                    }
                }
            }
            Err(e) => {
                if e.status() == Some(409) {
                    tracing::error!(error = %e, "Telegram refused polling: another poller or a webhook uses this bot token");
                } else {
                    tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "Telegram getUpdates failed");
                }
                let mut slept = Duration::ZERO;
                while slept < backoff && !stopped.load(Ordering::Relaxed) && !tx.is_closed() {
                    std::thread::sleep(Duration::from_millis(100));
                    slept += Duration::from_millis(100);
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// `POST /hooks/telegram`: one update from Telegram in webhook mode.
pub(crate) async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = &state.central;
    let Some(telegram) = central.telegram.get().filter(|t| t.mode() == Mode::Webhook) else {
        return refusal(StatusCode::NOT_FOUND, &MttrlyError::new(ErrorCode::NotFound, "no such hook"));
    };
    let expected = telegram.webhook_secret.as_ref().map(|s| s.0.as_bytes()).unwrap_or_default();
    let given = headers.get(SECRET_HEADER).map(axum::http::HeaderValue::as_bytes);
    if expected.is_empty() || !given.is_some_and(|g| same(g, expected)) {
        tracing::warn!("Telegram webhook delivery refused: missing or wrong secret token");
        return refusal(
            StatusCode::UNAUTHORIZED,
            &MttrlyError::new(ErrorCode::AuthFailed, "a valid X-Telegram-Bot-Api-Secret-Token is required"),
        );
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(ErrorCode::ValidationError, format!("not a Telegram update: {e}")),
            );
        }
    };
    let (telegram, central) = (Arc::clone(telegram), Arc::clone(central));
    tokio::spawn(async move { handle(&central, &telegram, update).await });
    StatusCode::OK.into_response()
}

fn refusal(status: StatusCode, err: &MttrlyError) -> Response {
    (status, axum::Json(serde_json::to_value(err.body()).unwrap_or(Value::Null))).into_response()
}

/// Compares two secrets in time independent of where they differ (hashed first, so the length
/// does not leak either).
fn same(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Does what one update asks.
pub async fn handle(central: &Arc<Central>, telegram: &Arc<Telegram>, update: Update) {
    if let Some(query) = update.callback_query {
        on_tap(central, telegram, query).await;
    } else if let Some(message) = update.message {
        on_message(central, telegram, message).await;
    }
}

/// Sends `text` to `chat` (plain text), logging a failure.
async fn reply(telegram: &Telegram, chat: i64, text: &str, extra: Option<Value>) -> Option<Value> {
    let mut body = json!({ "chat_id": chat, "text": text });
    if let (Some(Value::Object(fields)), Some(map)) = (extra, body.as_object_mut()) {
        map.extend(fields);
    }
    telegram.call_logged("sendMessage", body, REPLY_BUDGET).await
}

/// Stops the tap's spinner with `text` (Telegram shows at most 200 characters).
async fn answer(telegram: &Telegram, query_id: &str, text: &str) {
    let text: String = text.chars().take(200).collect();
    telegram
        .call_logged("answerCallbackQuery", json!({ "callback_query_id": query_id, "text": text }), REPLY_BUDGET)
        .await;
}

/// The person's words for what a tap or a code did.
fn outcome_text(result: &Result<Outcome, MttrlyError>) -> String {
    match result {
        Ok(Outcome::Decided(view)) => match view.status {
            ActionState::PendingApproval => {
                let more = view.approvals_required.saturating_sub(u32::try_from(view.approvals.len()).unwrap_or(0));
                format!("Approved; {} more approval(s) needed", more.max(1))
            }
            ActionState::Rejected => "Rejected".to_owned(),
            ActionState::Failed => "Approved; it ran and failed".to_owned(),
            _ => "Approved".to_owned(),
        },
        Ok(Outcome::CodeNeeded { subject: Subject::Action(_) }) => "Send your 6-digit code to approve".to_owned(),
        Ok(Outcome::CodeNeeded { subject: Subject::Bypass(_) }) => "Send your 6-digit code to grant".to_owned(),
        Ok(Outcome::Bypass(Decided::Granted(state))) => match &state.expires_at {
            Some(until) => format!("Granted: active until {until}"),
            None => "Granted".to_owned(),
        },
        Ok(Outcome::Bypass(Decided::Denied { now: true, .. })) => "Denied".to_owned(),
        Ok(Outcome::Bypass(Decided::Denied { now: false, .. })) => {
            "Already denied or withdrawn; nothing changed".to_owned()
        }
        Err(e) => format!("Refused: {}", e.message()),
    }
}

async fn on_tap(central: &Arc<Central>, telegram: &Arc<Telegram>, query: CallbackQuery) {
    let Some(message) = &query.message else {
        answer(telegram, &query.id, "Refused: this is not an approval request mttrly sent you").await;
        return;
    };
    let choice = match query.data.as_deref() {
        Some(layout::APPROVE) => Choice::Approve,
        Some(layout::REJECT) => {
            Choice::Reject { reason: Some(format!("rejected in Telegram by {}", query.from.label())) }
        }
        _ => {
            answer(telegram, &query.id, "Refused: unknown button").await;
            return;
        }
    };
    let posted = Posted { chat_id: message.chat.id.to_string(), message_id: message.message_id.to_string() };
    let tap = Tap {
        provider: ChatProvider::Telegram,
        external_user: query.from.id.to_string(),
        posted: posted.clone(),
        choice,
        code: None,
    };
    let decision = decide::tap(central, tap);
    tokio::pin!(decision);
    // A code typed right after the answer must find its decision waiting: remember it first.
    let remember = |result: &Result<Outcome, MttrlyError>| {
        if let Ok(Outcome::CodeNeeded { subject }) = result {
            telegram.await_code(query.from.id, posted.clone(), subject.clone());
        }
    };
    let result = if let Ok(result) = tokio::time::timeout(ANSWER_WITHIN, &mut decision).await {
        remember(&result);
        answer(telegram, &query.id, &outcome_text(&result)).await;
        result
    } else {
        // Stop the spinner now; the outcome follows as a message.
        answer(telegram, &query.id, "Working on it…").await;
        let result = decision.await;
        remember(&result);
        reply(telegram, message.chat.id, &outcome_text(&result), None).await;
        result
    };
    if let Ok(Outcome::CodeNeeded { subject }) = result {
        let text = match subject {
            Subject::Action(id) => format!("Reply to this message with your 6-digit code to approve {id}"),
            Subject::Bypass(id) => format!("Reply to this message with your 6-digit code to grant bypass {id}"),
        };
        let force = json!({ "reply_markup": { "force_reply": true, "input_field_placeholder": "123456" } });
        let sent = reply(telegram, message.chat.id, &text, Some(force)).await;
        if let Some(prompt) = sent.as_ref().and_then(|m| m["message_id"].as_i64()) {
            telegram.prompted(query.from.id, &posted, prompt);
        }
    }
}

/// `/start` or `/start@bot` and what follows it, if `text` is that command.
fn start_command(text: &str) -> Option<&str> {
    let rest = text.trim().strip_prefix("/start")?;
    let rest = match rest.strip_prefix('@') {
        Some(bot) => bot.split_once(char::is_whitespace).map_or("", |(_, r)| r),
        None if rest.is_empty() || rest.starts_with(char::is_whitespace) => rest,
        None => return None,
    };
    Some(rest.trim())
}

/// Whether `text` has the shape of a TOTP code (six digits) or a recovery code.
fn looks_like_code(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        || mttrly_core::second_factor::recovery::hash_typed(text).is_some()
}

const HELP_UNLINKED: &str = "This bot sends mttrly approval requests to the people of a team. To receive them here, run \
     `mttrly-cli users link telegram` and send me: /start CODE";

async fn on_message(central: &Arc<Central>, telegram: &Arc<Telegram>, message: Message) {
    let Some(from) = message.from.as_ref().filter(|u| !u.is_bot) else { return };
    let text = message.text.as_deref().unwrap_or("");
    let private = message.chat.kind == "private";
    if let Some(code) = start_command(text) {
        let answer = if !private {
            "Link your account from a private chat with me: approval requests are only sent to private chats."
                .to_owned()
        } else if code.is_empty() {
            HELP_UNLINKED.to_owned()
        } else {
            link(central, from, message.chat.id, code).await
        };
        reply(telegram, message.chat.id, &answer, None).await;
        return;
    }
    if !private {
        return;
    }
    let reply_to = message.reply_to_message.as_ref().map(|m| m.message_id);
    let waiting = if looks_like_code(text) { Some(telegram.take_awaiting(from.id, reply_to)) } else { None };
    match waiting {
        None | Some(Err(Miss::NothingWaits)) => {}
        Some(taken) => {
            // The code is spent or refused either way; it should not stay readable in the chat.
            let delete = json!({ "chat_id": message.chat.id, "message_id": message.message_id });
            let (words, _) = tokio::join!(
                decide_with_code(central, from, text, taken),
                telegram.call_logged("deleteMessage", delete, REPLY_BUDGET)
            );
            reply(telegram, message.chat.id, &words, None).await;
            return;
        }
    }
    let linked = central.db.chat_lookups().owner(ChatProvider::Telegram, &from.id.to_string()).await.ok().flatten();
    let help = match linked {
        Some(owner) => format!(
            "Hello {}: approval requests for you arrive in this chat with Approve and Reject buttons.",
            mttrly_core::display::text(&owner.user_name)
        ),
        None => HELP_UNLINKED.to_owned(),
    };
    reply(telegram, message.chat.id, &help, None).await;
}

/// Decides what a typed code is for (`taken`), and the sentence to send back.
async fn decide_with_code(
    central: &Arc<Central>,
    from: &User,
    code: &str,
    taken: Result<AwaitingCode, Miss>,
) -> String {
    let waiting = match taken {
        Ok(waiting) => waiting,
        Err(Miss::Ambiguous) => {
            return "Several requests wait for your code: reply to the message that asks for it, so the code \
                    decides the request you mean. Nothing was decided."
                .to_owned();
        }
        Err(Miss::NotWaiting | Miss::NothingWaits) => {
            return "That message no longer waits for a code (decided, expired or replaced): tap Approve again. \
                    Nothing was decided."
                .to_owned();
        }
    };
    let tap = Tap {
        provider: ChatProvider::Telegram,
        external_user: from.id.to_string(),
        posted: waiting.posted,
        choice: Choice::Approve,
        code: Some(code.trim().to_owned()),
    };
    let result = decide::tap(central, tap).await;
    match &result {
        Ok(Outcome::CodeNeeded { .. }) => "Refused: that code was not accepted".to_owned(),
        Err(e) => match waiting.subject {
            Subject::Action(_) => format!("Refused: {} (tap Approve again to retry)", e.message()),
            Subject::Bypass(_) => format!("Refused: {} (tap Grant again to retry)", e.message()),
        },
        Ok(_) => format!("{} {}", outcome_text(&result), waiting.subject),
    }
}

/// Redeems a link code sent by `from` from the private chat `chat`: the sentence to send back.
async fn link(central: &Central, from: &User, chat: i64, code: &str) -> String {
    match links::redeem(central, ChatProvider::Telegram, code, &from.id.to_string(), &chat.to_string(), &from.label())
        .await
    {
        Ok(linked) => format!(
            "Linked: this Telegram account is now {}'s in mttrly. Approval requests you can decide will arrive here.",
            mttrly_core::display::text(&linked.user_name)
        ),
        Err(refused) => refused.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_command_is_read_as_telegram_sends_it() {
        assert_eq!(start_command("/start 7KQ2M9XW4RTD"), Some("7KQ2M9XW4RTD"));
        assert_eq!(start_command("/start@mttrly_bot 7KQ2"), Some("7KQ2"));
        assert_eq!(start_command("/start"), Some(""));
        assert_eq!(start_command("/starting"), None);
        assert_eq!(start_command("hello"), None);
    }

    #[test]
    fn codes_are_six_digits_or_recovery_codes() {
        assert!(looks_like_code("123456") && looks_like_code(" 123 456 "));
        assert!(looks_like_code("7hq2-m0xd-9c4e-kt1w"));
        assert!(!looks_like_code("12345") && !looks_like_code("1234567") && !looks_like_code("approve"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"ab", b"abc") && !same(b"", b"abc"));
    }
}
