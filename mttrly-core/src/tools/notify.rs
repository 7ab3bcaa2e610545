//! The war room: channels, notifications, threads, and the incident summary and
//! statistics read from them (issue 17; beyond the seed's 40 tools, in the `notify` toolset).
//!
//! A notification's sender is never an argument: central takes it from the caller's credentials
//! (the human, and the assistant's client name when one published it), so a message in a thread
//! is attributed to whoever really sent it. Field names follow the seed's examples (`channel`,
//! `title`, `body`, `priority`, `theme`, `tags`, `thread_id`, `in_reply_to`, `sender.ai_tool`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::bounded::{bounded_int, bounded_text, checked_name};
use crate::ids::{ServerId, UserId};
use crate::principal::Source;
use crate::role::Role;

/// Whether `s` is 1 to `max` bytes of `[A-Za-z0-9._:-]` (or only lowercase when `lower`),
/// starting with a letter or a digit.
fn is_name(s: &str, max: usize, lower: bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && (!lower || !b.iter().any(u8::is_ascii_uppercase))
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b':'))
}

macro_rules! name {
    ($(#[$doc:meta])* $name:ident, $what:literal, max $max:literal, lower $lower:literal, $pattern:literal) => {
        checked_name!(
            $(#[$doc])* $name, $what,
            valid |s| is_name(s, $max, $lower),
            rule concat!("use 1 to ", $max, " characters matching `", $pattern, "`"),
            pattern $pattern
        );
    };
}

name!(
    /// A channel's name, for example `incidents` (lowercase).
    ChannelName, "channel name", max 64, lower true, "^[a-z0-9][a-z0-9_.:-]{0,63}$"
);
name!(
    /// A thread's id: any name the team agrees on (`incident-2024-01-12-001`), or the id central
    /// gave the thread's first notification.
    ThreadId, "thread id", max 128, lower false, "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
);
name!(
    /// A theme: the seed's (`incident-alert`, `incident-update`, `incident-decision`,
    /// `incident-resolved`, `incident-postmortem`, `incident-escalation`, `security-incident`) or
    /// any other lowercase name.
    Theme, "theme", max 64, lower true, "^[a-z0-9][a-z0-9_.:-]{0,63}$"
);
name!(
    /// A tag, for example `p0` or `database` (lowercase).
    Tag, "tag", max 64, lower true, "^[a-z0-9][a-z0-9_.:-]{0,63}$"
);

bounded_text!(
    /// A notification's title (1 to 200 characters).
    NotificationTitle, min 1, max 200
);
bounded_text!(
    /// A notification's body, markdown (0 to 16,384 characters).
    NotificationBody, min 0, max 16384
);
bounded_text!(
    /// What a channel is for (0 to 500 characters).
    ChannelDescription, min 0, max 500
);
bounded_text!(
    /// An opaque position in a channel (a previous answer's `next_cursor`).
    NotificationCursor, min 1, max 64
);
bounded_int!(
    /// How many notifications to return (1 to 200, default 50).
    NotificationLimit: u32, min 1, max 200, default 50
);

/// The themes the seed names, that the incident summary and statistics read.
pub mod themes {
    /// Monitoring (or a person) reports an incident: opens it.
    pub const ALERT: &str = "incident-alert";
    /// Progress: the first one from someone else acknowledges the incident.
    pub const UPDATE: &str = "incident-update";
    /// A decision (an approval, a choice of mitigation).
    pub const DECISION: &str = "incident-decision";
    /// The incident is over.
    pub const RESOLVED: &str = "incident-resolved";
    /// The postmortem is written.
    pub const POSTMORTEM: &str = "incident-postmortem";
    /// Someone else is needed.
    pub const ESCALATION: &str = "incident-escalation";
    /// A security incident: opens it, like `incident-alert`.
    pub const SECURITY: &str = "security-incident";
}

/// How urgent a notification is. Ordered: `critical` is the highest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// FYI (P3).
    Low,
    /// FYI, worth reading (P2).
    #[default]
    Medium,
    /// Important, not an alarm (P1).
    High,
    /// Wakes people (P0).
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Self; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// The priority named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// A small integer for storage (0 low … 3 critical).
    pub const fn rank(self) -> u8 {
        self as u8
    }

    /// The priority stored as `rank`.
    pub fn from_rank(rank: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| i64::from(p.rank()) == rank)
    }
}

/// One priority or several (`"critical"` or `["critical", "high"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Priorities {
    /// One.
    One(Priority),
    /// Any of these (at least one).
    Many(Vec<Priority>),
}

impl<'de> Deserialize<'de> for Priorities {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected one of critical, high, medium, low, or a non-empty list of them";
        let value = serde_json::Value::deserialize(deserializer)?;
        let one = |v: &serde_json::Value| v.as_str().and_then(Priority::parse);
        match &value {
            serde_json::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| one(v).ok_or_else(|| serde::de::Error::custom(format!("priority `{v}`: {EXPECTED}"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Many),
            v => one(v).map(Self::One).ok_or_else(|| serde::de::Error::custom(format!("priority `{v}`: {EXPECTED}"))),
        }
    }
}

impl Priorities {
    /// The set, deduplicated and lowest first (never empty).
    pub fn to_vec(&self) -> Vec<Priority> {
        let mut v = match self {
            Self::One(p) => vec![*p],
            Self::Many(ps) => ps.clone(),
        };
        v.sort();
        v.dedup();
        v
    }
}

/// Who sent a notification, from their credentials (never from the arguments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sender {
    /// The person (the one an assistant acts for); absent when central itself posted (an
    /// alert opened an incident, an action on the incident's server moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Their display name (`mttrly` for central itself).
    pub name: String,
    /// Their role in the account (absent for central itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The assistant's client name when an assistant published it (`claude-code`): the name its
    /// token was made for, or else the name the client announced (self-reported). Absent when no
    /// client named itself, which does not prove a person typed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_tool: Option<String>,
    /// The channel it came through (`mcp`, `cli`, ...; `agent` or `api` for what central
    /// posted from an agent's report or a monitoring webhook).
    pub via: Source,
}

impl Sender {
    /// The name central posts under.
    pub const CENTRAL: &'static str = "mttrly";

    /// Central itself, posting what came through `via`.
    pub fn central(via: Source) -> Self {
        Self { user_id: None, name: Self::CENTRAL.to_owned(), role: None, ai_tool: None, via }
    }
}

/// Arguments of `mttrly_publish_notification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishNotificationInput {
    /// The channel (it must exist: `mttrly_create_channel`).
    pub channel: ChannelName,
    /// One line.
    pub title: NotificationTitle,
    /// Markdown.
    #[serde(default = "empty_body")]
    pub body: NotificationBody,
    /// How urgent (default `medium`).
    #[serde(default)]
    pub priority: Priority,
    /// What kind of message (`incident-alert`, `incident-update`, `incident-decision`,
    /// `incident-resolved`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
    /// Labels (at most 16), for example `p0`, `database`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub tags: Vec<Tag>,
    /// The thread it belongs to; a new thread (named by this notification's id) when absent
    /// and `in_reply_to` is absent too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<ThreadId>,
    /// The notification it answers (its thread is this one's when `thread_id` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<crate::ids::NotificationId>,
    /// The server it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
}

fn empty_body() -> NotificationBody {
    NotificationBody(String::new())
}

/// The most tags a notification carries.
pub const MAX_TAGS: usize = 16;

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Notification {
    /// Its id (`in_reply_to` names it).
    pub notification_id: crate::ids::NotificationId,
    /// The channel.
    pub channel: String,
    /// The thread.
    pub thread_id: String,
    /// The notification it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<crate::ids::NotificationId>,
    /// One line (redacted).
    pub title: String,
    /// Markdown (redacted).
    pub body: String,
    /// How urgent.
    pub priority: Priority,
    /// What kind of message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// The server it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// Who sent it.
    pub sender: Sender,
    /// When central stored it.
    pub published_at: jiff::Timestamp,
    /// How many secrets were replaced by `[REDACTED:…]` before it was stored.
    pub redactions: u32,
}

/// Arguments of `mttrly_list_channels`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListChannelsInput {}

/// A channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Channel {
    /// Its name.
    pub channel: String,
    /// What it is for.
    pub description: String,
    /// Who created it.
    pub created_by: Sender,
    /// When.
    pub created_at: jiff::Timestamp,
    /// How many notifications it holds (within the plan's retention).
    pub notifications: u64,
    /// The latest one's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_published_at: Option<jiff::Timestamp>,
}

/// The account's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelList {
    /// By name.
    pub channels: Vec<Channel>,
}

/// Arguments of `mttrly_create_channel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelInput {
    /// The name (lowercase): `incidents`.
    pub channel: ChannelName,
    /// What it is for.
    #[serde(default = "empty_description")]
    pub description: ChannelDescription,
}

fn empty_description() -> ChannelDescription {
    ChannelDescription(String::new())
}

/// `mttrly_create_channel`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelCreated {
    /// The channel.
    #[serde(flatten)]
    pub channel: Channel,
    /// False when it already existed (nothing changed).
    pub created: bool,
}

/// Arguments of `mttrly_get_thread`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetThreadInput {
    /// The thread.
    pub thread_id: ThreadId,
}

/// A thread, root first, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Thread {
    /// The thread.
    pub thread_id: String,
    /// Its channel.
    pub channel: String,
    /// Its notifications, oldest first (at most 500; `more` says when there are others).
    pub notifications: Vec<Notification>,
    /// Whether later notifications were left out.
    pub more: bool,
}

/// Arguments of `mttrly_get_notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetNotificationsInput {
    /// The channel.
    pub channel: ChannelName,
    /// Only what came after this position (a previous answer's `next_cursor`); the latest
    /// `limit` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<NotificationCursor>,
    /// Only these priorities (`"critical"` or `["critical", "high"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priorities>,
    /// Only this theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
    /// Only notifications carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
    /// How many, oldest first.
    #[serde(default)]
    pub limit: NotificationLimit,
}

/// A page of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationPage {
    /// The channel.
    pub channel: String,
    /// Oldest first.
    pub notifications: Vec<Notification>,
    /// Pass as `since` for what comes next.
    pub next_cursor: String,
    /// Whether more are waiting after this page.
    pub more: bool,
}

/// What a subscriber wants pushed from a channel: every filter given must match (no filter:
/// everything). The same rule decides a chat message and an MCP resource update, so what a
/// person set is applied before anything is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationFilter {
    /// Only these priorities (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<Priority>,
    /// Only this theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Only notifications carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl NotificationFilter {
    /// Whether `n` passes.
    pub fn matches(&self, n: &Notification) -> bool {
        (self.priorities.is_empty() || self.priorities.contains(&n.priority))
            && self.theme.as_ref().is_none_or(|t| n.theme.as_ref() == Some(t))
            && self.tag.as_ref().is_none_or(|t| n.tags.iter().any(|x| x == t))
    }
}

/// Arguments of `mttrly_subscribe_channel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeChannelInput {
    /// The channel.
    pub channel: ChannelName,
    /// Only these priorities (`"critical"` or `["critical", "high"]`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priorities>,
    /// Only this theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
    /// Only notifications carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
}

/// Arguments of `mttrly_unsubscribe_channel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeChannelInput {
    /// The channel.
    pub channel: ChannelName,
}

/// A person's subscription to a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelSubscription {
    /// The channel.
    pub channel: String,
    /// The person subscribed (the human behind the assistant that asked).
    pub user_id: UserId,
    /// What is pushed.
    pub filter: NotificationFilter,
    /// Since when (the latest change).
    pub subscribed_at: jiff::Timestamp,
    /// Where it is pushed now: `mcp` (an MCP client subscribed to `resource`), and each chat
    /// service the person linked (`telegram`, `slack`) that central is configured for.
    pub delivers_to: Vec<String>,
    /// The MCP resource to subscribe to for pushes in an assistant.
    pub resource: String,
}

/// `mttrly_subscribe_channel`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscribed {
    /// The subscription as it now stands.
    #[serde(flatten)]
    pub subscription: ChannelSubscription,
    /// False when the person was already subscribed (the filters were replaced).
    pub created: bool,
}

/// `mttrly_unsubscribe_channel`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unsubscribed {
    /// The channel.
    pub channel: String,
    /// False when there was no subscription (nothing changed).
    pub removed: bool,
}

/// The MCP resources of the war room: a channel's latest notifications and one thread. Parsed
/// from a URI by the same name rules as the tools' arguments, so a resource names exactly what
/// a tool would.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotificationResource {
    /// `notification://{channel}/recent`.
    Channel(ChannelName),
    /// `notification://thread/{thread_id}`.
    Thread(ThreadId),
}

impl NotificationResource {
    /// The URI scheme's prefix.
    pub const PREFIX: &'static str = "notification://";
    /// The template of a channel's resource.
    pub const CHANNEL_TEMPLATE: &'static str = "notification://{channel}/recent";
    /// The template of a thread's resource.
    pub const THREAD_TEMPLATE: &'static str = "notification://thread/{thread_id}";

    /// Reads a URI; `None` when it is not a war-room resource.
    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix(Self::PREFIX)?;
        if let Some(thread) = rest.strip_prefix("thread/") {
            return ThreadId::new(thread).ok().map(Self::Thread);
        }
        let channel = rest.strip_suffix("/recent")?;
        ChannelName::new(channel).ok().map(Self::Channel)
    }

    /// Whether notification `n` changes this resource.
    pub fn is_changed_by(&self, n: &Notification) -> bool {
        match self {
            Self::Channel(c) => c.as_str() == n.channel,
            Self::Thread(t) => t.as_str() == n.thread_id,
        }
    }

    /// The resource of a channel.
    pub fn channel_uri(channel: &str) -> String {
        format!("{}{channel}/recent", Self::PREFIX)
    }

    /// The resource of a thread.
    pub fn thread_uri(thread: &str) -> String {
        format!("{}thread/{thread}", Self::PREFIX)
    }
}

impl fmt::Display for NotificationResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Channel(c) => f.write_str(&Self::channel_uri(c.as_str())),
            Self::Thread(t) => f.write_str(&Self::thread_uri(t.as_str())),
        }
    }
}

/// Arguments of `mttrly_get_incident_summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIncidentSummaryInput {
    /// The incident's thread.
    pub thread_id: ThreadId,
}

/// Where an incident stands, read from its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Reported; nobody else has answered.
    Open,
    /// Someone other than the reporter answered (`incident-update`, a decision).
    Acknowledged,
    /// An `incident-resolved` notification closed it.
    Resolved,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    /// When.
    pub at: jiff::Timestamp,
    /// The notification.
    pub notification_id: crate::ids::NotificationId,
    /// Its theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Its title.
    pub title: String,
    /// Who sent it.
    pub sender: Sender,
}

/// The moments an incident's figures are computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentMoments {
    /// The thread's first notification.
    pub opened_at: jiff::Timestamp,
    /// The first notification from another person than the reporter (absent while nobody answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<jiff::Timestamp>,
    /// The first `incident-resolved` notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<jiff::Timestamp>,
    /// Seconds from opened to acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_acknowledge_seconds: Option<i64>,
    /// Seconds from opened to resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_resolve_seconds: Option<i64>,
}

/// `mttrly_get_incident_summary`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentSummary {
    /// The thread.
    pub thread_id: String,
    /// Its channel.
    pub channel: String,
    /// The first notification's title.
    pub title: String,
    /// The highest priority in the thread.
    pub priority: Priority,
    /// Where it stands.
    pub status: IncidentStatus,
    /// Who acknowledged it (the owner), when someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Sender>,
    /// Who reported it.
    pub reported_by: Sender,
    /// The moments, and the durations between them.
    pub moments: IncidentMoments,
    /// Seconds from opened to resolved, or to now while it is not resolved.
    pub duration_seconds: i64,
    /// Every notification, oldest first (the first 500).
    pub timeline: Vec<TimelineEntry>,
    /// Whether the thread holds more than the 500 read.
    pub truncated: bool,
    /// How many times it was reported again after a resolution (it is open again when the
    /// latest report has no resolution after it).
    pub reopened: u32,
    /// The `incident-decision` notifications.
    pub decisions: Vec<TimelineEntry>,
    /// Everyone who posted, in order of their first post.
    pub participants: Vec<Sender>,
    /// The root's tags.
    pub tags: Vec<String>,
}

/// Arguments of `mttrly_get_incident_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIncidentStatsInput {
    /// From (RFC 3339); 30 days before `until` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
    /// To (RFC 3339); now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<jiff::Timestamp>,
    /// Only this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelName>,
    /// Only incidents of these priorities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priorities>,
}

/// One incident counted by the statistics, with the moments they used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentRecord {
    /// The thread.
    pub thread_id: String,
    /// The channel.
    pub channel: String,
    /// The first notification's title.
    pub title: String,
    /// The highest priority in the thread.
    pub priority: Priority,
    /// Where it stands.
    pub status: IncidentStatus,
    /// The moments.
    pub moments: IncidentMoments,
}

/// A count per priority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PriorityCounts {
    /// P0.
    pub critical: u32,
    /// P1.
    pub high: u32,
    /// P2.
    pub medium: u32,
    /// P3.
    pub low: u32,
}

/// A tag and how many incidents carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TagCount {
    /// The tag.
    pub tag: String,
    /// Incidents whose first notification carried it.
    pub incidents: u32,
}

/// `mttrly_get_incident_stats`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentStats {
    /// The period's start.
    pub since: jiff::Timestamp,
    /// The period's end.
    pub until: jiff::Timestamp,
    /// Incidents opened in the period.
    pub incidents: u32,
    /// Of which resolved.
    pub resolved: u32,
    /// Per priority.
    pub by_priority: PriorityCounts,
    /// Mean time to acknowledge over the acknowledged ones, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtta_seconds: Option<i64>,
    /// Mean time to resolve over the resolved ones, seconds (opened → resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttr_seconds: Option<i64>,
    /// The fastest resolution, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastest_resolution_seconds: Option<i64>,
    /// The slowest resolution, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowest_resolution_seconds: Option<i64>,
    /// The most common causes: the first notifications' tags (priority labels `p0`…`p4` left
    /// out), most incidents first, at most 10.
    pub top_tags: Vec<TagCount>,
    /// Every incident counted, oldest first, with the moments used (the latest 500 of the period).
    pub records: Vec<IncidentRecord>,
    /// Whether the period holds more incidents than the 500 counted (the oldest were left out).
    pub truncated: bool,
}

/// Whether a theme reports an incident (`incident-alert`, `security-incident`).
pub fn opens_incident(theme: Option<&str>) -> bool {
    matches!(theme, Some(themes::ALERT | themes::SECURITY))
}

/// Whether a theme makes its thread an incident: a report, or its handling (`incident-update`,
/// `incident-decision`, `incident-escalation`, `incident-resolved`). A postmortem alone does not.
pub fn marks_incident(theme: Option<&str>) -> bool {
    opens_incident(theme)
        || matches!(theme, Some(themes::UPDATE | themes::DECISION | themes::ESCALATION | themes::RESOLVED))
}

/// The themes [`marks_incident`] accepts, for queries.
pub const INCIDENT_THEMES: [&str; 6] =
    [themes::ALERT, themes::SECURITY, themes::UPDATE, themes::DECISION, themes::ESCALATION, themes::RESOLVED];

/// Whether a tag is a priority label (`p0` … `p4`), not a cause.
pub fn is_priority_label(tag: &str) -> bool {
    let b = tag.as_bytes();
    b.len() == 2 && b[0] == b'p' && (b'0'..=b'4').contains(&b[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every checked name accepts exactly what its published JSON Schema pattern does: a client
    /// validating against the schema and central validating the input never disagree. Strings
    /// are drawn near the boundary (the allowed characters, a few others, around the length cap).
    mod names_match_their_schema_pattern {
        use proptest::prelude::*;

        use super::super::super::playbooks::{ParamName, PlaybookId};
        use super::*;

        fn agrees(s: &str, pattern: &str, checked: bool) -> Result<(), TestCaseError> {
            let regex = regex::Regex::new(pattern).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(regex.is_match(s), checked, "{:?} against {}", s, pattern);
            Ok(())
        }

        proptest! {
            #[test]
            fn for_every_name_type(s in "[a-zA-Z0-9_.:/ -]{0,130}|[a-z0-9é_.-]{60,70}") {
                agrees(&s, ChannelName::PATTERN, ChannelName::new(s.as_str()).is_ok())?;
                agrees(&s, ThreadId::PATTERN, ThreadId::new(s.as_str()).is_ok())?;
                agrees(&s, Theme::PATTERN, Theme::new(s.as_str()).is_ok())?;
                agrees(&s, Tag::PATTERN, Tag::new(s.as_str()).is_ok())?;
                agrees(&s, PlaybookId::PATTERN, PlaybookId::new(s.as_str()).is_ok())?;
                agrees(&s, ParamName::PATTERN, ParamName::new(s.as_str()).is_ok())?;
            }
        }

        #[test]
        fn an_error_names_the_type_and_the_rule() {
            let e = PlaybookId::new("Bad Id").unwrap_err();
            assert_eq!(
                e,
                "`Bad Id` is not a valid playbook id: use 1 to 64 of a-z, 0-9, `_`, `.`, `-`, starting with a letter or digit"
            );
            let e = Tag::new("P0").unwrap_err();
            assert_eq!(e, "`P0` is not a valid tag: use 1 to 64 characters matching `^[a-z0-9][a-z0-9_.:-]{0,63}$`");
        }
    }

    #[test]
    fn resources_parse_by_the_tools_name_rules_and_round_trip() {
        for uri in ["notification://incidents/recent", "notification://thread/incident-2024-01-12-001"] {
            let r = NotificationResource::parse(uri).unwrap_or_else(|| panic!("{uri}"));
            assert_eq!(r.to_string(), uri);
        }
        for bad in [
            "notification://Incidents/recent",
            "notification://incidents",
            "notification://incidents/recent/x",
            "notification://thread/",
            "notification://thread/../etc",
            "notification://a b/recent",
            "mttrly://incidents/recent",
            "notification://incidents/recent?x=1",
        ] {
            assert_eq!(NotificationResource::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_filter_passes_only_what_every_given_part_allows() {
        let n: Notification = serde_json::from_value(json!({
            "notification_id": crate::ids::NotificationId::generate(), "channel": "incidents", "thread_id": "t",
            "title": "x", "body": "", "priority": "high", "theme": "incident-update", "tags": ["p0", "db"],
            "sender": { "user_id": UserId::generate(), "name": "a", "role": "operator", "via": "mcp" },
            "published_at": "2026-01-01T00:00:00Z", "redactions": 0
        }))
        .expect("a notification");
        let f = |v: serde_json::Value| serde_json::from_value::<NotificationFilter>(v).expect("filter");
        assert!(f(json!({})).matches(&n));
        assert!(f(json!({ "priorities": ["critical", "high"] })).matches(&n));
        assert!(!f(json!({ "priorities": ["critical"] })).matches(&n));
        assert!(f(json!({ "theme": "incident-update", "tag": "db" })).matches(&n));
        assert!(!f(json!({ "theme": "incident-update", "tag": "web" })).matches(&n));
        assert!(!f(json!({ "theme": "incident-alert" })).matches(&n));
    }

    #[test]
    fn names_are_checked() {
        assert!(ChannelName::new("incidents").is_ok());
        assert!(ChannelName::new("Incidents").is_err());
        assert!(ChannelName::new("-x").is_err());
        assert!(ChannelName::new("a b").is_err());
        assert!(ChannelName::new("").is_err());
        assert!(ChannelName::new("x".repeat(65)).is_err());
        assert!(ThreadId::new("incident-2024-01-12-001").is_ok());
        assert!(ThreadId::new("../etc").is_err());
        assert!(Tag::new("root-cause-identified").is_ok());
        assert!(Tag::new("p0 ").is_err());
    }

    #[test]
    fn the_seeds_examples_parse_without_their_sender() {
        let input: PublishNotificationInput = serde_json::from_value(json!({
            "channel": "incidents",
            "title": "Rollback Approved",
            "body": "**Decision:** Rollback",
            "priority": "critical",
            "theme": "incident-decision",
            "tags": ["p0", "approved"],
            "thread_id": "incident-2024-01-12-001",
        }))
        .expect("parses");
        assert_eq!(input.priority, Priority::Critical);
        let spoofed = serde_json::from_value::<PublishNotificationInput>(json!({
            "channel": "incidents", "title": "x", "sender": { "name": "Tom Rodriguez" }
        }));
        assert!(spoofed.unwrap_err().to_string().contains("sender"), "the sender is never an argument");
    }

    #[test]
    fn priorities_are_one_or_many() {
        let one: Priorities = serde_json::from_value(json!("high")).expect("one");
        let many: Priorities = serde_json::from_value(json!(["high", "critical", "high"])).expect("many");
        assert_eq!(one.to_vec(), vec![Priority::High]);
        assert_eq!(many.to_vec(), vec![Priority::High, Priority::Critical]);
        let err = serde_json::from_value::<Priorities>(json!("urgent")).unwrap_err().to_string();
        assert!(err.contains("expected one of critical, high, medium, low"), "{err}");
        assert!(serde_json::from_value::<Priorities>(json!([])).is_err(), "an empty list filters nothing out");
        assert!(Priority::Critical > Priority::High);
    }

    #[test]
    fn priority_labels_are_not_causes() {
        assert!(is_priority_label("p0") && is_priority_label("p4"));
        assert!(!is_priority_label("p5") && !is_priority_label("database") && !is_priority_label("p00"));
    }
}
