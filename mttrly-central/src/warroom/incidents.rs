//! Reading incidents out of threads: the summary of one, the statistics of many. Pure functions
//! over stored notifications (oldest first), so the rules are tested without a database.
//!
//! The rules, in one place:
//! - a thread is an incident when one of its notifications reports one (`incident-alert`,
//!   `security-incident`) or handles one (`incident-update`, `incident-decision`,
//!   `incident-escalation`, `incident-resolved`); a postmortem alone does not make one;
//! - it opened at its first report (at its first handling notification when nobody reported
//!   it; chatter before that is in the timeline but moves no moment), whose sender reported it;
//! - it is acknowledged at the first later notification from another person, or the reporter's
//!   own `incident-update`, `incident-decision` or `incident-resolved` (asking for help,
//!   `incident-escalation`, acknowledges nothing); that sender owns it;
//! - it is resolved at the first `incident-resolved` after its latest report: a report after a
//!   resolution reopens it (`reopened` counts those), and time to resolve still runs from the
//!   first report to the final resolution;
//! - its priority is the highest in the thread (a resolution posted at `high` does not lower a
//!   P0).

use std::collections::BTreeMap;

use mttrly_core::tools::notify::{
    IncidentMoments, IncidentRecord, IncidentStats, IncidentStatus, IncidentSummary, Notification, Priority,
    PriorityCounts, Sender, TagCount, TimelineEntry, is_priority_label, marks_incident, opens_incident, themes,
};

fn seconds(from: jiff::Timestamp, to: jiff::Timestamp) -> i64 {
    (to.as_millisecond() - from.as_millisecond()).max(0) / 1000
}

/// Whether `n` acknowledges an incident `reporter` opened: a person answered (central's own
/// posts, an action's progress on the server, acknowledge nothing).
fn acknowledges(n: &Notification, reporter: &Sender) -> bool {
    n.sender.user_id.is_some()
        && (n.sender.user_id != reporter.user_id
            || matches!(n.theme.as_deref(), Some(themes::UPDATE | themes::DECISION | themes::RESOLVED)))
}

fn entry(n: &Notification) -> TimelineEntry {
    TimelineEntry {
        at: n.published_at,
        notification_id: n.notification_id.clone(),
        theme: n.theme.clone(),
        title: n.title.clone(),
        sender: n.sender.clone(),
    }
}

/// What the rules read from one thread.
struct Reading<'a> {
    opener: &'a Notification,
    moments: IncidentMoments,
    owner: Option<Sender>,
    status: IncidentStatus,
    priority: Priority,
    reopened: u32,
}

fn theme(n: &Notification) -> Option<&str> {
    n.theme.as_deref()
}

/// Reads a thread (oldest first); `None` when it is empty.
fn read(thread: &[Notification]) -> Option<Reading<'_>> {
    if thread.is_empty() {
        return None;
    }
    let first = thread
        .iter()
        .position(|n| opens_incident(theme(n)))
        .or_else(|| thread.iter().position(|n| marks_incident(theme(n))))
        .unwrap_or(0);
    let opener = &thread[first];
    let last_report = thread.iter().rposition(|n| opens_incident(theme(n))).unwrap_or(first).max(first);
    let after = &thread[first + 1..];
    let ack = after.iter().find(|n| acknowledges(n, &opener.sender));
    let resolved = thread[last_report + 1..].iter().find(|n| theme(n) == Some(themes::RESOLVED));
    let mut reopened = 0;
    let mut was_resolved = false;
    for n in after {
        match theme(n) {
            Some(themes::RESOLVED) => was_resolved = true,
            t if opens_incident(t) && was_resolved => {
                reopened += 1;
                was_resolved = false;
            }
            _ => {}
        }
    }
    let opened_at = opener.published_at;
    let moments = IncidentMoments {
        opened_at,
        acknowledged_at: ack.map(|n| n.published_at),
        resolved_at: resolved.map(|n| n.published_at),
        time_to_acknowledge_seconds: ack.map(|n| seconds(opened_at, n.published_at)),
        time_to_resolve_seconds: resolved.map(|n| seconds(opened_at, n.published_at)),
    };
    let status = match (resolved, ack) {
        (Some(_), _) => IncidentStatus::Resolved,
        (None, Some(_)) => IncidentStatus::Acknowledged,
        (None, None) => IncidentStatus::Open,
    };
    let priority = thread.iter().map(|n| n.priority).max().unwrap_or_default();
    Some(Reading { opener, moments, owner: ack.map(|n| n.sender.clone()), status, priority, reopened })
}

/// The summary of a thread (oldest first; `truncated` when more than these exist); `None` when it
/// is empty.
pub fn summary(thread: &[Notification], truncated: bool, now: jiff::Timestamp) -> Option<IncidentSummary> {
    let root = thread.first()?;
    let r = read(thread)?;
    let end = r.moments.resolved_at.unwrap_or(now);
    let mut participants: Vec<Sender> = Vec::new();
    for n in thread {
        if !participants.iter().any(|p| p.user_id == n.sender.user_id && p.ai_tool == n.sender.ai_tool) {
            participants.push(n.sender.clone());
        }
    }
    Some(IncidentSummary {
        thread_id: root.thread_id.clone(),
        channel: root.channel.clone(),
        title: r.opener.title.clone(),
        priority: r.priority,
        status: r.status,
        owner: r.owner,
        reported_by: r.opener.sender.clone(),
        duration_seconds: seconds(r.moments.opened_at, end),
        moments: r.moments,
        timeline: thread.iter().map(entry).collect(),
        truncated,
        reopened: r.reopened,
        decisions: thread.iter().filter(|n| n.theme.as_deref() == Some(themes::DECISION)).map(entry).collect(),
        participants,
        tags: r.opener.tags.clone(),
    })
}

/// How many causes the statistics list.
const TOP_TAGS: usize = 10;

/// The statistics over incident threads (each oldest first), keeping those of `priorities`
/// (all when empty); `truncated` when the period held more than these.
pub fn stats(
    threads: &[Vec<Notification>],
    since: jiff::Timestamp,
    until: jiff::Timestamp,
    priorities: &[Priority],
    truncated: bool,
) -> IncidentStats {
    let mut records = Vec::new();
    let mut by_priority = PriorityCounts::default();
    let mut tags: BTreeMap<&str, u32> = BTreeMap::new();
    for thread in threads {
        let (Some(root), Some(r)) = (thread.first(), read(thread)) else { continue };
        let (moments, status, priority, opener) = (r.moments, r.status, r.priority, r.opener);
        if !priorities.is_empty() && !priorities.contains(&priority) {
            continue;
        }
        *match priority {
            Priority::Critical => &mut by_priority.critical,
            Priority::High => &mut by_priority.high,
            Priority::Medium => &mut by_priority.medium,
            Priority::Low => &mut by_priority.low,
        } += 1;
        for tag in opener.tags.iter().filter(|t| !is_priority_label(t)) {
            *tags.entry(tag.as_str()).or_default() += 1;
        }
        records.push(IncidentRecord {
            thread_id: root.thread_id.clone(),
            channel: root.channel.clone(),
            title: opener.title.clone(),
            priority,
            status,
            moments,
        });
    }
    let mean = |values: Vec<i64>| -> Option<i64> {
        let n = i64::try_from(values.len()).ok().filter(|n| *n > 0)?;
        Some(values.iter().sum::<i64>() / n)
    };
    let ttr: Vec<i64> = records.iter().filter_map(|r| r.moments.time_to_resolve_seconds).collect();
    let tta: Vec<i64> = records.iter().filter_map(|r| r.moments.time_to_acknowledge_seconds).collect();
    let mut top: Vec<TagCount> =
        tags.into_iter().map(|(tag, incidents)| TagCount { tag: tag.to_owned(), incidents }).collect();
    top.sort_by(|a, b| b.incidents.cmp(&a.incidents).then_with(|| a.tag.cmp(&b.tag)));
    top.truncate(TOP_TAGS);
    IncidentStats {
        since,
        until,
        incidents: u32::try_from(records.len()).unwrap_or(u32::MAX),
        resolved: u32::try_from(ttr.len()).unwrap_or(u32::MAX),
        by_priority,
        fastest_resolution_seconds: ttr.iter().min().copied(),
        slowest_resolution_seconds: ttr.iter().max().copied(),
        mtta_seconds: mean(tta),
        mttr_seconds: mean(ttr),
        top_tags: top,
        records,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::ids::{NotificationId, UserId};
    use mttrly_core::role::Role;
    use mttrly_core::{Source, tools::notify::Priority};

    use super::*;

    fn person(name: &str, user: &UserId, ai: &str) -> Sender {
        Sender {
            user_id: Some(user.clone()),
            name: name.into(),
            role: Some(Role::Operator),
            ai_tool: Some(ai.into()),
            via: Source::Mcp,
        }
    }

    fn at(minute: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_705_027_620 + minute * 60).expect("time")
    }

    fn post(minute: i64, sender: &Sender, theme: &str, priority: Priority, tags: &[&str]) -> Notification {
        Notification {
            notification_id: NotificationId::generate(),
            channel: "incidents".into(),
            thread_id: "incident-2024-01-12-001".into(),
            in_reply_to: None,
            title: format!("{theme} at {minute}"),
            body: String::new(),
            priority,
            theme: Some(theme.into()),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            server_id: None,
            sender: sender.clone(),
            redactions: 0,
            published_at: at(minute),
        }
    }

    /// The seed's night: 2:47 alert, 2:48 ack, 2:52 root cause, 2:53 approval, 2:55 mitigation,
    /// 2:59 resolved (posted at `high`).
    fn seed_night() -> (Vec<Notification>, Sender, Sender) {
        let (monitoring, sarah, tom) = (UserId::generate(), UserId::generate(), UserId::generate());
        let monitoring = person("Production Monitoring", &monitoring, "claude");
        let sarah = person("Sarah Chen", &sarah, "chatgpt");
        let tom = person("Tom Rodriguez", &tom, "claude");
        let thread = vec![
            post(0, &monitoring, "incident-alert", Priority::Critical, &["p0", "database", "production"]),
            post(1, &sarah, "incident-update", Priority::Critical, &["p0", "investigating"]),
            post(5, &sarah, "incident-update", Priority::Critical, &["p0", "root-cause-identified"]),
            post(6, &tom, "incident-decision", Priority::Critical, &["p0", "approved"]),
            post(8, &sarah, "incident-update", Priority::Critical, &["p0", "mitigating"]),
            post(12, &sarah, "incident-resolved", Priority::High, &["p0", "resolved"]),
        ];
        (thread, sarah, tom)
    }

    #[test]
    fn the_seeds_night_reads_as_the_seed_tells_it() {
        let (thread, sarah, tom) = seed_night();
        let s = summary(&thread, false, at(30)).expect("a summary");
        assert_eq!(s.status, IncidentStatus::Resolved);
        assert_eq!(s.priority, Priority::Critical, "a resolution posted at high does not lower a P0");
        assert_eq!(s.owner.as_ref().map(|o| o.name.as_str()), Some("Sarah Chen"));
        assert_eq!(s.reported_by.name, "Production Monitoring");
        assert_eq!(s.duration_seconds, 12 * 60);
        assert_eq!(s.moments.time_to_acknowledge_seconds, Some(60));
        assert_eq!(s.decisions.len(), 1);
        assert_eq!(s.decisions[0].sender, tom);
        assert_eq!(s.timeline.len(), 6);
        assert_eq!(s.participants.len(), 3);
        assert_eq!(s.participants[1], sarah);
    }

    #[test]
    fn an_open_incident_lasts_until_now_and_a_lone_reporter_acknowledges_by_updating() {
        let (thread, ..) = seed_night();
        let only_alert = &thread[..1];
        let s = summary(only_alert, false, at(7)).expect("a summary");
        assert_eq!((s.status, s.duration_seconds, s.owner.clone()), (IncidentStatus::Open, 7 * 60, None));
        let reporter = thread[0].sender.clone();
        let own = vec![thread[0].clone(), post(3, &reporter, "incident-update", Priority::Critical, &[])];
        let s = summary(&own, false, at(7)).expect("a summary");
        assert_eq!(s.status, IncidentStatus::Acknowledged);
        assert_eq!(s.moments.acknowledged_at, Some(at(3)));
    }

    #[test]
    fn chatter_before_the_report_moves_no_moment_and_a_new_report_reopens() {
        let (night, sarah, tom) = seed_night();
        let reporter = night[0].sender.clone();
        let mut chatter = post(-40, &tom, "question", Priority::Low, &["latency"]);
        chatter.theme = None;
        let mut thread = vec![chatter];
        thread.extend(night.iter().cloned());
        let s = summary(&thread, false, at(30)).expect("a summary");
        assert_eq!((s.moments.opened_at, s.reported_by.name.as_str()), (at(0), "Production Monitoring"));
        assert_eq!(s.tags, ["p0", "database", "production"]);
        assert_eq!(s.timeline.len(), 7, "the chatter is in the timeline");

        // It's back: reported again after the resolution, resolved again later.
        thread.push(post(20, &reporter, "incident-alert", Priority::Critical, &["p0"]));
        let s = summary(&thread, false, at(30)).expect("a summary");
        assert_eq!((s.status, s.reopened, s.moments.resolved_at), (IncidentStatus::Acknowledged, 1, None));
        assert_eq!(s.duration_seconds, 30 * 60, "open until now");
        thread.push(post(25, &sarah, "incident-resolved", Priority::High, &[]));
        let s = summary(&thread, false, at(30)).expect("a summary");
        assert_eq!((s.status, s.moments.time_to_resolve_seconds), (IncidentStatus::Resolved, Some(25 * 60)));

        // A reporter asking for help has not acknowledged anything.
        let lone = vec![night[0].clone(), post(2, &reporter, "incident-escalation", Priority::Critical, &[])];
        assert_eq!(summary(&lone, false, at(5)).expect("a summary").status, IncidentStatus::Open);
    }

    #[test]
    fn stats_count_by_priority_and_average_with_the_moments_used() {
        let (night, ..) = seed_night();
        let (reporter, other) = (night[0].sender.clone(), night[1].sender.clone());
        let second = vec![
            post(100, &reporter, "incident-alert", Priority::High, &["p1", "deploy"]),
            post(104, &other, "incident-update", Priority::High, &[]),
            post(128, &other, "incident-resolved", Priority::High, &[]),
        ];
        let third = vec![post(200, &reporter, "incident-alert", Priority::Critical, &["p0", "database"])];
        let threads = vec![night, second, third];
        let all = stats(&threads, at(-1), at(300), &[], false);
        assert_eq!((all.incidents, all.resolved), (3, 2));
        assert_eq!((all.by_priority.critical, all.by_priority.high), (2, 1));
        assert_eq!(all.mttr_seconds, Some(1200), "(12 + 28) / 2 minutes");
        assert_eq!(all.mtta_seconds, Some(150), "(1 + 4) / 2 minutes");
        assert_eq!((all.fastest_resolution_seconds, all.slowest_resolution_seconds), (Some(720), Some(1680)));
        assert_eq!(all.top_tags[0], TagCount { tag: "database".into(), incidents: 2 });
        assert!(all.top_tags.iter().all(|t| !is_priority_label(&t.tag)));
        assert_eq!(all.records[1].moments.resolved_at, Some(at(128)));
        let p0 = stats(&threads, at(-1), at(300), &[Priority::Critical], false);
        assert_eq!((p0.incidents, p0.mttr_seconds), (2, Some(720)));
    }
}
