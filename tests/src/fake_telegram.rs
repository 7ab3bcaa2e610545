//! A fake Telegram Bot API on loopback, speaking the documented protocol
//! (<https://core.telegram.org/bots/api>): `POST /bot<token>/<method>` with a JSON body, answered
//! with `{"ok": true, "result": …}` or `{"ok": false, "error_code": …, "description": …}`.
//!
//! Methods: `getUpdates` (long polling: `offset` confirms every update below it, `timeout` holds
//! the request until an update is injected; a second concurrent poll gets 409 as Telegram's does),
//! `sendMessage`, `editMessageText` (400 "message is not modified" for an identical edit, 400
//! "message to edit not found"), `answerCallbackQuery`, `deleteMessage`. Text over 4096
//! characters and `callback_data` over 64 bytes are refused as Telegram refuses them. A wrong
//! token is 401.
//!
//! A test injects what people do (a private message, a tap) with [`FakeTelegram::inject`] and the
//! update builders, and waits for what the bot did with [`FakeTelegram::wait_call`]. Every call
//! is recorded with the instant it arrived (the chat latency bench reads those).
//!
//! Only `axum`, `tokio` and `serde_json` are used, so central's bench includes this file as is.

#![allow(clippy::missing_panics_doc, dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One call the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method (`sendMessage`).
    pub method: String,
    /// Its JSON parameters.
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, by the wall clock (to compare with timestamps central records).
    pub wall: std::time::SystemTime,
    /// The id of the message it created or edited (`sendMessage`, `editMessageText`), when it
    /// succeeded.
    pub message_id: Option<i64>,
}

#[derive(Default)]
struct Inner {
    /// Updates not yet confirmed, oldest first.
    updates: Vec<Value>,
    next_update_id: i64,
    next_message_id: i64,
    /// Every message that exists, by (chat, message id): text and reply markup.
    messages: HashMap<(i64, i64), (String, Value)>,
    calls: Vec<Call>,
    /// Answer every call with this status (500: Telegram is down).
    failure: Option<u16>,
    /// A `getUpdates` is waiting.
    polling: bool,
}

struct Shared {
    token: String,
    inner: Mutex<Inner>,
    changed: Notify,
}

impl Shared {
    /// The state (a test that panicked while holding it leaves it usable for the others).
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The fake Bot API, serving until dropped.
pub struct FakeTelegram {
    /// The `api_url` to configure (`http://127.0.0.1:PORT`).
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn ok(result: &Value) -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(json!({ "ok": true, "result": result })))
}

fn refused(status: u16, description: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({ "ok": false, "error_code": status, "description": description })),
    )
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// The bot's own account, as `from` of what it sends.
fn bot_user() -> Value {
    json!({ "id": 7_000_000_001_i64, "is_bot": true, "first_name": "mttrly", "username": "mttrly_bot" })
}

impl FakeTelegram {
    /// Serves the bot `token` on an ephemeral loopback port.
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            inner: Mutex::new(Inner { next_update_id: 100, next_message_id: 1, ..Inner::default() }),
            changed: Notify::new(),
        });
        let app =
            axum::Router::new().route("/{bot}/{method}", axum::routing::post(handle)).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Bot API");
        let addr = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://{addr}"), shared, server }
    }

    /// Answers every call with `status` from now on (`None`: healthy again).
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.lock().failure = status;
    }

    /// Queues `update` (its `update_id` is set here) for the next `getUpdates`; returns the id.
    /// A message it carries now exists (the bot may delete it).
    pub fn inject(&self, mut update: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(id);
            if let Some(m) = update.get("message")
                && let (Some(chat), Some(mid)) = (as_i64(&m["chat"]["id"]), as_i64(&m["message_id"]))
            {
                let text = m["text"].as_str().unwrap_or("").to_owned();
                inner.messages.insert((chat, mid), (text, Value::Null));
            }
            inner.updates.push(update);
            id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// A fresh message id (for messages people send).
    pub fn next_message_id(&self) -> i64 {
        let mut inner = self.shared.lock();
        inner.next_message_id += 1;
        inner.next_message_id
    }

    /// The update of `text` sent by `user` (id, username) in `chat` of `kind` (`private`, `group`).
    pub fn text_update(&self, user: (i64, &str), chat: (i64, &str), text: &str) -> Value {
        json!({
            "message": {
                "message_id": self.next_message_id(),
                "from": { "id": user.0, "is_bot": false, "first_name": user.1, "username": user.1 },
                "chat": { "id": chat.0, "type": chat.1 },
                "date": 1_764_000_000,
                "text": text,
            }
        })
    }

    /// Injects `text` from `user` in their private chat with the bot (chat id = user id).
    pub fn say(&self, user: (i64, &str), text: &str) -> i64 {
        let update = self.text_update(user, (user.0, "private"), text);
        let mid = update["message"]["message_id"].as_i64().unwrap_or_default();
        self.inject(update);
        mid
    }

    /// Injects `text` from `user` in their private chat as a reply to the bot's message
    /// `reply_to` (Telegram sends the replied-to message along, as `reply_to_message`).
    pub fn say_replying(&self, user: (i64, &str), text: &str, reply_to: i64) -> i64 {
        let mut update = self.text_update(user, (user.0, "private"), text);
        let original = self.message(user.0, reply_to).map(|(text, _)| text).unwrap_or_default();
        update["message"]["reply_to_message"] = json!({
            "message_id": reply_to, "date": 1_764_000_000,
            "chat": { "id": user.0, "type": "private" },
            "from": bot_user(),
            "text": original,
        });
        let mid = update["message"]["message_id"].as_i64().unwrap_or_default();
        self.inject(update);
        mid
    }

    /// The update of `user` tapping the button with `data` on message `message_id` in `chat`.
    pub fn tap_update(user: (i64, &str), chat: i64, message_id: i64, data: &str) -> Value {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        json!({
            "callback_query": {
                "id": format!("cbq{id}"),
                "from": { "id": user.0, "is_bot": false, "first_name": user.1, "username": user.1 },
                "message": {
                    "message_id": message_id, "date": 1_764_000_000,
                    "chat": { "id": chat, "type": "private" },
                    "from": bot_user(),
                    "text": "…",
                },
                "chat_instance": "-4242",
                "data": data,
            }
        })
    }

    /// Injects a tap; returns the `callback_query` id the bot must answer.
    pub fn tap(&self, user: (i64, &str), chat: i64, message_id: i64, data: &str) -> String {
        let update = Self::tap_update(user, chat, message_id, data);
        let id = update["callback_query"]["id"].as_str().unwrap_or_default().to_owned();
        self.inject(update);
        id
    }

    /// Every call of `method` so far.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.shared.lock().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    /// The current text and reply markup of a message.
    pub fn message(&self, chat: i64, message_id: i64) -> Option<(String, Value)> {
        self.shared.lock().messages.get(&(chat, message_id)).cloned()
    }

    /// Waits (up to `within`) for a call of `method` whose parameters satisfy `check`; panics
    /// naming what never came.
    pub async fn wait_call(&self, method: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Call {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(call) = self.calls(method).into_iter().find(|c| check(&c.body)) {
                return call;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen: Vec<Value> = self.shared.lock().calls.iter().map(|c| c.body.clone()).collect();
                panic!("no {method} call as expected within {within:?}; calls: {seen:#?}");
            }
        }
    }

    /// The answer to the tap `query_id` (waits up to 10 s).
    pub async fn answer_to(&self, query_id: &str) -> String {
        let call = self
            .wait_call("answerCallbackQuery", Duration::from_secs(10), |b| b["callback_query_id"] == query_id)
            .await;
        call.body["text"].as_str().unwrap_or("").to_owned()
    }

    /// The first `sendMessage` to `chat` whose text contains `text` (waits up to 10 s).
    pub async fn sent_to(&self, chat: i64, text: &str) -> Call {
        self.wait_call("sendMessage", Duration::from_secs(10), |b| {
            as_i64(&b["chat_id"]) == Some(chat) && b["text"].as_str().is_some_and(|t| t.contains(text))
        })
        .await
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return refused(401, "Unauthorized");
    }
    let params: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return refused(400, "Bad Request: can't parse JSON"),
        }
    };
    let (at, wall) = (Instant::now(), std::time::SystemTime::now());
    let failure = shared.lock().failure;
    let answer = match failure {
        Some(status) => refused(status, "Internal Server Error"),
        None => answer(&shared, &method, &params).await,
    };
    // Recorded once answered, so a test that sees the call sees what it created.
    let message_id = answer.1.0["result"]["message_id"].as_i64();
    shared.lock().calls.push(Call { method, body: params, at, wall, message_id });
    shared.changed.notify_waiters();
    answer
}

async fn answer(shared: &Shared, method: &str, params: &Value) -> (StatusCode, Json<Value>) {
    match method {
        "getUpdates" => get_updates(shared, params).await,
        "sendMessage" => send_message(shared, params),
        "editMessageText" => edit_message_text(shared, params),
        "answerCallbackQuery" => {
            if params["callback_query_id"].as_str().is_none_or(str::is_empty) {
                return refused(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                );
            }
            if params["text"].as_str().is_some_and(|t| t.chars().count() > 200) {
                return refused(400, "Bad Request: MESSAGE_TOO_LONG");
            }
            ok(&json!(true))
        }
        "deleteMessage" => {
            let key = (as_i64(&params["chat_id"]).unwrap_or(0), as_i64(&params["message_id"]).unwrap_or(0));
            if shared.lock().messages.remove(&key).is_some() {
                ok(&json!(true))
            } else {
                refused(400, "Bad Request: message to delete not found")
            }
        }
        _ => refused(404, "Not Found"),
    }
}

/// A reply markup Telegram would refuse: `callback_data` must be 1–64 bytes.
fn bad_markup(markup: &Value) -> bool {
    markup["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .any(|button| button.get("callback_data").and_then(Value::as_str).is_some_and(|d| d.is_empty() || d.len() > 64))
}

fn check_text(text: &str) -> Option<(StatusCode, Json<Value>)> {
    if text.trim().is_empty() {
        return Some(refused(400, "Bad Request: message text is empty"));
    }
    if text.encode_utf16().count() > 4096 {
        return Some(refused(400, "Bad Request: message is too long"));
    }
    None
}

fn send_message(shared: &Shared, params: &Value) -> (StatusCode, Json<Value>) {
    let Some(chat) = as_i64(&params["chat_id"]) else { return refused(400, "Bad Request: chat not found") };
    let text = params["text"].as_str().unwrap_or("");
    if let Some(refusal) = check_text(text) {
        return refusal;
    }
    let markup = params.get("reply_markup").cloned().unwrap_or(Value::Null);
    if bad_markup(&markup) {
        return refused(400, "Bad Request: BUTTON_DATA_INVALID");
    }
    let message_id = {
        let mut inner = shared.lock();
        inner.next_message_id += 1;
        let id = inner.next_message_id;
        inner.messages.insert((chat, id), (text.to_owned(), markup.clone()));
        id
    };
    let mut message = json!({
        "message_id": message_id, "date": 1_764_000_000, "from": bot_user(),
        "chat": { "id": chat, "type": "private" }, "text": text,
    });
    if markup.get("inline_keyboard").is_some() {
        message["reply_markup"] = markup;
    }
    ok(&message)
}

fn edit_message_text(shared: &Shared, params: &Value) -> (StatusCode, Json<Value>) {
    let (Some(chat), Some(message_id)) = (as_i64(&params["chat_id"]), as_i64(&params["message_id"])) else {
        return refused(400, "Bad Request: message to edit not found");
    };
    let text = params["text"].as_str().unwrap_or("");
    if let Some(refusal) = check_text(text) {
        return refusal;
    }
    let markup = params.get("reply_markup").cloned().unwrap_or(Value::Null);
    if bad_markup(&markup) {
        return refused(400, "Bad Request: BUTTON_DATA_INVALID");
    }
    let mut inner = shared.lock();
    let Some(stored) = inner.messages.get_mut(&(chat, message_id)) else {
        return refused(400, "Bad Request: message to edit not found");
    };
    if stored.0 == text && stored.1 == markup {
        return refused(
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the \
             same as a current content and reply markup of the message",
        );
    }
    *stored = (text.to_owned(), markup.clone());
    let mut message = json!({
        "message_id": message_id, "date": 1_764_000_000, "edit_date": 1_764_000_001, "from": bot_user(),
        "chat": { "id": chat, "type": "private" }, "text": text,
    });
    if markup.get("inline_keyboard").is_some() {
        message["reply_markup"] = markup;
    }
    ok(&message)
}

/// Clears the polling flag when a `getUpdates` ends, however it ends.
struct Polling<'a>(&'a Shared);

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.lock().polling = false;
    }
}

async fn get_updates(shared: &Shared, params: &Value) -> (StatusCode, Json<Value>) {
    let offset = as_i64(&params["offset"]);
    let timeout = params["timeout"].as_u64().unwrap_or(0).min(50);
    {
        let mut inner = shared.lock();
        if inner.polling {
            return refused(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            );
        }
        inner.polling = true;
    }
    let _polling = Polling(shared);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ready: Vec<Value> = {
            let mut inner = shared.lock();
            if let Some(offset) = offset {
                inner.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            }
            inner.updates.iter().take(100).cloned().collect()
        };
        if !ready.is_empty() || tokio::time::Instant::now() >= deadline {
            return ok(&Value::Array(ready));
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}
