//! The Bot API client: one JSON POST per method (`https://api.telegram.org/bot<token>/<method>`),
//! the answer's `{ok, result | description, error_code, parameters.retry_after}` envelope, and
//! retries of what Telegram says is temporary (429 after `retry_after`, 5xx, no answer) within a
//! time budget the caller gives.
//!
//! The token is part of every URL, and an HTTP client's error text repeats the URL; so every
//! error leaving this module has the token cut out, and nothing here logs a URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The longest one request may take (a long poll adds its own wait to this).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The first pause before a retry; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Why a Bot API call failed. Its text never contains the bot token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection refused, timeout, TLS failure (the client's words, token removed).
    #[error("Telegram could not be reached: {0}")]
    Transport(String),
    /// Telegram answered with an error.
    #[error("Telegram answered {status}: {description}")]
    Refused {
        /// The HTTP status (`error_code`).
        status: u16,
        /// Telegram's `description` (`Bad Request: chat not found`).
        description: String,
        /// `parameters.retry_after` on a 429: seconds to wait.
        retry_after: Option<u64>,
    },
    /// An answer that is not the Bot API's envelope.
    #[error("Telegram's answer could not be read: {0}")]
    Decode(String),
}

impl ApiError {
    /// Whether trying again may work: no answer, flood control, or a server error.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Refused { status, .. } => *status == 429 || *status >= 500,
            Self::Decode(_) => false,
        }
    }

    /// The HTTP status Telegram answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Telegram's description, if it answered with one.
    pub fn description(&self) -> &str {
        match self {
            Self::Refused { description, .. } => description,
            _ => "",
        }
    }
}

/// What every Bot API method answers.
#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// A bot's client: the base URL with its token, and one connection pool.
pub struct BotApi {
    /// `{api_url}/bot{token}`: never logged, never in an error.
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotApi(..)")
    }
}

impl BotApi {
    /// A client of the bot `token` at `api_url` (no trailing slash).
    pub fn new(api_url: &str, token: &str) -> Arc<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("mttrly-central/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Arc::new(Self { base: format!("{api_url}/bot{token}"), token: token.to_owned(), agent })
    }

    /// `text` with the token cut out.
    fn redact(&self, text: &str) -> String {
        if self.token.is_empty() { text.to_owned() } else { text.replace(&self.token, "<token>") }
    }

    /// One call, blocking, waiting at most `timeout` for the answer.
    pub fn call_once<T: DeserializeOwned>(&self, method: &str, body: &Value, timeout: Duration) -> Result<T, ApiError> {
        let payload = serde_json::to_vec(body).map_err(|e| ApiError::Decode(e.to_string()))?;
        let response = self
            .agent
            .post(format!("{}/{method}", self.base))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json")
            .send(&payload[..]);
        let mut response = response.map_err(|e| ApiError::Transport(self.redact(&e.to_string())))?;
        let status = response.status().as_u16();
        let bytes = response.body_mut().read_to_vec().map_err(|e| ApiError::Transport(self.redact(&e.to_string())))?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
            if status >= 400 {
                ApiError::Refused { status, description: format!("HTTP {status}"), retry_after: None }
            } else {
                ApiError::Decode(e.to_string())
            }
        })?;
        if !envelope.ok || status >= 400 {
            return Err(ApiError::Refused {
                status: envelope.error_code.unwrap_or(status),
                description: self.redact(envelope.description.as_deref().unwrap_or("")),
                retry_after: envelope.parameters.and_then(|p| p.retry_after),
            });
        }
        serde_json::from_value(envelope.result.unwrap_or(Value::Null)).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// A call, blocking, retried while it fails temporarily and `budget` allows; returns the
    /// last failure and how many attempts were made.
    pub fn call_within<T: DeserializeOwned>(
        &self,
        method: &str,
        body: &Value,
        budget: Duration,
    ) -> Result<T, (ApiError, u32)> {
        let deadline = Instant::now() + budget;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let error = match self.call_once(method, body, left.clamp(Duration::from_millis(100), ATTEMPT_TIMEOUT)) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !error.is_temporary() {
                return Err((error, attempts));
            }
            let pause = match &error {
                ApiError::Refused { retry_after: Some(s), .. } => Duration::from_secs(*s),
                _ => backoff,
            };
            backoff = backoff.saturating_mul(2);
            if Instant::now() + pause >= deadline {
                return Err((error, attempts));
            }
            tracing::debug!(method, attempts, error = %error, "Telegram call failed; retrying");
            std::thread::sleep(pause);
        }
    }

    /// [`BotApi::call_within`] on the blocking pool.
    pub async fn call<T: DeserializeOwned + Send + 'static>(
        self: &Arc<Self>,
        method: &'static str,
        body: Value,
        budget: Duration,
    ) -> Result<T, (ApiError, u32)> {
        let api = Arc::clone(self);
        match tokio::task::spawn_blocking(move || api.call_within(method, &body, budget)).await {
            Ok(result) => result,
            Err(e) => Err((ApiError::Transport(format!("the request task failed: {e}")), 0)),
        }
    }
}

/// An update (`getUpdates` or a webhook delivery): only the kinds the bot asks for.
#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    /// Its id: polling confirms every update below `offset`.
    pub update_id: i64,
    /// A message sent to the bot.
    #[serde(default)]
    pub message: Option<Message>,
    /// A tap on an inline keyboard button.
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
}

/// A message (also what `sendMessage` and `editMessageText` answer).
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Its id in its chat.
    pub message_id: i64,
    /// Who sent it (absent for channel posts).
    #[serde(default)]
    pub from: Option<User>,
    /// The chat it is in.
    pub chat: Chat,
    /// Its text.
    #[serde(default)]
    pub text: Option<String>,
    /// The message it replies to (a typed code replying to the bot's prompt names its decision).
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
}

/// A chat.
#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    /// Its id.
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// A Telegram account. Telegram sets it; a client cannot choose it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// The account's id: what a link maps to a person.
    pub id: i64,
    /// Whether it is a bot.
    #[serde(default)]
    pub is_bot: bool,
    /// Its first name.
    #[serde(default)]
    pub first_name: String,
    /// Its `@username`, if it has one.
    #[serde(default)]
    pub username: Option<String>,
}

impl User {
    /// How people know this account: `@alice`, else the first name.
    pub fn label(&self) -> String {
        match &self.username {
            Some(u) if !u.is_empty() => format!("@{u}"),
            _ => self.first_name.clone(),
        }
    }
}

/// A tap on an inline keyboard button.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    /// What `answerCallbackQuery` names.
    pub id: String,
    /// Who tapped.
    pub from: User,
    /// The message the button was on (absent for inline-mode messages, which the bot never sends).
    #[serde(default)]
    pub message: Option<Message>,
    /// The button's `callback_data`: any client can send anything here, so it only says which
    /// button; what it is about comes from the message.
    #[serde(default)]
    pub data: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_carry_the_token() {
        let api = BotApi::new("http://127.0.0.1:9", "123:SECRET");
        let err = api.call_once::<Value>("getMe", &Value::Null, Duration::from_millis(500)).unwrap_err();
        assert!(matches!(err, ApiError::Transport(_)), "{err:?}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert!(!format!("{api:?}").contains("SECRET"));
    }

    #[test]
    fn updates_read_the_documented_shapes() {
        let update: Update = serde_json::from_value(serde_json::json!({
            "update_id": 7,
            "callback_query": {
                "id": "4382bfdwdsb323b2d9", "chat_instance": "-1",
                "from": { "id": 42, "is_bot": false, "first_name": "Bob", "username": "bob" },
                "message": { "message_id": 5, "date": 0, "chat": { "id": 42, "type": "private" } },
                "data": "a"
            }
        }))
        .unwrap();
        let q = update.callback_query.unwrap();
        assert_eq!((q.from.label().as_str(), q.message.unwrap().chat.kind.as_str()), ("@bob", "private"));
    }

    #[test]
    fn temporary_failures_are_told_apart() {
        let refused = |status| ApiError::Refused { status, description: String::new(), retry_after: None };
        assert!(refused(429).is_temporary() && refused(502).is_temporary());
        assert!(!refused(400).is_temporary() && !refused(403).is_temporary());
        assert!(ApiError::Transport(String::new()).is_temporary());
    }
}
