//! Proactive events raised by the agents' detectors (and central's near-miss watch), their
//! false-positive budget, and the morning brief.
//!
//! An event is a fact a detector saw on a server's own metrics before any alert rule fired; a
//! human says whether it was real ([`EventVerdict`]). Noise counts against a budget per
//! (detector, server, metric): once spent, that key is muted for a period that doubles each time
//! and lifts by itself. Muted events are still stored, counted and shown in the brief (with why
//! and until when), never dropped.

use serde::{Deserialize, Serialize};

use super::common::Severity;
use crate::bounded::bounded_text;
use crate::ids::{ActionId, AlertId, EventId, ServerId};

/// Arguments of `mttrly_get_morning_brief` (none): the brief is the calling human's, since their
/// previous brief.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMorningBriefInput {}

/// What the user said about a proactive event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventVerdict {
    /// A real problem: resets the detector's run of false positives and lifts its mute.
    Accepted,
    /// Noise; counts against the detector's false-positive budget.
    FalsePositive,
}

impl EventVerdict {
    /// The name serde writes (and the store keeps).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::FalsePositive => "false_positive",
        }
    }
}

/// Where a proactive event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Nobody has looked yet.
    New,
    /// Marked as real.
    Accepted,
    /// Marked as noise.
    FalsePositive,
    /// Raised while its (detector, server, metric) was muted: stored and counted, not announced.
    Muted,
}

impl EventState {
    /// The name serde writes (and the store keeps).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Accepted => "accepted",
            Self::FalsePositive => "false_positive",
            Self::Muted => "muted",
        }
    }

    /// The state named `s`, as stored.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::New, Self::Accepted, Self::FalsePositive, Self::Muted].into_iter().find(|v| v.as_str() == s)
    }
}

/// An anomaly a detector noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProactiveEvent {
    /// The event.
    pub event_id: EventId,
    /// The server.
    pub server_id: ServerId,
    /// The detectors that agreed, joined with `+` (`ewma+mad`), or `near_miss` for a value held
    /// just under an alert rule's threshold. With `server_id` and `metric` it keys the budget.
    pub detector: String,
    /// The metric (`cpu_percent`, `memory_percent`, `load_1`, `disk_used_percent:/var`, ...).
    pub metric: String,
    /// How serious it is.
    pub severity: Severity,
    /// One line for a human, written by central from the numbers (never text from the host).
    pub summary: String,
    /// The value that was anomalous.
    pub value: f64,
    /// What the detectors expected (their baseline), or the rule's threshold for a near miss.
    pub baseline: f64,
    /// For how many consecutive intervals it held when it was raised.
    pub intervals: u32,
    /// When it was detected.
    pub detected_at: jiff::Timestamp,
    /// Where it stands.
    pub state: EventState,
    /// Until when its key was muted, for a muted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<jiff::Timestamp>,
}

/// Anomalies of one entity (server and metric) since the last brief: one line however often it
/// fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BriefAnomaly {
    /// The most recent event of the entity.
    pub latest: ProactiveEvent,
    /// How many events the entity raised in the window (the latest included).
    pub occurrences: u32,
}

/// A muted (detector, server, metric) and what it held back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BriefMute {
    /// The server.
    pub server_id: ServerId,
    /// The detector (as on its events).
    pub detector: String,
    /// The metric.
    pub metric: String,
    /// Why it was muted, in words (`3 false positives in a row`, `false-positive rate 3/5 > 50 %`).
    pub reason: String,
    /// When the mute lifts by itself.
    pub muted_until: jiff::Timestamp,
    /// Events it raised while muted in the window: stored and counted, not announced.
    pub muted_events: u32,
    /// The most recent of them, to acknowledge if it was real after all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_event_id: Option<EventId>,
}

/// An alert still open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BriefAlert {
    /// The alert.
    pub alert_id: AlertId,
    /// The server.
    pub server_id: ServerId,
    /// The rule that fired.
    pub rule: String,
    /// How serious.
    pub severity: Severity,
    /// What was observed.
    pub summary: String,
    /// When it opened.
    pub opened_at: jiff::Timestamp,
}

/// An action waiting for a human, or one that failed in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BriefAction {
    /// The action.
    pub action_id: ActionId,
    /// The server.
    pub server_id: ServerId,
    /// `pending_approval`, `failed`, `failed_closed` or `expired`.
    pub status: String,
    /// What it does, as central described it.
    pub description: String,
    /// When it last changed.
    pub updated_at: jiff::Timestamp,
}

/// A deploy recorded in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BriefDeploy {
    /// The deploy (`dep_…`).
    pub deploy_id: String,
    /// The server.
    pub server_id: ServerId,
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// `started`, `succeeded`, `failed` or `rolled_back`.
    pub status: String,
    /// When it started.
    pub started_at: jiff::Timestamp,
}

/// Knowledge written in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BriefKnowledge {
    /// The entry (`kno_…`).
    pub knowledge_id: String,
    /// `postmortem`, `recipe` or `note`.
    pub kind: String,
    /// Its title.
    pub title: String,
    /// The server it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// When it was written.
    pub created_at: jiff::Timestamp,
}

/// The user's morning brief: everything new since their previous one, in a stable order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MorningBrief {
    /// The start of the window: the previous brief, or 24 hours back for a first brief.
    pub since: jiff::Timestamp,
    /// The end of the window (when it was put together); the next brief starts here.
    pub generated_at: jiff::Timestamp,
    /// Whether this user had no brief before (the window is then the last 24 hours).
    pub first_brief: bool,
    /// New anomalies, one per server and metric, most severe first, then by time.
    pub anomalies: Vec<BriefAnomaly>,
    /// Detectors muted now or that held events back in the window, with why and until when.
    pub muted: Vec<BriefMute>,
    /// Alerts open now, most severe first, then oldest first.
    pub open_alerts: Vec<BriefAlert>,
    /// Actions waiting for approval now, and those that failed or expired in the window.
    pub actions: Vec<BriefAction>,
    /// Deploys started in the window, oldest first.
    pub deploys: Vec<BriefDeploy>,
    /// Knowledge written in the window, oldest first.
    pub knowledge: Vec<BriefKnowledge>,
}

bounded_text!(
    /// A note for the audit log (1 to 500 characters).
    AckNote, min 1, max 500
);

/// Arguments of `mttrly_acknowledge_proactive_event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeProactiveEventInput {
    /// The event.
    pub event_id: EventId,
    /// Real problem or noise.
    pub verdict: EventVerdict,
    /// A note, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<AckNote>,
}

/// The event after acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProactiveEventAck {
    /// The event.
    pub event_id: EventId,
    /// Its new state.
    pub state: EventState,
    /// False when the event already had this verdict: acknowledging twice counts once.
    pub counted: bool,
    /// Whether the event's (detector, server, metric) is muted now.
    pub detector_muted: bool,
    /// Until when, while muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<jiff::Timestamp>,
    /// Why, while muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_reason: Option<String>,
    /// False positives in a row the key may still take before it is muted by the run rule.
    pub false_positive_budget_remaining: u32,
}
