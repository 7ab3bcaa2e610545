//! `POST /hooks/pagerduty`: PagerDuty's V3 webhooks, signed with the subscription's secret.
//!
//! A delivery is one event (`{"event": {id, event_type, resource_type, occurred_at, data}}`).
//! `incident.triggered` and `incident.reopened` open an alert keyed by the incident id (rule
//! `pagerduty:incident`), `incident.resolved` resolves it; every other event (acknowledged,
//! reassigned, annotated, the `pagey.ping` test, service events, ...) changes nothing and is
//! answered 200, since PagerDuty disables a subscription whose deliveries keep failing. PagerDuty
//! delivers at least once: a redelivered event finds its incident already open (or resolved
//! already) and opens or resolves nothing twice.
//!
//! PagerDuty has no labels: the server is named, in order, by `[hooks] server_label` (or the
//! default `instance`, `host`, `hostname`) in the incident's custom fields or body details, then
//! by the service's name; otherwise the alert is kept as unmatched.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, KeyInit as _, Mac as _};
use mttrly_core::tools::common::Severity;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::{Inbound, Outcome, apply, error, respond};
use crate::app_state::AppState;

/// The `source` part of the rule id of every alert this receiver opens.
const SOURCE: &str = "pagerduty";

/// The rule of every PagerDuty alert: an incident's title and service can be edited or moved
/// while it is open, so neither is part of the key its "resolved" must find again.
const RULE: &str = "pagerduty:incident";

/// The header carrying `v1=<hex>` signatures, comma-separated.
const SIGNATURE_HEADER: &str = "x-pagerduty-signature";

/// At most this many signatures are checked per delivery: PagerDuty sends one, two during a
/// rotation; a header stuffed with hundreds would make each forged delivery hash the body that
/// many times.
const MAX_SIGNATURES: usize = 8;

/// A V3 webhook delivery: always one event.
#[derive(Debug, Deserialize)]
struct Delivery {
    event: Event,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    id: String,
    event_type: String,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    data: Value,
}

/// The incident in an `incident.*` event's `data` (only what is mapped).
#[derive(Debug, Deserialize)]
struct Incident {
    id: String,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    urgency: String,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    service: Option<Reference>,
    #[serde(default)]
    priority: Option<Reference>,
    /// Custom fields: `[{name, value}, ...]` or an object.
    #[serde(default)]
    custom_fields: Value,
    /// The incident's body, whose `details` the sending integration filled.
    #[serde(default)]
    body: Value,
}

/// A PagerDuty reference (`service`, `priority`): its display name.
#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(default)]
    summary: String,
}

/// The receiver.
pub(crate) async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = &state.central;
    let Some(secret) = central.config.hooks.pagerduty_secret.as_ref() else {
        return error(StatusCode::NOT_FOUND, &MttrlyError::new(ErrorCode::NotFound, "no such hook"));
    };
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sigs| any_signature_matches(secret.0.as_bytes(), &body, sigs));
    if !signed {
        tracing::warn!(source = SOURCE, "hook delivery refused: missing or wrong signature");
        return error(
            StatusCode::UNAUTHORIZED,
            &MttrlyError::new(ErrorCode::AuthFailed, "a valid X-PagerDuty-Signature is required"),
        );
    }
    let delivery: Delivery = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(ErrorCode::ValidationError, format!("not a PagerDuty V3 webhook payload: {e}")),
            );
        }
    };
    let event = delivery.event;
    let firing = match event.event_type.as_str() {
        "incident.triggered" | "incident.reopened" => true,
        "incident.resolved" => false,
        other => {
            tracing::debug!(source = SOURCE, event_type = other, event = %event.id, "PagerDuty event ignored");
            return respond(Ok(Outcome::ignored()), SOURCE);
        }
    };
    let incident: Incident = match serde_json::from_value(event.data) {
        Ok(i) => i,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("`{}` without an incident: {e}", event.event_type),
                ),
            );
        }
    };
    let at = event
        .occurred_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or_else(crate::db::now_ms, jiff::Timestamp::as_millisecond);
    let label = central.config.hooks.server_label.as_deref();
    respond(apply(central, SOURCE, vec![inbound(incident, firing, at, label)]).await, SOURCE)
}

/// The incident in the one model every source maps to.
fn inbound(incident: Incident, firing: bool, at: i64, label: Option<&str>) -> Inbound {
    let mut fields = flatten(&incident.custom_fields);
    for (k, v) in flatten(incident.body.get("details").unwrap_or(&Value::Null)) {
        fields.entry(k).or_insert(v);
    }
    let service = incident.service.map(|s| s.summary).filter(|s| !s.trim().is_empty());
    let hosts: Vec<String> = super::host_of(&fields, label).into_iter().chain(service.clone()).collect();
    let priority = incident.priority.map(|p| p.summary).filter(|p| !p.is_empty());
    let mut summary = format!("[{SOURCE}] ");
    if let Some(n) = incident.number {
        summary.push_str(&format!("#{n} "));
    }
    summary.push_str(if incident.title.is_empty() { "untitled incident" } else { &incident.title });
    let mut facts = Vec::new();
    if let Some(s) = &service {
        facts.push(format!("service {s}"));
    }
    if !incident.urgency.is_empty() {
        facts.push(format!("urgency {}", incident.urgency));
    }
    if let Some(p) = &priority {
        facts.push(format!("priority {p}"));
    }
    if !facts.is_empty() {
        summary.push_str(&format!(" — {}", facts.join(", ")));
    }
    if !incident.html_url.is_empty() {
        summary.push_str(&format!(" | {}", incident.html_url));
    }
    super::clip(&mut summary);
    let mut labels = fields;
    labels.insert("incident_id".to_owned(), incident.id.clone());
    if let Some(s) = service {
        labels.entry("service".to_owned()).or_insert(s);
    }
    if !incident.urgency.is_empty() {
        labels.entry("urgency".to_owned()).or_insert_with(|| incident.urgency.clone());
    }
    if let Some(p) = priority {
        labels.entry("priority".to_owned()).or_insert(p);
    }
    Inbound {
        firing,
        name: if incident.title.is_empty() { incident.id.clone() } else { incident.title },
        rule: RULE.to_owned(),
        fingerprint: incident.id,
        hosts,
        severity: if incident.urgency.eq_ignore_ascii_case("high") { Severity::Critical } else { Severity::Warning },
        summary,
        labels,
        at,
    }
}

/// Custom fields or body details as flat `name → text`: an array of `{name, value}` (PagerDuty's
/// custom field values) or an object; nested values are skipped, scalars written as text.
fn flatten(value: &Value) -> BTreeMap<String, String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Object(map) => map.iter().filter_map(|(k, v)| Some((k.clone(), text(v)?))).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| Some((item.get("name")?.as_str()?.to_owned(), text(item.get("value")?)?)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Whether any `v1=<hex>` signature in the header is the HMAC-SHA256 of `body` under `secret`
/// (each compared in constant time by the MAC itself). Entries of other schemes are skipped.
fn any_signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Ok(mut mac) = <Hmac<Sha256>>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .take(MAX_SIGNATURES)
        .filter_map(|hex_sig| hex::decode(hex_sig.trim()).ok())
        .any(|given| mac.clone().verify_slice(&given).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &[u8], body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256>>::new_from_slice(key).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn any_of_several_signatures_may_match_and_nothing_else_does() {
        let good = sign(b"k", b"{}");
        let old = sign(b"old", b"{}");
        assert!(any_signature_matches(b"k", b"{}", &format!("v1={good}")));
        assert!(any_signature_matches(b"k", b"{}", &format!("v1={old},v1={good}")));
        assert!(any_signature_matches(b"k", b"{}", &format!("v1={old}, v1={good}")));
        assert!(!any_signature_matches(b"k", b"{}", &format!("v1={old}")));
        assert!(!any_signature_matches(b"k", b"{ }", &format!("v1={good}")));
        assert!(!any_signature_matches(b"k", b"{}", &good), "without the scheme");
        assert!(!any_signature_matches(b"k", b"{}", &format!("v0={good}")));
        assert!(!any_signature_matches(b"k", b"{}", &format!("v1={}", &good[..20])));
        assert!(!any_signature_matches(b"k", b"{}", "v1=zz,v1="));
        assert!(!any_signature_matches(b"k", b"{}", ""));
        let stuffed = std::iter::repeat_n(format!("v1={old}"), MAX_SIGNATURES).chain([format!("v1={good}")]);
        assert!(
            !any_signature_matches(b"k", b"{}", &stuffed.collect::<Vec<_>>().join(",")),
            "only the first few count"
        );
    }

    #[test]
    fn custom_fields_and_details_flatten_to_text() {
        let fields = serde_json::json!([{ "name": "host", "value": "web-1" }, { "name": "n", "value": 3 }, { "x": 1 }]);
        let flat = flatten(&fields);
        assert_eq!(flat.get("host").map(String::as_str), Some("web-1"));
        assert_eq!(flat.get("n").map(String::as_str), Some("3"));
        assert_eq!(flat.len(), 2);
        let details = serde_json::json!({ "instance": "db:9100", "nested": { "a": 1 }, "ok": true });
        let flat = flatten(&details);
        assert_eq!((flat.len(), flat.get("ok").map(String::as_str)), (2, Some("true")));
        assert!(flatten(&Value::String("free text".into())).is_empty());
    }

    #[test]
    fn the_host_comes_from_fields_then_the_service() {
        let incident = |fields: Value| Incident {
            id: "Q1".into(),
            number: Some(7),
            title: "Disk full".into(),
            urgency: "high".into(),
            html_url: "https://acme.pagerduty.com/incidents/Q1".into(),
            service: Some(Reference { summary: "web-2".into() }),
            priority: None,
            custom_fields: fields,
            body: Value::Null,
        };
        let a = inbound(incident(serde_json::json!({ "host": "web-1" })), true, 1, None);
        assert_eq!(a.hosts, vec!["web-1".to_owned(), "web-2".to_owned()]);
        assert_eq!((a.severity, a.rule.as_str(), a.fingerprint.as_str()), (Severity::Critical, RULE, "Q1"));
        assert!(
            a.summary.starts_with("[pagerduty] #7 Disk full — service web-2, urgency high | https://"),
            "{}",
            a.summary
        );
        let b = inbound(incident(serde_json::json!({ "node": "n1" })), true, 1, Some("node"));
        assert_eq!(b.hosts, vec!["n1".to_owned(), "web-2".to_owned()]);
        let c = inbound(incident(Value::Null), false, 1, None);
        assert_eq!(c.hosts, vec!["web-2".to_owned()]);
    }
}
