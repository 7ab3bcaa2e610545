//! `POST /hooks/alertmanager`: Prometheus Alertmanager's webhook receiver (payload version 4).
//!
//! Each alert in a notification is keyed by its `fingerprint` (stable for a label set), stored as
//! rule `alertmanager:<alertname>` with the fingerprint as subject: Alertmanager re-sends firing
//! alerts every `repeat_interval` and on every group change, so "firing" opens only when nothing
//! with that key is open, and "resolved" resolves whatever is open under it (nothing if unknown).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app_state::AppState;
use crate::db::alerts::NewAlert;
use crate::state::Central;

/// The `source` part of the rule id of every alert this receiver opens.
const SOURCE: &str = "alertmanager";

/// The longest summary stored (annotations can be long; the assistant gets the gist and the link).
const MAX_SUMMARY: usize = 2000;

/// A webhook notification (Alertmanager's `webhook_config`, version 4; Grafana's unified alerting
/// webhook sends the same alert shape). Only what is mapped is read; other fields (`groupKey`,
/// `receiver`, `externalURL`, Grafana's `values`, `dashboardURL`, ...) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Notification {
    alerts: Vec<AmAlert>,
}

/// One alert of a notification.
#[derive(Debug, Deserialize)]
struct AmAlert {
    status: AmStatus,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AmStatus {
    Firing,
    Resolved,
}

/// What a delivery did, so an operator testing the receiver sees why nothing appeared.
#[derive(Debug, Default, Serialize)]
pub(super) struct Outcome {
    /// Alerts newly opened.
    opened: u32,
    /// Firing alerts already open (redeliveries).
    already_open: u32,
    /// Alerts resolved.
    resolved: u32,
    /// Resolved alerts that matched nothing open.
    unknown_resolved: u32,
    /// Firing alerts whose host matches no server: `alertname@host` (not stored yet).
    unmatched: Vec<String>,
}

/// The receiver.
pub(crate) async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = &state.central;
    let Some(expected) = central.config.hooks.alertmanager_token.as_ref() else {
        return error(StatusCode::NOT_FOUND, &MttrlyError::new(ErrorCode::NotFound, "no such hook"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    if !given.is_some_and(|g| super::secrets_match(g.as_bytes(), expected.0.as_bytes())) {
        tracing::warn!(source = SOURCE, "hook delivery refused: missing or wrong bearer token");
        return error(
            StatusCode::UNAUTHORIZED,
            &MttrlyError::new(ErrorCode::AuthFailed, "a valid bearer token is required"),
        );
    }
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(ErrorCode::ValidationError, format!("not an Alertmanager webhook payload: {e}")),
            );
        }
    };
    respond(apply(central, SOURCE, notification).await, SOURCE)
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

/// Opens and resolves the notification's alerts as `source`'s (the rule is `<source>:<alertname>`).
pub(super) async fn apply(
    central: &Central,
    source: &'static str,
    notification: Notification,
) -> Result<Outcome, MttrlyError> {
    let account = super::target_account(central).await?;
    let servers = central.db.account(&account).servers().list().await?;
    let label = central.config.hooks.server_label.as_deref();
    let mut outcome = Outcome::default();
    for alert in notification.alerts {
        let name = alert.labels.get("alertname").cloned().unwrap_or_else(|| "unnamed".to_owned());
        let rule = format!("{source}:{name}");
        let fingerprint =
            if alert.fingerprint.is_empty() { fingerprint_of(&alert.labels) } else { alert.fingerprint.clone() };
        match alert.status {
            AmStatus::Resolved => {
                let at = millis(alert.ends_at.as_deref()).unwrap_or_else(crate::db::now_ms);
                let resolved = central.db.account(&account).alerts().resolve_matching(&rule, &fingerprint, at).await?;
                if resolved.is_empty() {
                    outcome.unknown_resolved += 1;
                }
                for (id, server) in resolved {
                    outcome.resolved += 1;
                    record_resolved(central, source, &account, &server, &id);
                }
            }
            AmStatus::Firing => {
                let host = super::host_of(&alert.labels, label);
                let Some(server) = host.as_deref().and_then(|h| super::server_named(&servers, h)) else {
                    let host = host.unwrap_or_else(|| "?".to_owned());
                    tracing::warn!(source, alert = %name, %host, "inbound alert matches no server");
                    outcome.unmatched.push(format!("{name}@{host}"));
                    continue;
                };
                let new = NewAlert {
                    id: AlertId::generate(),
                    account_id: account.clone(),
                    server_id: server.id.clone(),
                    rule,
                    subject: fingerprint,
                    severity: severity(alert.labels.get("severity").map(String::as_str)),
                    summary: summary(source, &name, &alert),
                    opened_at: millis(alert.starts_at.as_deref()).unwrap_or_else(crate::db::now_ms),
                };
                let record = new.clone();
                if central.db.account(&account).alerts().open_if_new(new).await? {
                    outcome.opened += 1;
                    record_opened(central, source, &record, &alert);
                } else {
                    outcome.already_open += 1;
                }
            }
        }
    }
    Ok(outcome)
}

fn record_opened(central: &Central, source: &str, a: &NewAlert, alert: &AmAlert) {
    central.audit(crate::events::Recorded::new(
        crate::audit::events::alert(
            &a.account_id,
            &a.server_id,
            a.id.as_str(),
            serde_json::json!({
                "change": "opened", "source": source, "rule": a.rule, "severity": a.severity,
                "summary": a.summary, "labels": alert.labels, "annotations": alert.annotations,
                "generator_url": alert.generator_url, "fingerprint": a.subject,
            }),
        ),
        crate::events::Payload::AlertOpened {
            alert_id: a.id.clone(),
            rule: a.rule.clone(),
            severity: a.severity,
            summary: a.summary.clone(),
        },
    ));
}

fn record_resolved(central: &Central, source: &str, account: &AccountId, server: &ServerId, id: &AlertId) {
    central.audit(crate::events::Recorded::new(
        crate::audit::events::alert(
            account,
            server,
            id.as_str(),
            serde_json::json!({ "change": "resolved", "source": source }),
        ),
        crate::events::Payload::AlertResolved { alert_id: id.clone() },
    ));
}

/// Alertmanager's usual severities; anything else (or none) is a warning.
fn severity(label: Option<&str>) -> Severity {
    match label.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "error" | "page" | "high") => Severity::Critical,
        Some("info" | "informational" | "none" | "low") => Severity::Info,
        _ => Severity::Warning,
    }
}

/// One line the assistant can act on: the summary (or the alert name), the description, the
/// labels and the link back to the graph, since the alerts table has one text column for it all.
fn summary(source: &str, name: &str, alert: &AmAlert) -> String {
    let mut s = format!("[{source}] {}", alert.annotations.get("summary").map_or(name, String::as_str));
    if let Some(d) = alert.annotations.get("description") {
        s.push_str(" — ");
        s.push_str(d);
    }
    let labels: Vec<String> = alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    s.push_str(&format!(" | labels: {}", labels.join(", ")));
    if !alert.generator_url.is_empty() {
        s.push_str(&format!(" | {}", alert.generator_url));
    }
    if s.len() > MAX_SUMMARY {
        let mut end = MAX_SUMMARY;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A stand-in fingerprint (Alertmanager always sends one; a hand-written payload may not).
fn fingerprint_of(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// RFC 3339 to Unix ms; Alertmanager's zero time (`0001-01-01T00:00:00Z`, an unset `endsAt`) is none.
fn millis(at: Option<&str>) -> Option<i64> {
    let ms = at?.parse::<jiff::Timestamp>().ok()?.as_millisecond();
    (ms > 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_and_default_to_warning() {
        assert_eq!(severity(Some("critical")), Severity::Critical);
        assert_eq!(severity(Some("Info")), Severity::Info);
        assert_eq!(severity(Some("whatever")), Severity::Warning);
        assert_eq!(severity(None), Severity::Warning);
    }

    #[test]
    fn zero_and_bad_times_are_none() {
        assert_eq!(millis(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(millis(Some("nope")), None);
        assert_eq!(millis(Some("2026-01-01T00:00:00Z")), Some(1_767_225_600_000));
    }
}
