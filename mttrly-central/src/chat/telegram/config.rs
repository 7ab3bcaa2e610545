//! `[telegram]`: the bot central speaks as, and how its updates arrive.
//!
//! Secrets are named by environment variable, never written in the file (a config file gets
//! committed and pasted into tickets); they are read once at start, where an unset variable stops
//! the start with a `VALIDATION_ERROR` naming it rather than leaving a bot that cannot work.

use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};

/// The public Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// How the bot's updates (messages, button taps) reach central.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Central asks Telegram (`getUpdates` long polling): no inbound port, works behind NAT.
    #[default]
    Polling,
    /// Telegram POSTs each update to `/hooks/telegram` with the secret token header; the admin
    /// registers the URL with `setWebhook` (see the README).
    Webhook,
}

/// `[telegram]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The environment variable holding the bot token `@BotFather` gave.
    pub bot_token_env: String,
    /// The Bot API's base URL (`https://api.telegram.org`; a local Bot API server or a test
    /// double otherwise).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// `polling` (default) or `webhook`.
    #[serde(default)]
    pub mode: Mode,
    /// Webhook mode: the environment variable holding the `secret_token` given to `setWebhook`,
    /// which Telegram sends back in `X-Telegram-Bot-Api-Secret-Token` on every delivery.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    /// The bot token, read from `bot_token_env` at start.
    #[serde(skip)]
    pub(crate) token: Option<Secret>,
    /// The webhook secret, read from `webhook_secret_env` at start (webhook mode only).
    #[serde(skip)]
    pub(crate) webhook_secret: Option<Secret>,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

impl TelegramConfig {
    /// A polling bot whose token is in `bot_token_env`, on `api_url`.
    pub fn polling(bot_token_env: &str, api_url: &str) -> Self {
        Self {
            bot_token_env: bot_token_env.to_owned(),
            api_url: api_url.to_owned(),
            mode: Mode::Polling,
            webhook_secret_env: None,
            token: None,
            webhook_secret: None,
        }
    }

    /// Reads the secrets from the environment and checks the section. Every problem is a
    /// `VALIDATION_ERROR` naming the key or the variable.
    pub fn resolve(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), MttrlyError> {
        let api = self.api_url.trim_end_matches('/');
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(invalid(format!("[telegram] api_url `{}` must start with https:// or http://", self.api_url)));
        }
        self.api_url = api.to_owned();
        let token = read(&env, "[telegram] bot_token_env", &self.bot_token_env)?;
        // A token is `123456:ABC-…`; anything else would be spliced into request paths.
        if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-' || b == b'_') {
            return Err(invalid(format!(
                "[telegram] bot_token_env names `{}`, whose value is not a bot token (digits, `:`, letters, `-`, `_`)",
                self.bot_token_env
            )));
        }
        self.token = Some(Secret(token));
        self.webhook_secret = match (self.mode, &self.webhook_secret_env) {
            (Mode::Polling, _) => None,
            (Mode::Webhook, None) => {
                return Err(invalid(
                    "[telegram] mode = \"webhook\" needs webhook_secret_env (the variable holding setWebhook's secret_token)",
                ));
            }
            (Mode::Webhook, Some(var)) => {
                let secret = read(&env, "[telegram] webhook_secret_env", var)?;
                // Telegram accepts 1–256 characters of A-Z a-z 0-9 _ - as a secret_token.
                if secret.len() > 256 || !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    return Err(invalid(format!(
                        "[telegram] webhook_secret_env names `{var}`, whose value is not a valid secret_token \
                         (1 to 256 of A-Z a-z 0-9 _ -)"
                    )));
                }
                Some(Secret(secret))
            }
        };
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

fn read(env: impl Fn(&str) -> Option<String>, key: &str, var: &str) -> Result<String, MttrlyError> {
    match env(var) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(invalid(format!("{key} names `{var}`, which is not set in the environment"))),
    }
}

/// A secret read from the environment; `Debug` hides it so config dumps and logs never show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_section_reads_with_defaults_and_hides_its_secrets() {
        let mut cfg: TelegramConfig = toml::from_str("bot_token_env = \"TG\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((cfg.api_url.as_str(), cfg.mode), (DEFAULT_API_URL, Mode::Polling));
        cfg.resolve(env(&[("TG", "123:abc-DEF_9")])).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{cfg:?}").contains("123:abc"), "{cfg:?}");
        assert!(toml::from_str::<TelegramConfig>("bot_token_env = \"TG\"\nmode = \"push\"").is_err());
        assert!(toml::from_str::<TelegramConfig>("bot_token_env = \"TG\"\ntoken = \"x\"").is_err());
    }

    #[test]
    fn missing_or_bad_secrets_stop_the_start_naming_the_variable() {
        let mut cfg = TelegramConfig::polling("TG", DEFAULT_API_URL);
        let err = cfg.resolve(env(&[])).unwrap_err();
        assert!(err.message().contains("`TG`") && err.code() == ErrorCode::ValidationError, "{err}");
        assert!(cfg.resolve(env(&[("TG", "123:abc/../x")])).is_err());
        cfg.mode = Mode::Webhook;
        assert!(cfg.resolve(env(&[("TG", "123:abc")])).unwrap_err().message().contains("webhook_secret_env"));
        cfg.webhook_secret_env = Some("HOOK".into());
        assert!(cfg.resolve(env(&[("TG", "123:abc")])).unwrap_err().message().contains("`HOOK`"));
        assert!(cfg.resolve(env(&[("TG", "123:abc"), ("HOOK", "has space")])).is_err());
        cfg.resolve(env(&[("TG", "123:abc"), ("HOOK", "s3cret_-X")])).unwrap_or_else(|e| panic!("{e}"));
        cfg.api_url = "ftp://x".into();
        assert!(cfg.resolve(env(&[("TG", "123:abc"), ("HOOK", "s")])).is_err());
    }
}
