//! A generic webhook notifier: JSON body, HMAC-SHA256 signature, retries with backoff, timeout.
//!
//! Receivers verify `X-Mttrly-Signature: sha256=HEX` as HMAC-SHA256(secret, TIMESTAMP + "." + BODY)
//! with `TIMESTAMP` from `X-Mttrly-Timestamp` (Unix seconds), and reject old timestamps, so a
//! captured delivery cannot be replayed later.

use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use mttrly_core::ErrorChain;

use super::{ApprovalPrompt, DeliveryError, Notifier};

/// A webhook's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (http or https).
    pub url: String,
    /// The HMAC key. Prefer `secret_env` so the key stays out of the file.
    #[serde(default)]
    pub secret: Option<String>,
    /// The environment variable that holds the HMAC key.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Per-attempt timeout in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Retries after the first attempt.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_timeout() -> u64 {
    5
}

fn default_retries() -> u32 {
    3
}

/// A configured webhook.
pub struct Webhook {
    url: String,
    secret: Vec<u8>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What is wrong with a `[[webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    /// Not an http(s) URL.
    #[error("webhook url `{0}` must start with http:// or https://")]
    Url(String),
    /// `secret_env` names an unset variable.
    #[error("webhook secret variable {0} is not set")]
    SecretUnset(String),
    /// Both or neither of `secret` and `secret_env`.
    #[error("a webhook needs exactly one of `secret` or `secret_env`")]
    SecretChoice,
    /// A secret too short to sign with.
    #[error("a webhook secret must be at least 16 characters")]
    SecretTooShort,
}

impl Webhook {
    /// Builds a webhook from its configuration, reading the secret from the environment when asked.
    pub fn from_config(
        config: &WebhookConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, WebhookConfigError> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(WebhookConfigError::Url(config.url.clone()));
        }
        let secret = match (&config.secret, &config.secret_env) {
            (Some(s), None) => s.clone(),
            (None, Some(var)) => env(var).ok_or_else(|| WebhookConfigError::SecretUnset(var.clone()))?,
            _ => return Err(WebhookConfigError::SecretChoice),
        };
        if secret.len() < 16 {
            return Err(WebhookConfigError::SecretTooShort);
        }
        Ok(Self {
            url: config.url.clone(),
            secret: secret.into_bytes(),
            timeout: Duration::from_secs(config.timeout_seconds.clamp(1, 60)),
            retries: config.retries.min(10),
            backoff: Duration::from_millis(250),
        })
    }

    /// Shortens the backoff (for tests).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    fn attempt(&self, agent: &ureq::Agent, body: &[u8], delivery: &str) -> Result<(), DeliveryError> {
        let timestamp = jiff::Timestamp::now().as_second();
        let response = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("mttrly-central/", env!("CARGO_PKG_VERSION")))
            .header("X-Mttrly-Event", "action.pending")
            .header("X-Mttrly-Delivery", delivery)
            .header("X-Mttrly-Timestamp", &timestamp.to_string())
            .header("X-Mttrly-Signature", &signature(&self.secret, timestamp, body))
            .send(body);
        match response {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(DeliveryError::Status(r.status().as_u16())),
            Err(e) => Err(DeliveryError::Transport(Box::new(e))),
        }
    }
}

impl Notifier for Webhook {
    fn name(&self) -> String {
        format!("webhook {}", self.url)
    }

    fn deliver(&self, prompt: &ApprovalPrompt) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(prompt).map_err(DeliveryError::Encode)?;
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(self.timeout)).http_status_as_error(false).build().into();
        let delivery = mttrly_core::ids::TaskId::generate().to_string();
        let mut last = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt - 1));
            }
            match self.attempt(&agent, &body, &delivery) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(url = %self.url, attempt, error = %ErrorChain(&e), "approval prompt delivery failed");
                    last = Some(e);
                }
            }
        }
        let last = last.unwrap_or(DeliveryError::Status(0));
        Err(DeliveryError::Exhausted { attempts: self.retries + 1, last: Box::new(last) })
    }

    fn max_duration(&self) -> Duration {
        let attempts = self.retries + 1;
        let backoff = self.backoff * (2u32.saturating_pow(self.retries).saturating_sub(1));
        self.timeout * attempts + backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = signature(b"0123456789abcdef", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature(b"0123456789abcdef", 2, b"{}"));
        assert_ne!(a, signature(b"0123456789abcdef", 1, b"{ }"));
        assert_ne!(a, signature(b"0123456789abcdeF", 1, b"{}"));
    }

    #[test]
    fn configuration_is_checked() {
        let base = WebhookConfig {
            url: "https://h/x".into(),
            secret: Some("s".repeat(16)),
            secret_env: None,
            timeout_seconds: 5,
            retries: 3,
        };
        assert!(Webhook::from_config(&base, |_| None).is_ok());
        assert!(Webhook::from_config(&WebhookConfig { url: "ftp://h".into(), ..base.clone() }, |_| None).is_err());
        assert!(
            Webhook::from_config(&WebhookConfig { secret: Some("short".into()), ..base.clone() }, |_| None).is_err()
        );
        let env = WebhookConfig { secret: None, secret_env: Some("K".into()), ..base.clone() };
        assert!(Webhook::from_config(&env, |_| None).is_err());
        assert!(Webhook::from_config(&env, |_| Some("k".repeat(20))).is_ok());
    }
}
