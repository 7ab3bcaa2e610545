//! A fake Slack on loopback: the Web API methods central calls, answering as Slack documents
//! (`"ok": true|false` with an `error` code, HTTP 200; 429 with `Retry-After` when told to), and
//! recording every call; plus what Slack itself sends central: signed interaction payloads and
//! slash commands, built and signed as Slack does.
//!
//! Methods: `chat.postMessage` (a user id as `channel` posts to the app's DM with them, answered
//! with that DM's `D…` id and a fresh `ts`; text objects over Slack's limits are `invalid_blocks`),
//! `chat.update` (`message_not_found` for a message it never posted), `chat.postEphemeral`,
//! `views.open` (`expired_trigger_id` for a trigger id starting with `expired`). A wrong or
//! missing bearer token is `invalid_auth` / `not_authed`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};

/// One Web API call as received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method (`chat.postMessage`).
    pub method: String,
    /// The JSON body.
    pub body: Value,
    /// What the fake answered (`{"ok": …}`; `null` for a 429).
    pub answer: Value,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// (channel, ts) → the message's latest body.
    messages: HashMap<(String, String), Value>,
    next_ts: u64,
    /// Method → `Retry-After` seconds for its next call.
    rate_limits: HashMap<String, u64>,
}

#[derive(Clone)]
struct Shared {
    token: String,
    inner: Arc<Mutex<Inner>>,
}

/// The fake Web API.
pub struct FakeSlack {
    /// Its base URL (`http://127.0.0.1:PORT/api`), for `[slack] api_url`.
    pub api_url: String,
    shared: Shared,
}

/// The longest text of a section (Slack's limit).
const MAX_SECTION: usize = 3000;
/// The longest text of a header block.
const MAX_HEADER: usize = 150;

impl FakeSlack {
    /// Starts the fake, accepting the bot token `token`.
    pub async fn start(token: &str) -> Self {
        let shared = Shared { token: token.to_owned(), inner: Arc::default() };
        let app = axum::Router::new().route("/api/{method}", axum::routing::post(method)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { api_url: format!("http://{addr}/api"), shared }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.inner.lock().expect("fake slack lock").calls.clone()
    }

    /// The calls of `method` so far.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// The next call of `method` is answered 429 with `Retry-After: seconds`.
    pub fn rate_limit_next(&self, method: &str, seconds: u64) {
        self.shared.inner.lock().expect("fake slack lock").rate_limits.insert(method.to_owned(), seconds);
    }

    /// The message at (channel, ts) as last posted or updated.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared.inner.lock().expect("fake slack lock").messages.get(&(channel.to_owned(), ts.to_owned())).cloned()
    }

    /// Waits (up to `within`) for a call of `method` with a body matching `check` that was
    /// answered (a 429 is not an answer), and returns it.
    pub async fn wait_for(&self, method: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Call {
        let deadline = Instant::now() + within;
        loop {
            if let Some(call) = self.calls_of(method).into_iter().find(|c| !c.answer.is_null() && check(&c.body)) {
                return call;
            }
            assert!(Instant::now() < deadline, "no matching {method} within {within:?}; calls: {:#?}", self.calls());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The DM channel of the app with `user` (deterministic, like Slack's stable DM ids).
pub fn dm_of(user: &str) -> String {
    format!("D{}", user.trim_start_matches(['U', 'W']))
}

fn ok(body: Value) -> Value {
    let mut body = body;
    body["ok"] = Value::Bool(true);
    body
}

fn fail(error: &str) -> Value {
    json!({ "ok": false, "error": error })
}

/// Whether every text object in `blocks` is within Slack's limits.
fn blocks_fit(blocks: &Value) -> bool {
    blocks.as_array().is_none_or(|blocks| {
        blocks.iter().all(|b| {
            let max = if b["type"] == "header" { MAX_HEADER } else { MAX_SECTION };
            b["text"]["text"].as_str().is_none_or(|t| t.chars().count() <= max)
        })
    })
}

async fn method(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = shared.inner.lock().expect("fake slack lock");
    if let Some(seconds) = inner.rate_limits.remove(&method) {
        inner.calls.push(Call { method, body, answer: Value::Null });
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())]).into_response();
    }
    let answer = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => fail("not_authed"),
        Some(auth) if auth != format!("Bearer {}", shared.token) => fail("invalid_auth"),
        Some(_) => answer(&mut inner, &method, &body),
    };
    inner.calls.push(Call { method, body, answer: answer.clone() });
    axum::Json(answer).into_response()
}

/// The Web API's answer to `method` called with `body`.
fn answer(inner: &mut Inner, method: &str, body: &Value) -> Value {
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    match method {
        "chat.postMessage" => {
            let channel = text("channel");
            if channel.is_empty() {
                return fail("channel_not_found");
            }
            if text("text").is_empty() && body["blocks"].is_null() {
                return fail("no_text");
            }
            if !blocks_fit(&body["blocks"]) || text("text").chars().count() > 40_000 {
                return fail("invalid_blocks");
            }
            let channel = if channel.starts_with('U') || channel.starts_with('W') { dm_of(&channel) } else { channel };
            inner.next_ts += 1;
            let ts = format!("1800000000.{:06}", inner.next_ts);
            inner.messages.insert((channel.clone(), ts.clone()), body.clone());
            ok(json!({ "channel": channel, "ts": ts, "message": { "text": body["text"], "ts": ts } }))
        }
        "chat.update" => {
            let key = (text("channel"), text("ts"));
            if !blocks_fit(&body["blocks"]) {
                return fail("invalid_blocks");
            }
            match inner.messages.get_mut(&key) {
                Some(message) => {
                    *message = body.clone();
                    ok(json!({ "channel": key.0, "ts": key.1, "text": body["text"] }))
                }
                None => fail("message_not_found"),
            }
        }
        "chat.postEphemeral" => {
            if text("channel").is_empty() || text("user").is_empty() {
                return fail("channel_not_found");
            }
            inner.next_ts += 1;
            ok(json!({ "message_ts": format!("1800000000.{:06}", inner.next_ts) }))
        }
        "views.open" => {
            let trigger = text("trigger_id");
            if trigger.is_empty() {
                return fail("invalid_arguments");
            }
            if trigger.starts_with("expired") {
                return fail("expired_trigger_id");
            }
            let mut view = body["view"].clone();
            view["id"] = json!("V0000000001");
            ok(json!({ "view": view }))
        }
        _ => fail("unknown_method"),
    }
}

/// Percent-encodes a form value (RFC 3986 unreserved characters kept), as Slack's forms are.
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Slack's request signature for `body` at `timestamp` under `secret`: `v0=` and the hex
/// HMAC-SHA256 of `v0:TIMESTAMP:BODY`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body of an interaction: `payload=` and the form-encoded JSON.
pub fn interaction_body(payload: &Value) -> String {
    format!("payload={}", form_encode(&payload.to_string()))
}

/// A `block_actions` payload: `user` of `team` tapped the button `action_id` on the message at
/// (`channel`, `ts`).
pub fn block_actions(team: &str, user: &str, channel: &str, ts: &str, action_id: &str, trigger_id: &str) -> Value {
    json!({
        "type": "block_actions",
        "team": { "id": team, "domain": "acme" },
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": team },
        "api_app_id": "A0MTTRLY",
        "token": "deprecated-verification-token",
        "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
        "trigger_id": trigger_id,
        "channel": { "id": channel, "name": "directmessage" },
        "response_url": "https://hooks.slack.com/actions/T0/1/x",
        "actions": [{
            "action_id": action_id, "block_id": "mttrly_decision", "type": "button",
            "value": "ignored", "action_ts": "1800000000.000001",
        }],
    })
}

/// A `view_submission` payload for the modal `view` (as `views.open` got it) with `values`
/// (`{block_id: {action_id: value}}`) typed in.
pub fn view_submission(team: &str, user: &str, view: &Value, values: &[(&str, &str)]) -> Value {
    let mut state = serde_json::Map::new();
    for (id, value) in values {
        state.insert((*id).to_owned(), json!({ *id: { "type": "plain_text_input", "value": value } }));
    }
    json!({
        "type": "view_submission",
        "team": { "id": team, "domain": "acme" },
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": team },
        "api_app_id": "A0MTTRLY",
        "trigger_id": "1.2.submitted",
        "view": {
            "id": "V0000000001", "type": "modal", "team_id": team,
            "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
            "state": { "values": state },
        },
    })
}

/// A slash command's form body (`/mttrly TEXT` by `user` of `team`).
pub fn command_body(team: &str, user: &str, user_name: &str, text: &str) -> String {
    [
        ("token", "deprecated-verification-token"),
        ("team_id", team),
        ("team_domain", "acme"),
        ("channel_id", "C0GENERAL"),
        ("channel_name", "general"),
        ("user_id", user),
        ("user_name", user_name),
        ("command", "/mttrly"),
        ("text", text),
        ("api_app_id", "A0MTTRLY"),
        ("response_url", "https://hooks.slack.com/commands/T0/1/x"),
        ("trigger_id", "1.2.command"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", form_encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}
