//! Inbound alerts from monitoring systems (`POST /hooks/<source>`): each source authenticates in
//! its own way, then its alerts are mapped to one of the account's servers and opened or resolved
//! as mttrly alerts, so the assistant sees what the monitoring saw next to what the agents see.
//!
//! Sources are off until configured: an unconfigured source answers 404, so a central that does
//! not use a source exposes nothing for it.

pub mod alertmanager;
pub mod grafana;

use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::servers::ServerRow;
use crate::state::Central;

/// The largest notification accepted (Alertmanager groups many alerts in one body).
pub const MAX_BODY: usize = 1024 * 1024;

/// Labels tried, in order, when `[hooks] server_label` is not set.
const DEFAULT_LABELS: [&str; 3] = ["instance", "host", "hostname"];

/// `[hooks]`: where inbound alerts go and how each source authenticates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// The account (by name) that receives the alerts; the first account when unset.
    pub account: Option<String>,
    /// The alert label naming the server; unset tries `instance`, `host`, `hostname`. A `:port`
    /// suffix is stripped, then the value is matched against server names.
    pub server_label: Option<String>,
    /// `[hooks.alertmanager]`: Prometheus Alertmanager's webhook receiver.
    pub alertmanager: Option<AlertmanagerHook>,
    /// `[hooks.grafana]`: Grafana unified alerting's webhook contact point.
    pub grafana: Option<GrafanaHook>,
    /// The Alertmanager bearer token, read from `token_env` at start (never from the file).
    #[serde(skip)]
    alertmanager_token: Option<HookSecret>,
    /// The Grafana HMAC key, read from `hmac_secret_env` at start.
    #[serde(skip)]
    grafana_secret: Option<HookSecret>,
}

/// `[hooks.grafana]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrafanaHook {
    /// The environment variable holding the contact point's HMAC secret; Grafana sends
    /// `X-Grafana-Alerting-Signature`, the hex HMAC-SHA256 of the body under it.
    pub hmac_secret_env: String,
}

/// `[hooks.alertmanager]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerHook {
    /// The environment variable holding the bearer token Alertmanager sends
    /// (`http_config.authorization.credentials`); kept out of the file so it is never committed.
    pub token_env: String,
}

/// A secret read from the environment; its `Debug` hides it so config dumps never leak it.
#[derive(Clone, PartialEq)]
struct HookSecret(String);

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSecret(..)")
    }
}

impl HooksConfig {
    /// Reads each configured source's secret from the environment. A named variable that is unset
    /// or empty is a `VALIDATION_ERROR` at start rather than a hook that refuses every delivery.
    pub fn resolve(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), MttrlyError> {
        self.alertmanager_token = match &self.alertmanager {
            None => None,
            Some(hook) => Some(read_secret(&env, "[hooks.alertmanager] token_env", &hook.token_env)?),
        };
        self.grafana_secret = match &self.grafana {
            None => None,
            Some(hook) => Some(read_secret(&env, "[hooks.grafana] hmac_secret_env", &hook.hmac_secret_env)?),
        };
        Ok(())
    }
}

fn read_secret(env: impl Fn(&str) -> Option<String>, key: &str, var: &str) -> Result<HookSecret, MttrlyError> {
    match env(var) {
        Some(secret) if !secret.trim().is_empty() => Ok(HookSecret(secret.trim().to_owned())),
        _ => Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("{key} names `{var}`, which is not set in the environment"),
        )),
    }
}

/// Compares two secrets in time independent of where they differ (both are hashed first, so the
/// length does not leak either).
fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The account that receives inbound alerts: `[hooks] account` by name, else the first account.
async fn target_account(central: &Central) -> Result<AccountId, MttrlyError> {
    match &central.config.hooks.account {
        Some(name) => {
            central.db.tenants().list().await?.into_iter().find(|a| &a.name == name).map(|a| a.id).ok_or_else(|| {
                MttrlyError::new(ErrorCode::NotFound, format!("[hooks] account `{name}` does not exist"))
            })
        }
        None => central
            .db
            .first_account()
            .await?
            .map(|(id, _)| id)
            .ok_or_else(|| MttrlyError::new(ErrorCode::NotFound, "central is not initialised")),
    }
}

/// The host an alert is about: the configured label, or the first of the default ones present,
/// without a `:port` suffix (Prometheus's `instance` is usually `host:9100`).
fn host_of(labels: &std::collections::BTreeMap<String, String>, label: Option<&str>) -> Option<String> {
    let value = match label {
        Some(label) => labels.get(label),
        None => DEFAULT_LABELS.iter().find_map(|l| labels.get(*l)),
    }?;
    let value = value.trim();
    // `[::1]:9100` and `host:9100` lose the port; a bare IPv6 address (several colons) is kept.
    let host = if let Some(bracketed) = value.strip_prefix('[') {
        bracketed.split_once(']').map_or(bracketed, |(h, _)| h)
    } else {
        match value.split_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => value,
        }
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// The server named `host` among `servers` (case-insensitive, as host names are).
fn server_named<'a>(servers: &'a [ServerRow], host: &str) -> Option<&'a ServerRow> {
    servers.iter().find(|s| s.name.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_host_comes_from_the_first_default_label_without_its_port() {
        assert_eq!(host_of(&labels(&[("instance", "web-1:9100")]), None).as_deref(), Some("web-1"));
        assert_eq!(host_of(&labels(&[("hostname", "db"), ("host", "web-2")]), None).as_deref(), Some("web-2"));
        assert_eq!(host_of(&labels(&[("instance", "[::1]:9100")]), None).as_deref(), Some("::1"));
        assert_eq!(host_of(&labels(&[("instance", "fe80::1")]), None).as_deref(), Some("fe80::1"));
        assert_eq!(host_of(&labels(&[("job", "node")]), None), None);
        assert_eq!(host_of(&labels(&[("node", "n1:1"), ("instance", "x")]), Some("node")).as_deref(), Some("n1"));
        assert_eq!(host_of(&labels(&[("instance", "x")]), Some("node")), None);
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match(b"token", b"token"));
        assert!(!secrets_match(b"token", b"tokeN"));
        assert!(!secrets_match(b"", b"token"));
        assert!(!secrets_match(b"token-longer", b"token"));
    }

    #[test]
    fn the_file_names_the_variable_and_typos_are_refused() {
        let config: crate::config::Config =
            toml::from_str("[hooks]\nserver_label = \"node\"\n[hooks.alertmanager]\ntoken_env = \"AM_TOKEN\"\n")
                .unwrap();
        assert_eq!(config.hooks.server_label.as_deref(), Some("node"));
        assert_eq!(config.hooks.alertmanager, Some(AlertmanagerHook { token_env: "AM_TOKEN".into() }));
        assert!(toml::from_str::<crate::config::Config>("[hooks.alertmanager]\ntoken = \"inline\"\n").is_err());
        assert!(toml::from_str::<crate::config::Config>("[hooks]\nserver_lable = \"x\"\n").is_err());
    }

    #[test]
    fn a_named_but_unset_variable_is_refused_at_start() {
        let mut hooks = HooksConfig {
            alertmanager: Some(AlertmanagerHook { token_env: "AM_TOKEN".into() }),
            ..HooksConfig::default()
        };
        let err = hooks.resolve(|_| None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.message().contains("AM_TOKEN"), "{}", err.message());
        assert!(hooks.resolve(|_| Some("  ".into())).is_err());
        hooks.resolve(|k| (k == "AM_TOKEN").then(|| "s3cret".into())).unwrap();
        assert!(!format!("{hooks:?}").contains("s3cret"));
    }
}
