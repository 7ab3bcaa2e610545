//! A server's merged timeline and the retrospective written from it.
//!
//! The timeline has one total order, chronological: (time to the millisecond, event rank, id),
//! where the rank is the fixed source priority (incident, deploy, investigation, action, audit,
//! thread; within a source, an opening before its close). New sources and events are only ever
//! appended, so a rank written into a cursor keeps its meaning. Pages are newest first, the exact reverse, and
//! a cursor is the sort key of the last item returned, so rows inserted while someone pages never
//! shift or repeat an item (an offset would).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::investigations::Title;
use super::knowledge::KnowledgeKind;
use super::notify::{IncidentSummary, Notification, ThreadId};
use crate::audit::AuditActor;
use crate::bounded::{BoundedVec, bounded_int, bounded_text};
use crate::ids::{InvestigationId, KnowledgeId, ServerId};

bounded_int!(
    /// How many timeline items to return (1 to 500, default 100).
    TimelineLimit: u32, min 1, max 500, default 100
);

bounded_text!(
    /// An opaque paging cursor, `next_cursor` of the previous page (1 to 200 characters).
    TimelineCursorText, min 1, max 200
);

/// Where a timeline item comes from, in priority order (the order of items at the same
/// millisecond, chronologically).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineSource {
    /// An alert (an incident) opening or resolving.
    Incident,
    /// A deploy starting or finishing.
    Deploy,
    /// An investigation opening or closing.
    Investigation,
    /// An action requested on the server (its current state attached).
    Action,
    /// Any other audited event about the server: tool calls, decisions, results, agent events.
    Audit,
    /// A post in an incident thread: what a person, an assistant or central wrote there. Only in
    /// a retrospective written from a thread; a server's timeline lists its records, and
    /// `mttrly_get_thread` reads a thread.
    Thread,
}

impl TimelineSource {
    /// Every source, in priority order.
    pub const ALL: [Self; 6] =
        [Self::Incident, Self::Deploy, Self::Investigation, Self::Action, Self::Audit, Self::Thread];
}

/// What happened, in rank order: the tie-break between items of one millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineEvent {
    /// An alert opened.
    IncidentOpened,
    /// An alert resolved.
    IncidentResolved,
    /// A deploy started.
    DeployStarted,
    /// A deploy finished (succeeded, failed or rolled back).
    DeployFinished,
    /// An investigation opened.
    InvestigationOpened,
    /// An investigation closed.
    InvestigationClosed,
    /// An action was requested (its status now is attached).
    ActionRequested,
    /// An audited event.
    Audited,
    /// A notification was posted in the incident thread (the item's `post` says who wrote what).
    ThreadPosted,
}

impl TimelineEvent {
    /// Every event, in rank order.
    pub const ALL: [Self; 9] = [
        Self::IncidentOpened,
        Self::IncidentResolved,
        Self::DeployStarted,
        Self::DeployFinished,
        Self::InvestigationOpened,
        Self::InvestigationClosed,
        Self::ActionRequested,
        Self::Audited,
        Self::ThreadPosted,
    ];

    /// Its rank: position in [`Self::ALL`].
    pub const fn rank(self) -> u8 {
        self as u8
    }

    /// The event of rank `rank`.
    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.get(usize::from(rank)).copied()
    }

    /// Its source.
    pub const fn source(self) -> TimelineSource {
        match self {
            Self::IncidentOpened | Self::IncidentResolved => TimelineSource::Incident,
            Self::DeployStarted | Self::DeployFinished => TimelineSource::Deploy,
            Self::InvestigationOpened | Self::InvestigationClosed => TimelineSource::Investigation,
            Self::ActionRequested => TimelineSource::Action,
            Self::Audited => TimelineSource::Audit,
            Self::ThreadPosted => TimelineSource::Thread,
        }
    }
}

/// The most servers one retrospective covers (an incident thread's notifications may name any
/// number). Each covered server costs its own window read (up to the retrospective's decisive
/// rows and audit scan, tens of thousands of rows), verifier read and knowledge search, all in
/// one tool call; and a document merging more servers' records than this stops being one
/// incident a person can read. The servers past it are listed as left out, never dropped silently;
/// `server_id` writes up any one of them.
pub const MAX_RETROSPECTIVE_SERVERS: usize = 8;

/// Arguments of `mttrly_get_server_timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServerTimelineInput {
    /// The server.
    pub server_id: ServerId,
    /// Only items at or after this time (RFC 3339); the plan's retention applies anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
    /// Only these sources (all when absent). `thread` is refused here: a server's timeline lists
    /// its records; thread posts are read with `mttrly_get_thread` (and are on a retrospective
    /// written from a thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<BoundedVec<TimelineSource, 5>>,
    /// Continue after the previous page: its `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<TimelineCursorText>,
    /// How many items to return, newest first.
    #[serde(default)]
    pub limit: TimelineLimit,
}

/// One item on a server's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelineItem {
    /// When, to the millisecond.
    pub at: jiff::Timestamp,
    /// Where it comes from.
    pub source: TimelineSource,
    /// What happened.
    pub event: TimelineEvent,
    /// The record behind it: an alert, deploy, investigation, action or notification id, or
    /// `audit:SEQ`.
    pub reference: String,
    /// One line for a human, in central's words (a thread post's is only what was posted where,
    /// never what it says: that is in `post`). Text from hosts, CI and assistants was redacted
    /// when stored.
    pub summary: String,
    /// Who did it, when someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<AuditActor>,
    /// Its state or outcome: severity and status of an alert, a deploy's or action's status, an
    /// audited event's `ok` or error code (a decision's `approve`/`reject`, a deploy verifier
    /// run's verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What an audited event is about (a tool id, an action id), or the action's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When an action reached its final state, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<jiff::Timestamp>,
    /// The investigation it was done under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investigation_id: Option<String>,
    /// A thread post (`thread_posted` items only): the notification as stored, its sender taken
    /// from their credentials when they posted. Its title and body are the sender's words (a
    /// person's, an assistant's, or central's own posts), redacted, never facts central checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<Notification>,
    /// The server whose record it is. Set on the items of a retrospective covering several
    /// servers (an incident thread naming several), whose timeline merges their records, so no
    /// item can be read as another server's; absent on a thread post (no server's record) and
    /// where one server is named once for all (a server's timeline page, a one-server
    /// retrospective, whose items stay as that page lists them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
}

impl TimelineItem {
    /// Its place in the chronological order (see the module's doc).
    pub fn key(&self) -> TimelineKey {
        TimelineKey { at_ms: self.at.as_millisecond(), rank: self.event.rank(), id: sort_id(&self.reference) }
    }
}

/// The id an item sorts by within its rank: audit rows by sequence number (zero-padded so text
/// order is numeric order), everything else by its id.
pub fn sort_id(reference: &str) -> String {
    match reference.strip_prefix("audit:").and_then(|s| s.parse::<u64>().ok()) {
        Some(seq) => format!("{seq:020}"),
        None => reference.to_owned(),
    }
}

/// A timeline position: (time in ms, event rank, id), compared in that order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelineKey {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// [`TimelineEvent::rank`].
    pub rank: u8,
    /// [`sort_id`] of the item's reference.
    pub id: String,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a timeline cursor (pass `next_cursor` from the previous page unchanged)")]
pub struct BadCursor;

const CURSOR_VERSION: &str = "t1";

impl TimelineKey {
    /// The opaque cursor text of this position.
    pub fn to_cursor(&self) -> String {
        let raw = format!("{CURSOR_VERSION}\n{}\n{}\n{}", self.at_ms, self.rank, self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses a cursor made by [`Self::to_cursor`].
    pub fn from_cursor(text: &str) -> Result<Self, BadCursor> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| BadCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| BadCursor)?;
        let mut parts = raw.splitn(4, '\n');
        if parts.next() != Some(CURSOR_VERSION) {
            return Err(BadCursor);
        }
        let at_ms: i64 = parts.next().and_then(|s| s.parse().ok()).ok_or(BadCursor)?;
        let rank: u8 = parts.next().and_then(|s| s.parse().ok()).ok_or(BadCursor)?;
        let id = parts.next().ok_or(BadCursor)?;
        if TimelineEvent::from_rank(rank).is_none()
            || id.is_empty()
            || id.len() > 100
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(BadCursor);
        }
        Ok(Self { at_ms, rank, id: id.to_owned() })
    }
}

/// A page of a server's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerTimeline {
    /// The server.
    pub server_id: ServerId,
    /// Items, newest first.
    pub items: Vec<TimelineItem>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The plan keeps this many days; nothing older is shown.
    pub retention_days: u32,
}

// `server_id` was required before `thread_id` existed. It stays the same field, optional on the
// wire only so a thread can stand for it: a call that names it behaves exactly as before, and a
// call naming neither it nor a thread is refused on `server_id`, as a call without it always was.
/// Arguments of `mttrly_generate_retrospective`: `server_id`, or `thread_id` (then `server_id`
/// may be left out). A call with neither is refused (`VALIDATION_ERROR` on `server_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRetrospectiveInput {
    /// The server. Required unless `thread_id` is given; with `thread_id` it may be left out
    /// (every server the thread names is covered) and, when given, must be one the thread names
    /// (then only that one is covered), or any server when the thread names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// The investigation to write up; the server's latest investigation, else its latest
    /// incident, when absent (and no `thread_id`). Not together with `thread_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investigation_id: Option<InvestigationId>,
    /// An incident thread to write up (`mttrly_get_thread`'s id): the incident runs from the
    /// thread's first notification to its resolution (`incident-resolved`), or to now while it is
    /// not resolved; it covers every server its notifications name (at most 8, the first named;
    /// the rest are listed as left out); its posts are on the timeline, each attributed to its
    /// sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<ThreadId>,
    /// A title of yours. Central names the stored postmortem itself (server, window, incident
    /// or investigation id); yours is kept inside it, labelled as the assistant's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Title>,
}

/// Routine timeline items a retrospective summarised instead of listing: a long incident keeps
/// its first and last items and every decisive one (alerts, deploys, investigations, actions,
/// people's acts, failures and decisions), and says how much of the rest it left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OmittedItems {
    /// How many routine items were left out.
    pub count: u64,
    /// The earliest of them.
    pub from: jiff::Timestamp,
    /// The latest of them.
    pub to: jiff::Timestamp,
    /// Whether the count is a lower bound (the window held more than was read).
    pub at_least: bool,
}

/// A moment a measure starts or ends at, named so a reader can check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Moment {
    /// What it is, e.g. "first alert opened".
    pub label: String,
    /// When.
    pub at: jiff::Timestamp,
    /// The record it comes from.
    pub reference: String,
}

/// One incident measure (time to detect, acknowledge, mitigate, resolve).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Measure {
    /// Its name, e.g. `time_to_detect`.
    pub name: String,
    /// Where it starts; absent when unknown.
    pub from: Option<Moment>,
    /// Where it ends; absent when unknown.
    pub to: Option<Moment>,
    /// `to - from` in ms; absent (shown `n/a`, never 0) when either end is unknown.
    pub duration_ms: Option<i64>,
}

/// An action taken during the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionTaken {
    /// The action.
    pub action_id: String,
    /// Central's description of it.
    pub summary: String,
    /// Who asked for it.
    pub requested_by: String,
    /// Who decided on it (approvals, rejections), in order.
    pub decided_by: Vec<String>,
    /// Its status.
    pub status: String,
    /// When it was requested.
    pub requested_at: jiff::Timestamp,
    /// When it finished, if it has.
    pub finished_at: Option<jiff::Timestamp>,
    /// The server it was requested on, when the retrospective covers several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
}

/// The latest deploy verifier run on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifierState {
    /// The run.
    pub verification_id: String,
    /// The deploy it checked, if one.
    pub deploy_id: Option<String>,
    /// `pass`, `fail`, `inconclusive` or `error`.
    pub verdict: String,
    /// When it ran.
    pub checked_at: jiff::Timestamp,
}

/// A server a retrospective covers: its records within the window are on the timeline, each
/// item naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CoveredServer {
    /// The server.
    pub server_id: ServerId,
    /// Its name.
    pub server_name: String,
    /// Its latest deploy verifier run before the window's end, if any.
    pub verifier: Option<VerifierState>,
}

/// Why a server an incident thread names is not covered by its retrospective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutReason {
    /// `server_id` chose another of the thread's servers: the retrospective covers that one only.
    NotChosen,
    /// The thread names more servers than one retrospective covers; the first ones it names are
    /// covered.
    OverLimit,
    /// Not a server of this account (decommissioned, or an id that was never this account's):
    /// none of its records are read.
    NotFound,
}

/// A server an incident thread names that its retrospective does not cover, and why: nothing
/// is left out silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeftOutServer {
    /// The id the thread's notifications carry.
    pub server_id: ServerId,
    /// Its name, when it is a server of this account (absent for `not_found`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Why it is not covered.
    pub reason: LeftOutReason,
}

/// A knowledge entry related to the incident (found by its symptoms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RelatedKnowledge {
    /// The entry.
    pub knowledge_id: KnowledgeId,
    /// What it is.
    pub kind: KnowledgeKind,
    /// Its title.
    pub title: String,
}

/// The incident's impact, as far as the records say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Impact {
    /// Alerts opened in the window.
    pub incidents: u32,
    /// The worst severity among them.
    pub worst_severity: Option<String>,
    /// Alerts still open at the end of the window.
    pub still_open: u32,
    /// From the first alert opening to the last resolving, in ms (absent while one is open).
    pub alerting_ms: Option<i64>,
    /// What users saw: to be filled by a human.
    pub user_impact: String,
}

/// A retrospective's content: what the Markdown says, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RetrospectiveReport {
    /// The template that laid it out.
    pub template_version: u32,
    /// Its title.
    pub title: String,
    /// The server.
    pub server_id: ServerId,
    /// The server's name.
    pub server_name: String,
    /// The start of the window it covers.
    pub window_from: jiff::Timestamp,
    /// The end of the window it covers.
    pub window_to: jiff::Timestamp,
    /// What happened, in a few facts.
    pub summary: String,
    /// The impact.
    pub impact: Impact,
    /// Detection, acknowledgement, mitigation and resolution times.
    pub measures: Vec<Measure>,
    /// Actions taken and by whom.
    pub actions: Vec<ActionTaken>,
    /// The latest verifier run, if any.
    pub verifier: Option<VerifierState>,
    /// Related knowledge.
    pub related: Vec<RelatedKnowledge>,
    /// The timeline, oldest first.
    pub timeline: Vec<TimelineItem>,
    /// Routine items summarised rather than listed, when the window held too many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<OmittedItems>,
    /// Words an assistant chose (a title it gave, its investigation's title): kept, labelled as
    /// its own, never the entry's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_title: Option<String>,
    /// The incident thread it was written from, read by the war room's incident rules (status,
    /// owner, moments, decisions: what `mttrly_get_incident_summary` answers for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<IncidentSummary>,
    /// What went well: to be filled by a human.
    pub went_well: String,
    /// What went badly: to be filled by a human.
    pub went_badly: String,
    /// Follow-ups: to be filled by a human.
    pub follow_ups: String,
    /// Every server it covers, in the order the incident thread names them (the first is
    /// `server_id`, whose verifier run `verifier` repeats): one for a server's window, several
    /// for a thread naming several.
    #[serde(default)]
    pub servers: Vec<CoveredServer>,
    /// Servers the incident thread names that it does not cover, and why (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers_left_out: Vec<LeftOutServer>,
}

/// A stored retrospective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Retrospective {
    /// The postmortem knowledge entry it was saved as (searchable at once).
    pub knowledge_id: KnowledgeId,
    /// Its title.
    pub title: String,
    /// SHA-256 (hex) of the Markdown: the same records give the same hash.
    pub content_sha256: String,
    /// Whether an identical retrospective was already stored (then that entry is returned).
    pub already_stored: bool,
    /// The retrospective, in Markdown.
    pub markdown: String,
    /// The same content as data.
    pub report: RetrospectiveReport,
    /// When the entry was stored.
    pub created_at: jiff::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_follow_the_source_priority() {
        let mut last = TimelineSource::Incident;
        for event in TimelineEvent::ALL {
            assert!(event.source() >= last);
            last = event.source();
            assert_eq!(TimelineEvent::from_rank(event.rank()), Some(event));
        }
    }

    #[test]
    fn audit_ids_sort_numerically() {
        assert!(sort_id("audit:9") < sort_id("audit:10"));
        assert_eq!(sort_id("alt_1"), "alt_1");
    }

    #[test]
    fn garbage_cursors_are_refused() {
        for bad in ["", "x", "dDE", "!!!", &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("t1\n1\n99\nabc")] {
            assert_eq!(TimelineKey::from_cursor(bad), Err(BadCursor), "{bad}");
        }
        let bad_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("t1\n1\n0\na'b");
        assert_eq!(TimelineKey::from_cursor(&bad_id), Err(BadCursor));
    }

    proptest! {
        #[test]
        fn cursors_round_trip(at_ms in any::<i64>(), rank in 0u8..9, id in "[a-z0-9_]{1,60}") {
            let key = TimelineKey { at_ms, rank, id };
            prop_assert_eq!(TimelineKey::from_cursor(&key.to_cursor()), Ok(key));
        }

        #[test]
        fn any_text_is_a_cursor_or_a_clean_refusal(text in any::<String>()) {
            let _ = TimelineKey::from_cursor(&text);
        }
    }
}
