//! Slack's Web API, the few methods central calls: JSON bodies, the bot token as
//! `Authorization: Bearer`, and Slack's two ways of failing.
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error": "channel_not_found"}`,
//! so a call succeeds only on `"ok": true`. A rate-limited call gets 429 with `Retry-After`
//! (seconds): a short wait is honoured (twice at most); a longer one fails the call, since an
//! approval message that arrives minutes late helps nobody and the other channels carry on.
//!
//! ureq is blocking: every call runs on the blocking pool ([`Api::call`]). The token is only ever
//! in a header, never in a URL, so no error text or log line can carry it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::config::Secret;
use crate::notify::DeliveryError;

/// Per-request timeout (Slack answers in well under a second; a modal's `trigger_id` lives 3 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Retries after a 429.
const MAX_RETRIES: u32 = 2;
/// The largest answer read.
const MAX_BODY: u64 = 1024 * 1024;

/// A failed Web API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Slack answered `"ok": false`.
    #[error("Slack's {method} answered {error}")]
    Slack {
        /// The method (`chat.postMessage`).
        method: &'static str,
        /// Slack's error code (`channel_not_found`, `invalid_auth`, …).
        error: String,
    },
    /// Rate limited for longer than is worth waiting.
    #[error("Slack's {method} is rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// The method.
        method: &'static str,
        /// What `Retry-After` said, if anything.
        retry_after: Option<Duration>,
    },
    /// An HTTP status other than 200 or 429.
    #[error("Slack's {method} answered HTTP {status}")]
    Status {
        /// The method.
        method: &'static str,
        /// The status.
        status: u16,
    },
    /// Not a JSON answer.
    #[error("Slack's {method} answered something that is not its JSON: {detail}")]
    Malformed {
        /// The method.
        method: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Slack could not be reached (connection, TLS, timeout).
    #[error("Slack's {method} could not be reached")]
    Transport {
        /// The method.
        method: &'static str,
        /// The cause (its text names the URL, which holds no secret).
        #[source]
        source: Box<ureq::Error>,
    },
    /// The blocking task running the call failed.
    #[error("the Slack call did not finish")]
    Join,
}

impl From<ApiError> for DeliveryError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Status { status, .. } => DeliveryError::Status(status),
            other => DeliveryError::Transport(Box::new(other)),
        }
    }
}

/// A Web API client for one app.
pub struct Api {
    base: String,
    token: Secret,
    agent: ureq::Agent,
}

impl Api {
    /// A client for the Web API at `base` (no trailing slash) with the bot `token`.
    pub fn new(base: String, token: Secret) -> Arc<Self> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("mttrly-central/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Arc::new(Self { base, token, agent })
    }

    /// Calls `method` with the JSON `body` on the blocking pool; the answer's JSON on `"ok": true`.
    pub async fn call(self: &Arc<Self>, method: &'static str, body: Value) -> Result<Value, ApiError> {
        let api = Arc::clone(self);
        tokio::task::spawn_blocking(move || api.request_blocking(method, &body)).await.map_err(|_| ApiError::Join)?
    }

    fn request_blocking(&self, method: &'static str, body: &Value) -> Result<Value, ApiError> {
        let url = format!("{}/{method}", self.base);
        let bytes = body.to_string();
        let mut attempt = 0;
        loop {
            let mut response = self
                .agent
                .post(&url)
                .header("Authorization", &format!("Bearer {}", self.token.expose()))
                .header("Content-Type", "application/json; charset=utf-8")
                .send(bytes.as_bytes())
                .map_err(|source| ApiError::Transport { method, source: Box::new(source) })?;
            let status = response.status().as_u16();
            if status == 429 {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match retry_after {
                    Some(wait) if wait <= MAX_RETRY_AFTER && attempt < MAX_RETRIES => {
                        tracing::info!(method, wait_s = wait.as_secs(), "Slack rate limit: waiting as asked");
                        attempt += 1;
                        std::thread::sleep(wait);
                        continue;
                    }
                    _ => return Err(ApiError::RateLimited { method, retry_after }),
                }
            }
            if status != 200 {
                return Err(ApiError::Status { method, status });
            }
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_string()
                .map_err(|e| ApiError::Malformed { method, detail: e.to_string() })?;
            let answer: Value =
                serde_json::from_str(&text).map_err(|e| ApiError::Malformed { method, detail: e.to_string() })?;
            return if answer["ok"] == Value::Bool(true) {
                Ok(answer)
            } else {
                let error = answer["error"].as_str().unwrap_or("an error it did not name").to_owned();
                Err(ApiError::Slack { method, error })
            };
        }
    }
}
