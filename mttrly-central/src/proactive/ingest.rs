//! Turns a sender's event into a stored, audited row.
//!
//! What an agent sends is data from a host: every string is bounded, checked and redacted before
//! it is stored, the human line is written here from the numbers (never taken from the host), and
//! the time that counts is central's (the agent's clock is kept in the details). The store
//! decides, in the same transaction, whether the event's (detector, server, metric) is muted.

use std::sync::Arc;

use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::proactive::{EventState, ProactiveEvent};
use mttrly_proto::agent::v1::ProactiveEvent as WireEvent;

use crate::audit::events::agent_event;
use crate::db::now_ms;
use crate::db::proactive::NewEvent;
use crate::state::Central;

/// Longest metric name kept (a mount point can be long; more is not a name).
const MAX_METRIC: usize = 200;

/// Longest detector name, and most detectors on one event.
const MAX_DETECTOR: usize = 32;
const MAX_DETECTORS: usize = 8;

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No metric, or one too long.
    #[error("the event names no usable metric (1 to {MAX_METRIC} characters)")]
    Metric,
    /// Fewer than two detectors agreed: one detector alone never makes an event.
    #[error("an event needs at least two agreeing detectors, got {0}")]
    Consensus(usize),
    /// A detector name that is not a short lowercase word.
    #[error("a detector name must be 1 to {MAX_DETECTOR} characters of a-z, 0-9 and _")]
    Detector,
    /// A value that is not a finite number.
    #[error("the event's value and baseline must be finite numbers")]
    Value,
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DETECTOR
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The row to store for an agent's event received at `now` (ms), or why it is refused.
pub fn from_agent(server: &ServerId, wire: &WireEvent, now: i64) -> Result<NewEvent, Refused> {
    let metric = wire.metric.trim();
    if metric.is_empty() || metric.chars().count() > MAX_METRIC || metric.chars().any(char::is_control) {
        return Err(Refused::Metric);
    }
    let metric = mttrly_core::redactor::redact(metric).text.into_owned();
    let mut detectors: Vec<&str> = wire.detectors.iter().map(String::as_str).collect();
    detectors.sort_unstable();
    detectors.dedup();
    if detectors.len() > MAX_DETECTORS || !detectors.iter().all(|d| is_word(d)) {
        return Err(Refused::Detector);
    }
    if detectors.len() < 2 {
        return Err(Refused::Consensus(detectors.len()));
    }
    if !wire.value.is_finite() || !wire.baseline.is_finite() {
        return Err(Refused::Value);
    }
    let up = wire.direction != "down";
    let detector = detectors.join("+");
    let summary = format!(
        "{metric} {} at {:.1} against a baseline of {:.1}, for {} intervals ({detector} agreed)",
        if up { "rose" } else { "fell" },
        wire.value,
        wire.baseline,
        wire.intervals,
    );
    let finite = |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null };
    let details = serde_json::json!({
        "ewma_score": finite(wire.ewma_score),
        "mad_score": finite(wire.mad_score),
        "direction": if up { "up" } else { "down" },
        "agent_detected_at": wire.detected_at_unix_ms,
    });
    Ok(NewEvent {
        server_id: server.clone(),
        detector,
        metric,
        // A resource rising is what fills disks and starves services; a drop is worth knowing.
        severity: if up { Severity::Warning } else { Severity::Info },
        summary,
        value: wire.value,
        baseline: wire.baseline,
        intervals: wire.intervals,
        details_json: details.to_string(),
        detected_at: now,
    })
}

/// Stores `event` for `server` of `account` and audits it; off the agent's stream (the write
/// must not hold up heartbeats).
pub fn store(central: &Arc<Central>, account: &AccountId, event: NewEvent) {
    let (central, account) = (Arc::clone(central), account.clone());
    tokio::spawn(async move {
        let server = event.server_id.clone();
        match central.db.account(&account).proactive().record(event).await {
            Ok(stored) => audit_stored(&central, &account, &stored),
            Err(e) => tracing::error!(server_id = %server, error = %e, "cannot store a proactive event"),
        }
    });
}

fn audit_stored(central: &Central, account: &AccountId, stored: &ProactiveEvent) {
    let mut details = serde_json::json!({
        "event_id": stored.event_id.as_str(),
        "detector": stored.detector,
        "metric": stored.metric,
        "state": stored.state.as_str(),
    });
    if stored.state == EventState::Muted
        && let Some(until) = stored.muted_until
    {
        details["muted_until"] = serde_json::json!(until.to_string());
    }
    central.audit(crate::events::Recorded::new(
        agent_event(account, &stored.server_id, "proactive_event", details, true),
        crate::events::Payload::AgentEvent,
    ));
}

/// An agent's `proactive_event` message: checked, then stored; a refused one is logged and
/// audited as refused (the stream has no reply for it).
pub fn on_agent_message(central: &Arc<Central>, account: &AccountId, server: &ServerId, wire: &WireEvent) {
    let now = now_ms();
    if !super::flood::admit(central, account, server, super::flood::ReportKind::ProactiveEvent, now) {
        return;
    }
    match from_agent(server, wire, now) {
        Ok(event) => store(central, account, event),
        Err(why) => {
            tracing::warn!(server_id = %server, reason = %why, "refused a proactive event");
            let mut event = agent_event(
                account,
                server,
                "proactive_event",
                serde_json::json!({ "refused": why.to_string() }),
                false,
            );
            event.outcome = mttrly_core::audit::AuditOutcome::Error { code: mttrly_core::ErrorCode::ValidationError };
            central.audit(crate::events::Recorded::new(event, crate::events::Payload::AgentEvent));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn wire(metric: &str, detectors: &[&str]) -> WireEvent {
        WireEvent {
            metric: metric.into(),
            detectors: detectors.iter().map(|d| (*d).to_owned()).collect(),
            value: 91.0,
            baseline: 20.0,
            ewma_score: 30.0,
            mad_score: f64::INFINITY,
            direction: "up".into(),
            intervals: 3,
            detected_at_unix_ms: 5,
        }
    }

    #[test]
    fn an_event_is_worded_by_central_and_keyed_by_its_sorted_detectors() {
        let server = ServerId::generate();
        let e = from_agent(&server, &wire("cpu_percent", &["mad", "ewma", "mad"]), 77).unwrap();
        assert_eq!(e.detector, "ewma+mad");
        assert_eq!(e.detected_at, 77, "central's clock");
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.summary, "cpu_percent rose at 91.0 against a baseline of 20.0, for 3 intervals (ewma+mad agreed)");
        let details: serde_json::Value = serde_json::from_str(&e.details_json).unwrap();
        assert_eq!(details["mad_score"], serde_json::Value::Null, "infinity is not JSON");
        assert_eq!(details["agent_detected_at"], 5);
    }

    #[test]
    fn one_detector_alone_is_refused() {
        let server = ServerId::generate();
        assert_eq!(from_agent(&server, &wire("cpu_percent", &["ewma"]), 1), Err(Refused::Consensus(1)));
        assert_eq!(from_agent(&server, &wire("cpu_percent", &["ewma", "ewma"]), 1), Err(Refused::Consensus(1)));
    }

    #[test]
    fn bad_input_is_refused_and_secrets_are_redacted() {
        let server = ServerId::generate();
        assert_eq!(from_agent(&server, &wire("", &["a", "b"]), 1), Err(Refused::Metric));
        assert_eq!(from_agent(&server, &wire("cpu\u{1b}[31m", &["a", "b"]), 1), Err(Refused::Metric));
        assert_eq!(from_agent(&server, &wire(&"m".repeat(201), &["a", "b"]), 1), Err(Refused::Metric));
        assert_eq!(from_agent(&server, &wire("cpu", &["a", "B; DROP"]), 1), Err(Refused::Detector));
        let mut nan = wire("cpu", &["a", "b"]);
        nan.value = f64::NAN;
        assert_eq!(from_agent(&server, &nan, 1), Err(Refused::Value));
        let secret = "disk_used_percent:/srv/AKIAIOSFODNN7EXAMPLE";
        let e = from_agent(&server, &wire(secret, &["a", "b"]), 1).unwrap();
        assert!(!e.metric.contains("AKIAIOSFODNN7EXAMPLE"), "{}", e.metric);
        assert!(!e.summary.contains("AKIAIOSFODNN7EXAMPLE"));
    }
}
