//! Investigations, approval bypasses, timelines, deploy verification and retrospectives.

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::{bounded_int, bounded_text};
use crate::ids::{AlertId, InvestigationId, KnowledgeId, ServerId};
use crate::principal::Principal;

bounded_text!(
    /// A short title (1 to 200 characters).
    Title, min 1, max 200
);

/// Arguments of `mttrly_start_investigation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInvestigationInput {
    /// The server under investigation.
    pub server_id: ServerId,
    /// What is being investigated.
    pub title: Title,
    /// The alert that started it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Whether an investigation is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationStatus {
    /// Open.
    Open,
    /// Closed; it can no longer acquire a bypass.
    Closed,
}

/// An investigation bound to an assistant session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Investigation {
    /// The investigation's id.
    pub investigation_id: InvestigationId,
    /// The server.
    pub server_id: ServerId,
    /// Its title.
    pub title: String,
    /// Open or closed.
    pub status: InvestigationStatus,
    /// When it was opened.
    pub opened_at: jiff::Timestamp,
    /// Whether an existing open investigation was resumed instead of a new one created.
    pub resumed: bool,
}

/// Arguments of `mttrly_get_investigation_bypass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInvestigationBypassInput {
    /// The investigation.
    pub investigation_id: InvestigationId,
}

bounded_int!(
    /// How long the bypass lasts, in minutes (5 to 60, default 15).
    BypassMinutes: u32, min 5, max 60, default 15
);

bounded_int!(
    /// How many commands may run under the bypass (1 to 50, default 10).
    BypassMaxActions: u32, min 1, max 50, default 10
);

/// Arguments of `mttrly_acquire_investigation_bypass`. The second factor is asked of the human
/// by the server, never passed by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireInvestigationBypassInput {
    /// The open investigation.
    pub investigation_id: InvestigationId,
    /// How long the bypass lasts.
    #[serde(default)]
    pub duration_minutes: BypassMinutes,
    /// How many commands may run under it.
    #[serde(default)]
    pub max_actions: BypassMaxActions,
}

/// Arguments of `mttrly_revoke_investigation_bypass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInvestigationBypassInput {
    /// The investigation.
    pub investigation_id: InvestigationId,
    /// Why, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Where a bypass stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BypassStatus {
    /// No bypass was ever acquired.
    None,
    /// Commands skip per-command approval.
    Active,
    /// Its time ran out.
    Expired,
    /// Its action budget is used up.
    Exhausted,
    /// Someone revoked it.
    Revoked,
}

/// An investigation's bypass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BypassState {
    /// The investigation.
    pub investigation_id: InvestigationId,
    /// Where the bypass stands.
    pub status: BypassStatus,
    /// Who acquired it (always a human, after a second factor).
    pub acquired_by: Option<Principal>,
    /// When it ends.
    pub expires_at: Option<jiff::Timestamp>,
    /// How many commands it allows.
    pub max_actions: u32,
    /// How many it has used.
    pub actions_used: u32,
}

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

bounded_text!(
    /// An http(s) URL checked from the server itself (1 to 2048 characters).
    HealthcheckUrl, min 1, max 2048
);

/// Arguments of `mttrly_run_deploy_verifier`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDeployVerifierInput {
    /// The server.
    pub server_id: ServerId,
    /// The URL to check; the server's configured healthcheck when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck_url: Option<HealthcheckUrl>,
}

/// The verifier's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifierVerdict {
    /// The healthcheck passed and nothing is on fire.
    Passed,
    /// The healthcheck failed or an incident is open.
    Failed,
    /// Not enough information.
    Inconclusive,
}

/// A healthcheck's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthcheckOutcome {
    /// The URL checked.
    pub url: String,
    /// The HTTP status, when a response arrived.
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// Whether it counts as healthy.
    pub ok: bool,
}

/// The latest deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployInfo {
    /// The deployed version or commit.
    pub version: String,
    /// When.
    pub deployed_at: jiff::Timestamp,
    /// Its status as reported (`succeeded`, `failed`, `rolled_back`).
    pub status: String,
}

/// The result of a deploy verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployVerification {
    /// The server.
    pub server_id: ServerId,
    /// The verdict.
    pub verdict: VerifierVerdict,
    /// The healthcheck, when one ran.
    pub healthcheck: Option<HealthcheckOutcome>,
    /// How many alerts are open on the server.
    pub active_incidents: u32,
    /// The latest deploy, when one is known.
    pub latest_deploy: Option<DeployInfo>,
    /// When it ran.
    pub checked_at: jiff::Timestamp,
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
