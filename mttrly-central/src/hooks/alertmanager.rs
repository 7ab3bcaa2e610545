//! `POST /hooks/alertmanager`: Prometheus Alertmanager's webhook receiver (payload version 4).
//!
//! Each alert in a notification is keyed by its `fingerprint` (stable for a label set), stored as
//! rule `alertmanager:<alertname>` with the fingerprint as subject: Alertmanager re-sends firing
//! alerts every `repeat_interval` and on every group change, so "firing" opens only when nothing
//! with that key is open, and "resolved" resolves whatever is open under it (nothing if unknown).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mttrly_core::tools::common::Severity;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Inbound, apply, error, respond};
use crate::app_state::AppState;

/// The `source` part of the rule id of every alert this receiver opens.
const SOURCE: &str = "alertmanager";

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
    let label = central.config.hooks.server_label.as_deref();
    respond(apply(central, SOURCE, inbound(SOURCE, label, notification)).await, SOURCE)
}

/// The notification's alerts in the one model every source maps to (rule `<source>:<alertname>`,
/// keyed by the fingerprint, the host from `[hooks] server_label` or the default labels).
pub(super) fn inbound(source: &str, label: Option<&str>, notification: Notification) -> Vec<Inbound> {
    notification
        .alerts
        .into_iter()
        .map(|alert| {
            let name = alert.labels.get("alertname").cloned().unwrap_or_else(|| "unnamed".to_owned());
            let fingerprint =
                if alert.fingerprint.is_empty() { fingerprint_of(&alert.labels) } else { alert.fingerprint.clone() };
            let firing = alert.status == AmStatus::Firing;
            Inbound {
                rule: format!("{source}:{name}"),
                hosts: super::host_of(&alert.labels, label).into_iter().collect(),
                severity: severity(alert.labels.get("severity").map(String::as_str)),
                summary: summary(source, &name, &alert),
                at: if firing {
                    millis(alert.starts_at.as_deref()).unwrap_or_else(crate::db::now_ms)
                } else {
                    millis(alert.ends_at.as_deref()).unwrap_or_else(crate::db::now_ms)
                },
                firing,
                name,
                fingerprint,
                labels: alert.labels,
            }
        })
        .collect()
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
    super::clip(&mut s);
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
