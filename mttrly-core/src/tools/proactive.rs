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

/// Arguments of `mttrly_get_morning_brief`.
///
/// Reading a brief changes nothing on central: the position is the client's to keep. A client
/// passes the previous answer's `next_since` back as `since` to get what came after it; without
/// it, the brief covers the last 24 hours. So the same call gives the same answer until something
/// new happens, and a brief cut short by its size limits loses nothing (the rest is one call away).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMorningBriefInput {
    /// Where the previous brief ended (its `next_since`). A time in the future gives an empty
    /// window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
}

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
    /// What an assistant suggested about it, for a human to confirm: never a verdict of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<VerdictSuggestion>,
}

/// An assistant's opinion on an event. It is shown to humans and counts in no budget: only a
/// person's verdict can mute a detector, so an assistant cannot silence what watches its own work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerdictSuggestion {
    /// The verdict it suggests.
    pub verdict: EventVerdict,
    /// The assistant's client name, as its session reported it.
    pub client_name: String,
    /// The human it acts for.
    pub on_behalf_of: crate::ids::UserId,
    /// When it said so.
    pub at: jiff::Timestamp,
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

/// The user's morning brief: everything new in its window, in a stable order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MorningBrief {
    /// The start of the window: the `since` given, or 24 hours back without one.
    pub since: jiff::Timestamp,
    /// When it was put together.
    pub generated_at: jiff::Timestamp,
    /// The end of the window: the last item it shows when `more` is true, else `generated_at`.
    /// Pass it as `since` for the next brief.
    pub next_since: jiff::Timestamp,
    /// Whether items after `next_since` wait for the next call (the brief was cut at its size
    /// limits, never past an item it did not show).
    pub more: bool,
    /// How many items (events, failed actions, deploys, knowledge) wait after `next_since`.
    pub more_items: u64,
    /// Whether no `since` was given (the window is then the last 24 hours).
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

/// How an acknowledgement was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckRecordedAs {
    /// A person's verdict: it sets the event's state and counts in the false-positive budget.
    Verdict,
    /// An assistant's suggestion: shown to humans, the event's state and budget are unchanged.
    Suggestion,
}

/// The event after acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProactiveEventAck {
    /// The event.
    pub event_id: EventId,
    /// Its state now (unchanged by a suggestion).
    pub state: EventState,
    /// Whether this was a person's verdict or an assistant's suggestion.
    pub recorded_as: AckRecordedAs,
    /// False when the event already had this verdict (or, for a suggestion, always: a suggestion
    /// never counts in the budget). Acknowledging twice counts once.
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
