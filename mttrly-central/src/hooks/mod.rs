//! Inbound alerts from monitoring systems (`POST /hooks/<source>`): each source authenticates in
//! its own way, then its alerts are mapped to one of the account's servers and opened or resolved
//! as mttrly alerts, so the assistant sees what the monitoring saw next to what the agents see.
//!
//! Sources are off until configured: an unconfigured source answers 404, so a central that does
//! not use a source exposes nothing for it.

pub mod alertmanager;
pub mod batch;
pub mod deploy;
pub mod grafana;
pub mod pagerduty;

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mttrly_core::Source;
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::alerts::{InboundApplied, InboundChange, NewAlert, NewUnmatchedAlert};
use crate::db::servers::ServerRow;
use crate::state::Central;

/// The longest summary stored (annotations can be long; the assistant gets the gist and the link).
const MAX_SUMMARY: usize = 2000;

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
    /// `[hooks.pagerduty]`: PagerDuty's V3 webhook subscription.
    pub pagerduty: Option<PagerDutyHook>,
    /// `[hooks.deploy]`: deploys recorded by a CI (`POST /hooks/deploy`, HMAC-signed).
    pub deploy: Option<deploy::DeployHook>,
    /// The Alertmanager bearer token, read from `token_env` at start (never from the file).
    #[serde(skip)]
    alertmanager_token: Option<HookSecret>,
    /// The Grafana HMAC key, read from `hmac_secret_env` at start.
    #[serde(skip)]
    grafana_secret: Option<HookSecret>,
    /// The PagerDuty signing secret, read from `signing_secret_env` at start.
    #[serde(skip)]
    pagerduty_secret: Option<HookSecret>,
    /// The deploy hook's HMAC secret, read from `hmac_secret_env` at start.
    #[serde(skip)]
    deploy_secret: Option<HookSecret>,
}

/// `[hooks.pagerduty]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyHook {
    /// The environment variable holding the subscription's signing secret; PagerDuty sends
    /// `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>`, several during a rotation.
    pub signing_secret_env: String,
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
        self.pagerduty_secret = match &self.pagerduty {
            None => None,
            Some(hook) => Some(read_secret(&env, "[hooks.pagerduty] signing_secret_env", &hook.signing_secret_env)?),
        };
        self.deploy_secret = match &self.deploy {
            None => None,
            Some(hook) => Some(read_secret(&env, "[hooks.deploy] hmac_secret_env", &hook.hmac_secret_env)?),
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

/// One alert as a source reported it, in the one model every source maps to.
#[derive(Debug, Clone)]
pub(super) struct Inbound {
    /// Firing (open it) or resolved (resolve it).
    pub firing: bool,
    /// Its name at the source.
    pub name: String,
    /// The mttrly rule (`<source>:<name>`); with `fingerprint`, the key of a matched alert.
    pub rule: String,
    /// The source's stable key for it (Alertmanager's fingerprint, PagerDuty's incident id).
    pub fingerprint: String,
    /// Host names to try, in order; the first is what an unmatched alert reports.
    pub hosts: Vec<String>,
    /// Severity.
    pub severity: Severity,
    /// One line for the assistant: the source's description, labels and link back.
    pub summary: String,
    /// The source's labels.
    pub labels: BTreeMap<String, String>,
    /// When it started (firing) or ended (resolved), ms.
    pub at: i64,
}

/// What a delivery did, so an operator testing the receiver sees why nothing appeared.
#[derive(Debug, Default, Serialize)]
pub(super) struct Outcome {
    /// Alerts newly opened (on a server or unmatched).
    opened: u32,
    /// Firing alerts already open (redeliveries).
    already_open: u32,
    /// Alerts resolved.
    resolved: u32,
    /// Resolved alerts that matched nothing open.
    unknown_resolved: u32,
    /// Firing alerts whose host matches no server, `name@host`: kept and listed as unmatched.
    unmatched: Vec<String>,
    /// Events that change nothing here (PagerDuty's acknowledgements, reassignments, ...).
    ignored: u32,
}

impl Outcome {
    /// A delivery whose event changes no alert.
    pub(super) fn ignored() -> Self {
        Self { ignored: 1, ..Self::default() }
    }
}

/// The answer to an authenticated, parsed delivery.
pub(super) fn respond(result: Result<Outcome, MttrlyError>, source: &'static str) -> Response {
    match result {
        Ok(outcome) => (StatusCode::OK, Json(outcome)).into_response(),
        Err(e) => {
            tracing::error!(source, error = %e, "cannot apply hook delivery");
            let status =
                if e.code() == ErrorCode::NotFound { StatusCode::NOT_FOUND } else { StatusCode::INTERNAL_SERVER_ERROR };
            error(status, &e)
        }
    }
}

pub(super) fn error(status: StatusCode, err: &MttrlyError) -> Response {
    (status, Json(serde_json::to_value(err.body()).unwrap_or(serde_json::Value::Null))).into_response()
}

/// Opens and resolves a delivery's alerts as `source`'s, in one database write: firing alerts on
/// the server their host names, or kept as unmatched (never dropped, never put on another
/// server); resolved ones close whatever is open under their key, matched or not.
pub(super) async fn apply(
    central: &Central,
    source: &'static str,
    alerts: Vec<Inbound>,
) -> Result<Outcome, MttrlyError> {
    let account = target_account(central).await?;
    let db = central.db.account(&account);
    let servers = if alerts.iter().any(|a| a.firing) { db.servers().list().await? } else { Vec::new() };
    let mut outcome = Outcome::default();
    // Per change, what its audit row names if it opens: the alert and its server (none when
    // unmatched). Kept apart so the changes move to the writer without a copy.
    let mut opens: Vec<Option<(AlertId, Option<ServerId>)>> = Vec::with_capacity(alerts.len());
    let changes: Vec<InboundChange> = alerts
        .iter()
        .map(|alert| {
            if !alert.firing {
                opens.push(None);
                return InboundChange::Resolve {
                    source: source.to_owned(),
                    rule: alert.rule.clone(),
                    subject: alert.fingerprint.clone(),
                    at: alert.at,
                };
            }
            let id = AlertId::generate();
            if let Some(server) = alert.hosts.iter().find_map(|h| server_named(&servers, h)) {
                opens.push(Some((id.clone(), Some(server.id.clone()))));
                return InboundChange::Open(NewAlert {
                    id,
                    account_id: account.clone(),
                    server_id: server.id.clone(),
                    rule: alert.rule.clone(),
                    subject: alert.fingerprint.clone(),
                    severity: alert.severity,
                    summary: alert.summary.clone(),
                    opened_at: alert.at,
                });
            }
            let host = alert.hosts.first().cloned();
            outcome.unmatched.push(format!("{}@{}", alert.name, host.as_deref().unwrap_or("?")));
            opens.push(Some((id.clone(), None)));
            InboundChange::OpenUnmatched(NewUnmatchedAlert {
                id,
                source: source.to_owned(),
                fingerprint: alert.fingerprint.clone(),
                name: alert.name.clone(),
                host,
                severity: alert.severity,
                summary: alert.summary.clone(),
                labels: alert.labels.clone(),
                opened_at: alert.at,
            })
        })
        .collect();
    let batcher =
        central.inbound.get_or_init(|| batch::Batcher::start(central.db.clone(), central.stopping.get().cloned()));
    let applied = batcher.apply(account.clone(), changes).await?;
    for ((alert, open), applied) in alerts.iter().zip(opens).zip(applied) {
        match (open, applied) {
            (Some((id, server)), InboundApplied::Opened(true)) => {
                outcome.opened += 1;
                if server.is_none() {
                    tracing::warn!(source, alert = %alert.name, host = alert.hosts.first().map_or("?", String::as_str),
                        "inbound alert matches no server: kept as unmatched");
                }
                record_opened(central, source, &account, server.as_ref(), &id, alert);
            }
            (_, InboundApplied::Opened(_)) => outcome.already_open += 1,
            (_, InboundApplied::Resolved(resolved)) => {
                if resolved.is_empty() {
                    outcome.unknown_resolved += 1;
                }
                for (id, server) in resolved {
                    outcome.resolved += 1;
                    record_resolved(central, source, &account, server.as_ref(), &id);
                }
            }
        }
    }
    Ok(outcome)
}

/// The audit row of an inbound alert change; an unmatched alert's names no server.
fn alert_event(account: &AccountId, server: Option<&ServerId>, id: &AlertId, details: serde_json::Value) -> AuditEvent {
    match server {
        Some(server) => crate::audit::events::alert(account, server, id.as_str(), details),
        None => AuditEvent {
            at: jiff::Timestamp::now(),
            account_id: account.clone(),
            server_id: None,
            actor: AuditActor::System,
            source: Source::Agent,
            kind: AuditKind::Alert,
            subject: id.as_str().to_owned(),
            parameters: details,
            outcome: AuditOutcome::Ok,
            duration_ms: None,
        },
    }
}

fn record_opened(
    central: &Central,
    source: &str,
    account: &AccountId,
    server: Option<&ServerId>,
    id: &AlertId,
    alert: &Inbound,
) {
    // The summary already carries the annotations, the labels and the link: the row does not
    // repeat them (each audit row is redacted and hashed on the writer every delivery waits for).
    let details = serde_json::json!({
        "change": "opened", "source": source, "rule": alert.rule, "severity": alert.severity,
        "summary": alert.summary, "fingerprint": alert.fingerprint,
        "unmatched_host": if server.is_none() { alert.hosts.first().map(String::as_str) } else { None },
    });
    central.audit(crate::events::Recorded::new(
        alert_event(account, server, id, details),
        crate::events::Payload::AlertOpened {
            alert_id: id.clone(),
            rule: alert.rule.clone(),
            severity: alert.severity,
            summary: alert.summary.clone(),
        },
    ));
}

fn record_resolved(central: &Central, source: &str, account: &AccountId, server: Option<&ServerId>, id: &AlertId) {
    central.audit(crate::events::Recorded::new(
        alert_event(account, server, id, serde_json::json!({ "change": "resolved", "source": source })),
        crate::events::Payload::AlertResolved { alert_id: id.clone() },
    ));
}

/// Cuts a summary to [`MAX_SUMMARY`] bytes on a character boundary.
fn clip(s: &mut String) {
    if s.len() > MAX_SUMMARY {
        let mut end = MAX_SUMMARY;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
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
