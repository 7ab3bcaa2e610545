//! `[slack]`: the Slack app central posts approval messages through and receives taps from.
//!
//! Both secrets are named by environment variable and read at start, so they are never written
//! into a configuration file that gets committed or pasted into a ticket.

use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// `[slack]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The environment variable holding the app's bot token (`xoxb-…`), sent as
    /// `Authorization: Bearer` to the Web API.
    pub bot_token_env: String,
    /// The environment variable holding the app's signing secret: every request Slack sends to
    /// central (interactions, slash commands) is refused unless signed with it.
    pub signing_secret_env: String,
    /// The Web API's base URL (`https://slack.com/api`); another value only for a proxy or a
    /// test double.
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

/// A secret read from the environment; its `Debug` hides it so logs and config dumps never leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[slack]` checked, with its secrets read.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The bot token.
    pub bot_token: Secret,
    /// The signing secret.
    pub signing_secret: Secret,
    /// The Web API's base URL, without a trailing slash.
    pub api_url: String,
}

impl SlackConfig {
    /// Reads both secrets from `env` and checks the URL. An unset or empty variable is a
    /// `VALIDATION_ERROR` naming it at start, rather than an app that refuses every request.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, MttrlyError> {
        let read = |key: &str, var: &str| match env(var) {
            Some(secret) if !secret.trim().is_empty() => Ok(Secret(secret.trim().to_owned())),
            _ => Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!("[slack] {key} names `{var}`, which is not set in the environment"),
            )
            .with_detail("variable", var)),
        };
        let bot_token = read("bot_token_env", &self.bot_token_env)?;
        let signing_secret = read("signing_secret_env", &self.signing_secret_env)?;
        let api_url = self.api_url.trim().trim_end_matches('/').to_owned();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!("[slack] api_url `{api_url}` must start with https:// (or http:// for a local test double)"),
            ));
        }
        Ok(Resolved { bot_token, signing_secret, api_url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SlackConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn both_secrets_are_required_and_the_api_url_defaults_to_slack() {
        let cfg = parse("bot_token_env = \"SLACK_BOT\"\nsigning_secret_env = \"SLACK_SIGN\"").unwrap();
        assert_eq!(cfg.api_url, DEFAULT_API_URL);
        assert!(parse("bot_token_env = \"SLACK_BOT\"").is_err());
        assert!(parse("signing_secret_env = \"SLACK_SIGN\"").is_err());
        assert!(parse("bot_token_env = \"A\"\nsigning_secret_env = \"B\"\ntoken = \"xoxb\"").is_err());
    }

    #[test]
    fn central_reads_a_slack_table_from_its_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central.toml");
        std::fs::write(
            &path,
            "[slack]\nbot_token_env = \"SLACK_BOT\"\nsigning_secret_env = \"SLACK_SIGN\"\napi_url = \"http://127.0.0.1:9/api\"\n\
             [approvals.production]\nchannels = [\"slack\"]\n",
        )
        .unwrap();
        let config = crate::config::Config::from_file(&path).unwrap();
        let slack = config.slack.clone().unwrap();
        assert_eq!((slack.bot_token_env.as_str(), slack.api_url.as_str()), ("SLACK_BOT", "http://127.0.0.1:9/api"));
        let rule = config.approval_policy().unwrap().rule_for(
            mttrly_core::Environment::Production,
            mttrly_core::action::ActionType::Command,
            None,
        );
        assert_eq!(rule.channels, [mttrly_core::Source::Slack]);
    }

    #[test]
    fn unset_variables_are_named_and_secrets_never_printed() {
        let cfg = parse("bot_token_env = \"SLACK_BOT\"\nsigning_secret_env = \"SLACK_SIGN\"").unwrap();
        let err = cfg.resolve(|k| (k == "SLACK_BOT").then(|| "xoxb-1".to_owned())).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.message().contains("SLACK_SIGN"), "{err:?}");
        let err = cfg.resolve(|_| Some("  ".to_owned())).unwrap_err();
        assert!(err.message().contains("SLACK_BOT"), "{err:?}");
        let ok = cfg.resolve(|k| Some(format!("secret-of-{k}"))).unwrap();
        assert_eq!(ok.bot_token.expose(), "secret-of-SLACK_BOT");
        assert!(!format!("{ok:?}").contains("secret-of"));
        let bad = SlackConfig { api_url: "ftp://x".into(), ..cfg };
        assert!(bad.resolve(|_| Some("s".into())).is_err());
    }
}
