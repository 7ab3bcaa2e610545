//! A server's merged timeline and the retrospective written from it.

use serde::{Deserialize, Serialize};

use super::investigations::Title;
use crate::bounded::bounded_int;
use crate::ids::{InvestigationId, KnowledgeId, ServerId};

bounded_int!(
    /// How many timeline events to return (1 to 500, default 100).
    TimelineLimit: u32, min 1, max 500, default 100
);

/// Arguments of `mttrly_get_server_timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServerTimelineInput {
    /// The server.
    pub server_id: ServerId,
    /// Only events at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
    /// How many events to return, newest first.
    #[serde(default)]
    pub limit: TimelineLimit,
}

/// What a timeline event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// An alert or incident.
    Incident,
    /// A deploy.
    Deploy,
    /// An audited action or call.
    Audit,
}

/// One event on a server's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelineEvent {
    /// When.
    pub at: jiff::Timestamp,
    /// What kind.
    pub kind: TimelineKind,
    /// One line for a human.
    pub summary: String,
    /// The id of the alert, deploy or audit entry behind it.
    pub reference: String,
}

/// A server's merged timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerTimeline {
    /// The server.
    pub server_id: ServerId,
    /// Events, newest first.
    pub events: Vec<TimelineEvent>,
}

/// Arguments of `mttrly_generate_retrospective`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRetrospectiveInput {
    /// The server.
    pub server_id: ServerId,
    /// The investigation to write up; the server's latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investigation_id: Option<InvestigationId>,
    /// A title; derived from the investigation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Title>,
}

/// A stored retrospective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Retrospective {
    /// The knowledge entry it was saved as.
    pub knowledge_id: KnowledgeId,
    /// Its title.
    pub title: String,
    /// The retrospective, in Markdown.
    pub markdown: String,
    /// When it was generated.
    pub created_at: jiff::Timestamp,
}
