//! Proactive events raised by the agents' detectors, and the morning brief.

use serde::{Deserialize, Serialize};

use super::common::Severity;
use super::knowledge::KnowledgeHit;
use crate::bounded::bounded_text;
use crate::ids::{EventId, ServerId};

/// Arguments of `mttrly_get_morning_brief` (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMorningBriefInput {}

/// What the user said about a proactive event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventVerdict {
    /// A real problem.
    Accepted,
    /// Noise; counts against the detector's false-positive budget.
    FalsePositive,
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
}

/// An anomaly a detector noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProactiveEvent {
    /// The event.
    pub event_id: EventId,
    /// The server.
    pub server_id: ServerId,
    /// The detector that raised it.
    pub detector: String,
    /// How serious it is.
    pub severity: Severity,
    /// One line for a human.
    pub summary: String,
    /// When it was detected.
    pub detected_at: jiff::Timestamp,
    /// Where it stands.
    pub state: EventState,
}

/// The user's morning brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MorningBrief {
    /// When it was put together.
    pub generated_at: jiff::Timestamp,
    /// New anomalies, most severe first.
    pub anomalies: Vec<ProactiveEvent>,
    /// Knowledge written recently.
    pub recent_knowledge: Vec<KnowledgeHit>,
    /// How many servers are offline.
    pub servers_offline: u32,
    /// How many alerts are open.
    pub open_alerts: u32,
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
    /// Whether the detector is now muted for this server because its budget ran out.
    pub detector_muted: bool,
    /// False positives the detector may still raise before it is muted.
    pub false_positive_budget_remaining: u32,
}
