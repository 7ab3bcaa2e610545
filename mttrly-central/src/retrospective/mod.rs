//! The retrospective: a pure function of (timeline, latest verifier run, related knowledge,
//! template version) to Markdown and the same content as JSON. No I/O, no clock, no language
//! model: the same inputs, in any order, give the same bytes and so the same content hash.
//!
//! Sections are the union of Google's SRE and PagerDuty's postmortem templates. Every measure
//! names the two moments it spans (from the records, with their references) and says `n/a` when
//! one is missing, never 0. Definitions follow Datadog's: time to detect is (suspected) impact
//! start → detection, the others run from detection. What only people know (what users saw, what
//! went well or badly, follow-ups) is marked "to be filled by a human", never made up.
//!
//! Written from an incident thread, it also carries the war room's reading of the thread (status,
//! owner, moments, decisions: `warroom::incidents`) and each of the thread's posts as a timeline
//! item. A post is what its sender wrote, attributed to them (a person with their role and
//! assistant, or central): its title is shown as an inline code span and its body in a fenced
//! block, literally, never as central's words or as Markdown of the report; the measures stay
//! computed from central's records only.
//!
//! A thread may name several servers: the retrospective then covers each (`Inputs::server_id`
//! first, then `other_servers`), their records merged into one timeline where every item names
//! its server (a Server column, and `server_id` on each item and action of the report), each
//! server's verifier run shown on its own, and the servers the thread names but it does not cover
//! listed with the reason (`left_out`). A document of one server and nothing left out is laid out
//! exactly as before any of this, byte for byte (see [`TEMPLATE_VERSION`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use mttrly_core::audit::AuditActor;
use mttrly_core::ids::ServerId;
use mttrly_core::redactor;
use mttrly_core::tools::notify::{IncidentSummary, Notification, Sender, TimelineEntry, themes};
use mttrly_core::tools::timeline::{
    ActionTaken, CoveredServer, Impact, LeftOutReason, LeftOutServer, MAX_RETROSPECTIVE_SERVERS, Measure, Moment,
    OmittedItems, RelatedKnowledge, RetrospectiveReport, TimelineEvent, TimelineItem, VerifierState,
};
use sha2::{Digest, Sha256};

/// The template of a retrospective covering one server with nothing left out. A change to the
/// layout or the wording is a new version.
/// Version 2 added what a retrospective written from an incident thread shows (the thread line,
/// its posts on the timeline, the "Incident thread" section); a server's window reads as in 1.
///
/// Version 3 ([`SEVERAL_SERVERS_TEMPLATE_VERSION`]) is the layout of a thread naming several
/// servers. It is not this constant, because it changes nothing of a one-server document: the
/// number a document shows is the layout it uses, so a document of one server with nothing left
/// out still says 2 and keeps its bytes and content hash, and the postmortems stored from such
/// threads are reused on regeneration instead of rewritten for a layout they do not use.
/// [`template_version`] picks the number for a document.
pub const TEMPLATE_VERSION: u32 = 2;

/// Version 3: a retrospective covering several servers, or naming servers it left out. It adds
/// the "Servers" line and the "Servers left out" list, a Server column on the timeline and the
/// actions, the verifier run per server, server names on the measures' moments, and the servers
/// in the summary.
pub const SEVERAL_SERVERS_TEMPLATE_VERSION: u32 = 3;

/// The template version of a document covering `covered` servers and leaving out `left_out`:
/// [`TEMPLATE_VERSION`] when version 3 would lay it out as 2 does (one server, nothing left
/// out), else [`SEVERAL_SERVERS_TEMPLATE_VERSION`].
pub fn template_version(covered: usize, left_out: usize) -> u32 {
    if covered > 1 || left_out > 0 { SEVERAL_SERVERS_TEMPLATE_VERSION } else { TEMPLATE_VERSION }
}

/// The most left-out servers the Markdown lists by name (a thread holds up to 500 notifications,
/// each may name another server); the report's `servers_left_out` has them all.
pub const LEFT_OUT_SHOWN: usize = 20;

/// The most characters of one post's body the Markdown shows (the report's JSON has it whole).
pub const POST_BODY_SHOWN: usize = 4_000;

/// What a human fills in.
pub const TO_BE_FILLED: &str = "To be filled by a human.";

/// Everything a retrospective is written from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Its title.
    pub title: String,
    /// The server.
    pub server_id: ServerId,
    /// The server's name.
    pub server_name: String,
    /// The window's start (ms).
    pub window_from_ms: i64,
    /// The window's end (ms).
    pub window_to_ms: i64,
    /// The window's timeline items, in any order.
    pub timeline: Vec<TimelineItem>,
    /// Routine items of the window left out of `timeline`, if any.
    pub omitted: Option<OmittedItems>,
    /// An assistant's words for the incident (its title), kept labelled as its own.
    pub assistant_title: Option<String>,
    /// The latest verifier run, if any.
    pub verifier: Option<VerifierState>,
    /// Related knowledge, in any order.
    pub related: Vec<RelatedKnowledge>,
    /// The incident thread it is written from, as the war room reads it; `None` for a server's
    /// window.
    pub thread: Option<IncidentSummary>,
    /// The thread's posts within the window, in any order: each becomes a `thread_posted` item.
    pub posts: Vec<Notification>,
    /// The other servers it covers (an incident thread naming several), in the thread's order,
    /// each with its latest verifier run; empty for one server. `server_id`, `server_name` and
    /// `verifier` are the first. Their records are in `timeline`, each item naming its server.
    pub other_servers: Vec<CoveredServer>,
    /// Servers the thread names that it does not cover, in the thread's order, with the reason.
    pub left_out: Vec<LeftOutServer>,
    /// The template version to write ([`template_version`]).
    pub template_version: u32,
}

/// A written retrospective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The content as data.
    pub report: RetrospectiveReport,
    /// The Markdown (redacted).
    pub markdown: String,
    /// SHA-256 (hex) of the Markdown.
    pub content_sha256: String,
}

fn ts(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// "1h 02m 03s", "4m 05s", "12s", "250 ms".
pub fn duration_text(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// Who, for a reader.
pub fn actor_text(actor: Option<&AuditActor>) -> String {
    match actor {
        Some(AuditActor::Human { name, user_id }) => {
            if name.is_empty() {
                user_id.to_string()
            } else {
                name.clone()
            }
        }
        Some(AuditActor::Assistant { client_name, on_behalf_of, .. }) => {
            format!("assistant {client_name} for {on_behalf_of}")
        }
        Some(AuditActor::Agent { .. }) => "the server's agent".to_owned(),
        Some(AuditActor::System) => "central".to_owned(),
        None => "unknown".to_owned(),
    }
}

/// A thread post's sender, for a reader: a person with their role, the assistant that posted for
/// them and the channel; or central itself (no person). The two never read alike, whatever name a
/// person chose.
pub fn sender_text(sender: &Sender) -> String {
    if sender.user_id.is_none() {
        return format!("{} (central, via {})", sender.name, sender.via.as_str());
    }
    let mut text = sender.name.clone();
    if let Some(role) = sender.role {
        let _ = write!(text, " ({})", role.as_str());
    }
    if let Some(assistant) = &sender.ai_tool {
        let _ = write!(text, " with assistant {assistant}");
    }
    let _ = write!(text, " via {}", sender.via.as_str());
    text
}

/// The longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// `text` as one inline code span: shown literally, never read as Markdown (a link, emphasis or
/// HTML in someone's words stays text).
fn code_span(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    let pad = text.starts_with('`') || text.ends_with('`') || (text.starts_with(' ') && text.ends_with(' '));
    let space = if pad { " " } else { "" };
    format!("{fence}{space}{text}{space}{fence}")
}

/// `text` as a fenced block: shown literally, whatever fences or Markdown it holds.
fn fenced(text: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`').max(2) + 1);
    format!("{fence}text\n{text}\n{fence}\n")
}

/// Redacted again: text people and assistants wrote goes through the redactor wherever it is
/// shown, as every other text from outside does.
fn redacted(text: &str) -> String {
    redactor::redact(text).text.into_owned()
}

/// What central says of a post: that it was posted, and its kind when it is one of the seed's
/// incident themes. A free theme is the poster's own name for it and stays in `post`.
fn post_summary(n: &Notification) -> String {
    const KNOWN: [&str; 7] = [
        themes::ALERT,
        themes::UPDATE,
        themes::DECISION,
        themes::RESOLVED,
        themes::POSTMORTEM,
        themes::ESCALATION,
        themes::SECURITY,
    ];
    match n.theme.as_deref() {
        Some(theme) if KNOWN.contains(&theme) => format!("{theme} posted"),
        _ => "notification posted".to_owned(),
    }
}

/// A thread post as a timeline item: central's line says only that it was posted; the post (its
/// sender, title and body, redacted again) rides along as the sender's.
fn post_item(n: &Notification) -> TimelineItem {
    let mut post = n.clone();
    post.title = redacted(&post.title);
    post.body = redacted(&post.body);
    TimelineItem {
        at: n.published_at,
        source: TimelineEvent::ThreadPosted.source(),
        event: TimelineEvent::ThreadPosted,
        reference: n.notification_id.to_string(),
        summary: post_summary(n),
        actor: None,
        status: None,
        subject: None,
        finished_at: None,
        investigation_id: None,
        post: Some(post),
        server_id: None,
    }
}

/// The war room's reading of the thread, its people's words redacted again.
fn thread_reading(summary: &IncidentSummary) -> IncidentSummary {
    let entry = |e: &TimelineEntry| TimelineEntry { title: redacted(&e.title), ..e.clone() };
    IncidentSummary {
        title: redacted(&summary.title),
        timeline: summary.timeline.iter().map(entry).collect(),
        decisions: summary.decisions.iter().map(entry).collect(),
        ..summary.clone()
    }
}

/// A table cell: one line, no column breaks.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

fn moment(label: &str, item: &TimelineItem) -> Moment {
    Moment { label: label.to_owned(), at: item.at, reference: item.reference.clone() }
}

fn measure(name: &str, from: Option<Moment>, to: Option<Moment>) -> Measure {
    let duration_ms = match (&from, &to) {
        (Some(f), Some(t)) => Some(t.at.as_millisecond() - f.at.as_millisecond()),
        _ => None,
    };
    Measure { name: name.to_owned(), from, to, duration_ms }
}

fn is_person(actor: Option<&AuditActor>) -> bool {
    matches!(actor, Some(AuditActor::Human { .. } | AuditActor::Assistant { .. }))
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

fn measures(items: &[TimelineItem]) -> (Vec<Measure>, Option<i64>) {
    let detected = items.iter().find(|i| i.event == TimelineEvent::IncidentOpened);
    let det_ms = detected.map(|d| d.at.as_millisecond());
    let after = |i: &&TimelineItem| det_ms.is_some_and(|d| i.at.as_millisecond() >= d);
    let started = det_ms.and_then(|d| {
        items.iter().rev().find(|i| i.event == TimelineEvent::DeployStarted && i.at.as_millisecond() <= d)
    });
    let acknowledged = items.iter().filter(after).find(|i| {
        matches!(i.event, TimelineEvent::InvestigationOpened | TimelineEvent::ActionRequested)
            || (i.event == TimelineEvent::Audited && is_person(i.actor.as_ref()))
    });
    // Mitigated: the first fix that worked, an action that succeeded or a deploy that finished
    // (succeeded or rolled back), at the moment it finished.
    let mitigated = items
        .iter()
        .filter(after)
        .filter_map(|i| match i.event {
            TimelineEvent::ActionRequested if i.status.as_deref() == Some("succeeded") => i.finished_at.map(|at| {
                Moment { label: format!("action succeeded: {}", i.summary), at, reference: i.reference.clone() }
            }),
            TimelineEvent::DeployFinished if matches!(i.status.as_deref(), Some("succeeded" | "rolled_back")) => {
                Some(moment(&format!("deploy finished: {}", i.status.as_deref().unwrap_or_default()), i))
            }
            _ => None,
        })
        .min_by(|a, b| (a.at, &a.reference).cmp(&(b.at, &b.reference)));
    let opened: BTreeSet<&str> =
        items.iter().filter(|i| i.event == TimelineEvent::IncidentOpened).map(|i| i.reference.as_str()).collect();
    let resolved: BTreeSet<&str> =
        items.iter().filter(|i| i.event == TimelineEvent::IncidentResolved).map(|i| i.reference.as_str()).collect();
    let all_resolved = !opened.is_empty() && opened.is_subset(&resolved);
    let resolution =
        if all_resolved { items.iter().rev().find(|i| i.event == TimelineEvent::IncidentResolved) } else { None };
    let detection = detected.map(|d| moment("first alert opened", d));
    let alerting_ms = match (det_ms, resolution) {
        (Some(d), Some(r)) => Some(r.at.as_millisecond() - d),
        _ => None,
    };
    let list = vec![
        measure("time_to_detect", started.map(|s| moment("deploy started (suspected start)", s)), detection.clone()),
        measure("time_to_acknowledge", detection.clone(), acknowledged.map(|a| moment("first response", a))),
        measure("time_to_mitigate", detection.clone(), mitigated),
        measure("time_to_resolve", detection, resolution.map(|r| moment("last alert resolved", r))),
    ];
    (list, alerting_ms)
}

fn actions(items: &[TimelineItem]) -> Vec<ActionTaken> {
    items
        .iter()
        .filter(|i| i.event == TimelineEvent::ActionRequested)
        .map(|a| ActionTaken {
            action_id: a.reference.clone(),
            summary: a.summary.clone(),
            requested_by: actor_text(a.actor.as_ref()),
            decided_by: items
                .iter()
                // A decision's audit item reads "DECISION on ACTION" with the decision as status.
                .filter(|d| {
                    d.event == TimelineEvent::Audited
                        && d.subject.as_deref() == Some(a.reference.as_str())
                        && d.status.as_ref().is_some_and(|s| d.summary == format!("{s} on {}", a.reference))
                })
                .map(|d| format!("{} ({})", actor_text(d.actor.as_ref()), d.status.as_deref().unwrap_or("decision")))
                .collect(),
            status: a.status.clone().unwrap_or_default(),
            requested_at: a.at,
            finished_at: a.finished_at,
            server_id: a.server_id.clone(),
        })
        .collect()
}

fn impact(items: &[TimelineItem], alerting_ms: Option<i64>) -> Impact {
    let opened: Vec<&TimelineItem> = items.iter().filter(|i| i.event == TimelineEvent::IncidentOpened).collect();
    let resolved: BTreeSet<&str> =
        items.iter().filter(|i| i.event == TimelineEvent::IncidentResolved).map(|i| i.reference.as_str()).collect();
    let worst = opened
        .iter()
        .filter_map(|i| i.status.as_deref().and_then(|s| s.split(',').next()))
        .max_by_key(|s| (severity_rank(s), s.to_owned()))
        .map(str::to_owned);
    Impact {
        incidents: u32::try_from(opened.len()).unwrap_or(u32::MAX),
        worst_severity: worst,
        still_open: u32::try_from(opened.iter().filter(|i| !resolved.contains(i.reference.as_str())).count())
            .unwrap_or(u32::MAX),
        alerting_ms,
        user_impact: TO_BE_FILLED.to_owned(),
    }
}

/// The covered servers' names by id: how an item's server is shown.
struct Names<'a>(Vec<(&'a ServerId, &'a str)>);

impl<'a> Names<'a> {
    fn of(servers: &'a [CoveredServer]) -> Self {
        Self(servers.iter().map(|s| (&s.server_id, s.server_name.as_str())).collect())
    }

    /// The name of `server`, `—` for an item of no server (a thread post).
    fn of_item(&self, server: Option<&ServerId>) -> &'a str {
        server.and_then(|id| self.0.iter().find(|(s, _)| *s == id)).map_or("—", |(_, name)| name)
    }
}

/// With several servers, a measure's moments say on which server they happened (a moment whose
/// record names no server keeps its label).
fn label_servers(measures: &mut [Measure], items: &[TimelineItem], names: &Names<'_>) {
    let server_of = |reference: &str| {
        items.iter().find(|i| i.reference == reference && i.server_id.is_some()).map(|i| i.server_id.as_ref())
    };
    for m in measures {
        for moment in [m.from.as_mut(), m.to.as_mut()].into_iter().flatten() {
            if let Some(server) = server_of(&moment.reference) {
                let _ = write!(moment.label, " on {}", names.of_item(server));
            }
        }
    }
}

fn summary(
    inputs: &Inputs,
    servers: &[CoveredServer],
    items: &[TimelineItem],
    actions: &[ActionTaken],
    impact: &Impact,
) -> String {
    let several = servers.len() > 1;
    let names = Names::of(servers);
    let on = if several {
        servers.iter().map(|s| s.server_name.as_str()).collect::<Vec<_>>().join(", ")
    } else {
        inputs.server_name.clone()
    };
    let mut text = format!(
        "{} alert(s) on {} between {} and {}",
        impact.incidents,
        on,
        ts(inputs.window_from_ms),
        ts(inputs.window_to_ms)
    );
    if let Some(first) = items.iter().find(|i| i.event == TimelineEvent::IncidentOpened) {
        let _ = write!(text, "; the first: {}", first.summary);
        if several {
            let _ = write!(text, " (on {})", names.of_item(first.server_id.as_ref()));
        }
    }
    let succeeded = actions.iter().filter(|a| a.status == "succeeded").count();
    let _ = write!(text, ". {} action(s) requested, {succeeded} succeeded", actions.len());
    if impact.still_open > 0 {
        let _ = write!(text, "; {} alert(s) still open", impact.still_open);
    }
    if several {
        let verdicts: Vec<String> = servers
            .iter()
            .map(|s| format!("{} {}", s.server_name, s.verifier.as_ref().map_or("no run", |v| v.verdict.as_str())))
            .collect();
        let _ = write!(text, ". Latest deploy verifier verdict per server: {}.", verdicts.join(", "));
    } else {
        match &inputs.verifier {
            Some(v) => {
                let _ = write!(text, ". Latest deploy verifier verdict: {}.", v.verdict);
            }
            None => text.push_str(". No deploy verifier run."),
        }
    }
    if !inputs.left_out.is_empty() {
        let _ = write!(
            text,
            " The thread names {} more server(s), not covered (listed under \"Servers left out\").",
            inputs.left_out.len()
        );
    }
    if let Some(thread) = &inputs.thread {
        let posts = items.iter().filter(|i| i.event == TimelineEvent::ThreadPosted).count();
        let _ = write!(
            text,
            " Incident thread {}: {}, {posts} post(s) in the window.",
            code_span(&thread.thread_id),
            status_text(thread)
        );
    }
    text
}

fn status_text(thread: &IncidentSummary) -> &'static str {
    match thread.status {
        mttrly_core::tools::notify::IncidentStatus::Open => "open",
        mttrly_core::tools::notify::IncidentStatus::Acknowledged => "acknowledged",
        mttrly_core::tools::notify::IncidentStatus::Resolved => "resolved",
    }
}

/// Writes the retrospective. Pure: see the module's doc.
pub fn write(inputs: &Inputs) -> Written {
    let first = CoveredServer {
        server_id: inputs.server_id.clone(),
        server_name: inputs.server_name.clone(),
        verifier: inputs.verifier.clone(),
    };
    let mut servers = vec![first];
    for other in &inputs.other_servers {
        if !servers.iter().any(|s| s.server_id == other.server_id) {
            servers.push(other.clone());
        }
    }
    let mut items = inputs.timeline.clone();
    items.extend(inputs.posts.iter().map(post_item));
    items.sort_by_key(TimelineItem::key);
    items.dedup_by(|a, b| a.key() == b.key());
    let mut related = inputs.related.clone();
    related.sort_by(|a, b| a.knowledge_id.cmp(&b.knowledge_id));
    related.dedup_by(|a, b| a.knowledge_id == b.knowledge_id);
    let (mut measures, alerting_ms) = measures(&items);
    if servers.len() > 1 {
        label_servers(&mut measures, &items, &Names::of(&servers));
    }
    let actions = actions(&items);
    let impact = impact(&items, alerting_ms);
    let summary = summary(inputs, &servers, &items, &actions, &impact);
    let report = RetrospectiveReport {
        template_version: inputs.template_version,
        title: inputs.title.clone(),
        server_id: inputs.server_id.clone(),
        server_name: inputs.server_name.clone(),
        window_from: ts(inputs.window_from_ms),
        window_to: ts(inputs.window_to_ms),
        summary,
        impact,
        measures,
        actions,
        verifier: inputs.verifier.clone(),
        related,
        timeline: items,
        omitted: inputs.omitted.clone(),
        assistant_title: inputs.assistant_title.clone(),
        thread: inputs.thread.as_ref().map(thread_reading),
        went_well: TO_BE_FILLED.to_owned(),
        went_badly: TO_BE_FILLED.to_owned(),
        follow_ups: TO_BE_FILLED.to_owned(),
        servers,
        servers_left_out: inputs.left_out.clone(),
    };
    let markdown = redactor::redact(&markdown(&report)).text.into_owned();
    let content_sha256 = hex::encode(Sha256::digest(markdown.as_bytes()));
    Written { report, markdown, content_sha256 }
}

fn moment_text(m: Option<&Moment>) -> String {
    m.map_or_else(|| "n/a".to_owned(), |m| format!("{} — `{}` at {}", cell(&m.label), cell(&m.reference), m.at))
}

/// "at (after the report)" for a moment of the thread, `n/a` when it has not come.
fn thread_moment(at: Option<jiff::Timestamp>, seconds: Option<i64>) -> String {
    match (at, seconds) {
        (Some(at), Some(s)) => format!("{at} ({} after the report)", duration_text(s.saturating_mul(1000))),
        (Some(at), None) => at.to_string(),
        _ => "n/a".to_owned(),
    }
}

/// The "Incident thread" section: the war room's reading, then each post as its sender wrote it.
fn thread_section(md: &mut String, thread: &IncidentSummary, timeline: &[TimelineItem]) {
    let _ = writeln!(
        md,
        "## Incident thread
"
    );
    let _ = writeln!(
        md,
        "Thread {} in channel {}, read by the war room's incident rules (as mttrly_get_incident_summary reads it).
",
        code_span(&thread.thread_id),
        code_span(&thread.channel)
    );
    let m = &thread.moments;
    let _ = writeln!(
        md,
        "- Status: {}; priority: {}; reopened: {} time(s)",
        status_text(thread),
        thread.priority.as_str(),
        thread.reopened
    );
    let _ = writeln!(md, "- Reported by: {} at {}", cell(&sender_text(&thread.reported_by)), m.opened_at);
    let _ = writeln!(
        md,
        "- Acknowledged: {}{}",
        thread_moment(m.acknowledged_at, m.time_to_acknowledge_seconds),
        thread.owner.as_ref().map_or_else(String::new, |o| format!(", owner {}", cell(&sender_text(o))))
    );
    let _ = writeln!(md, "- Resolved: {}", thread_moment(m.resolved_at, m.time_to_resolve_seconds));
    let _ = writeln!(md, "- Decisions posted: {}", thread.decisions.len());
    if thread.truncated {
        let _ = writeln!(md, "- Only the thread's first notifications were read (it holds more).");
    }
    let _ = writeln!(
        md,
        "
### Posts
"
    );
    let _ = writeln!(
        md,
        "_Each post as its sender wrote it (redacted), not checked by mttrly._
"
    );
    let posts: Vec<&Notification> = timeline.iter().filter_map(|t| t.post.as_ref()).collect();
    if posts.is_empty() {
        let _ = writeln!(
            md,
            "None in the window.
"
        );
        return;
    }
    for post in posts {
        let _ = writeln!(
            md,
            "**{}** · {} · {} · {} (`{}`)
",
            post.published_at,
            cell(&sender_text(&post.sender)),
            post.theme.as_deref().map_or_else(|| "no theme".to_owned(), code_span),
            post.priority.as_str(),
            post.notification_id
        );
        let mut text = post.title.clone();
        if !post.body.is_empty() {
            let shown: String = post.body.chars().take(POST_BODY_SHOWN).collect();
            text.push_str("\n\n");
            text.push_str(&shown);
        }
        md.push_str(&fenced(&text));
        let rest = post.body.chars().count().saturating_sub(POST_BODY_SHOWN);
        if rest > 0 {
            let _ = writeln!(
                md,
                "\n_{rest} more character(s) of this post are not shown here: mttrly_get_thread has it whole._"
            );
        }
        md.push('\n');
    }
}

/// Why a server is left out, for a reader.
fn left_out_text(reason: LeftOutReason) -> String {
    match reason {
        LeftOutReason::NotChosen => "server_id chose another of the thread's servers (leave server_id out to cover \
                                     them all)"
            .to_owned(),
        LeftOutReason::OverLimit => format!(
            "the thread names more servers than one retrospective covers ({MAX_RETROSPECTIVE_SERVERS}, the first \
             named); write it up with its server_id"
        ),
        LeftOutReason::NotFound => {
            "not a server of this account (decommissioned, or never this account's): none of its records were read"
                .to_owned()
        }
    }
}

/// The "Servers left out" list of the header: each by name when it is the account's, else by the
/// id the thread carries, at most [`LEFT_OUT_SHOWN`].
fn left_out_list(md: &mut String, left_out: &[LeftOutServer]) {
    let _ = writeln!(md, "- **Servers left out** (named by the incident thread, not covered):");
    for l in left_out.iter().take(LEFT_OUT_SHOWN) {
        let who = l
            .server_name
            .as_ref()
            .map_or_else(|| format!("`{}`", l.server_id), |name| format!("{} (`{}`)", cell(name), l.server_id));
        let _ = writeln!(md, "  - {who}: {}", left_out_text(l.reason));
    }
    let rest = left_out.len().saturating_sub(LEFT_OUT_SHOWN);
    if rest > 0 {
        let _ = writeln!(md, "  - and {rest} more (the report's `servers_left_out` lists them all)");
    }
}

/// One server's verifier line.
fn verifier_text(v: Option<&VerifierState>) -> String {
    match v {
        Some(v) => format!(
            "Latest verifier run `{}`{}: **{}** at {}.",
            cell(&v.verification_id),
            v.deploy_id.as_ref().map_or_else(String::new, |d| format!(" on deploy `{}`", cell(d))),
            cell(&v.verdict),
            v.checked_at
        ),
        None => "n/a: no verifier run on this server before the window's end.".to_owned(),
    }
}

/// The Markdown of `report`.
fn markdown(r: &RetrospectiveReport) -> String {
    let several = r.servers.len() > 1;
    let names = Names::of(&r.servers);
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", cell(&r.title));
    let _ = writeln!(
        md,
        "_Retrospective template v{}, written by mttrly from {}{} (no language model). \
         Sections marked \"{TO_BE_FILLED}\" are for people to write._\n",
        r.template_version,
        if several { format!("the records of its {} servers", r.servers.len()) } else { "the server's records".into() },
        if r.thread.is_some() {
            " and its incident thread, whose posts are quoted as their senders wrote them"
        } else {
            ""
        }
    );
    if several {
        let list: Vec<String> =
            r.servers.iter().map(|s| format!("{} (`{}`)", cell(&s.server_name), s.server_id)).collect();
        let _ = writeln!(md, "- **Servers:** {}", list.join(", "));
    } else {
        let _ = writeln!(md, "- **Server:** {} (`{}`)", cell(&r.server_name), r.server_id);
    }
    if !r.servers_left_out.is_empty() {
        left_out_list(&mut md, &r.servers_left_out);
    }
    let _ = writeln!(md, "- **Window:** {} → {}", r.window_from, r.window_to);
    if let Some(thread) = &r.thread {
        let _ = writeln!(
            md,
            "- **Incident thread:** {} in channel {}",
            code_span(&thread.thread_id),
            code_span(&thread.channel)
        );
    }
    if let Some(words) = &r.assistant_title {
        let _ = writeln!(md, "- **The assistant's title** (its words, not checked by mttrly): {}", cell(words));
    }
    let _ = writeln!(md, "- **Status:** draft\n");
    let _ = writeln!(md, "## Summary\n\n{}\n", r.summary);
    let _ = writeln!(md, "## Impact\n");
    let i = &r.impact;
    let _ = writeln!(
        md,
        "- Alerts: {} (worst severity: {}); still open: {}",
        i.incidents,
        i.worst_severity.as_deref().unwrap_or("n/a"),
        i.still_open
    );
    let _ = writeln!(md, "- Alerting time: {}", i.alerting_ms.map_or_else(|| "n/a".to_owned(), duration_text));
    let _ = writeln!(md, "- What users saw: {}\n", i.user_impact);
    let _ = writeln!(md, "## Detection, acknowledgement, mitigation, resolution\n");
    let _ = writeln!(md, "| Measure | From | To | Duration |\n|---|---|---|---|");
    for m in &r.measures {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            m.name,
            moment_text(m.from.as_ref()),
            moment_text(m.to.as_ref()),
            m.duration_ms.map_or_else(|| "n/a".to_owned(), duration_text)
        );
    }
    let _ = writeln!(md, "\n## Actions taken\n");
    if r.actions.is_empty() {
        let _ = writeln!(md, "None recorded.\n");
    } else {
        let (server_head, server_rule) = if several { ("Server | ", "---|") } else { ("", "") };
        let _ =
            writeln!(md, "| Action | {server_head}What | Requested by | Decided by | Status | Requested | Finished |");
        let _ = writeln!(md, "|---|{server_rule}---|---|---|---|---|---|");
        for a in &r.actions {
            let server =
                if several { format!("{} | ", cell(names.of_item(a.server_id.as_ref()))) } else { String::new() };
            let _ = writeln!(
                md,
                "| `{}` | {server}{} | {} | {} | {} | {} | {} |",
                a.action_id,
                cell(&a.summary),
                cell(&a.requested_by),
                if a.decided_by.is_empty() { "—".to_owned() } else { cell(&a.decided_by.join(", ")) },
                a.status,
                a.requested_at,
                a.finished_at.map_or_else(|| "n/a".to_owned(), |t| t.to_string())
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Deploy verification\n");
    if several {
        for s in &r.servers {
            let _ =
                writeln!(md, "- {} (`{}`): {}", cell(&s.server_name), s.server_id, verifier_text(s.verifier.as_ref()));
        }
        md.push('\n');
    } else {
        let _ = writeln!(md, "{}\n", verifier_text(r.verifier.as_ref()));
    }
    let _ = writeln!(md, "## Related knowledge\n");
    if r.related.is_empty() {
        let _ = writeln!(md, "None found.\n");
    } else {
        for k in &r.related {
            let _ = writeln!(md, "- `{}` ({}): {}", k.knowledge_id, k.kind.as_str(), cell(&k.title));
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Timeline\n");
    if let Some(o) = &r.omitted {
        let _ = writeln!(
            md,
            "_{}{} routine item(s) between {} and {} are summarised here, not listed: the window's first and last \
             items are listed, and every alert, deploy, investigation, action, decision, failure and person's act._\n",
            if o.at_least { "At least " } else { "" },
            o.count,
            o.from,
            o.to
        );
    }
    if r.timeline.is_empty() {
        let _ = writeln!(md, "No records in the window.\n");
    } else {
        if several {
            let _ =
                writeln!(md, "| Time (UTC) | Server | Source | What | Who | Reference |\n|---|---|---|---|---|---|");
        } else {
            let _ = writeln!(md, "| Time (UTC) | Source | What | Who | Reference |\n|---|---|---|---|---|");
        }
        for t in &r.timeline {
            let (what, who) = match &t.post {
                Some(post) => (format!("{}: {}", t.summary, code_span(&post.title)), sender_text(&post.sender)),
                None if t.actor.is_some() => (t.summary.clone(), actor_text(t.actor.as_ref())),
                None => (t.summary.clone(), "—".to_owned()),
            };
            let server =
                if several { format!("{} | ", cell(names.of_item(t.server_id.as_ref()))) } else { String::new() };
            let _ = writeln!(
                md,
                "| {} | {server}{} | {} | {} | `{}` |",
                t.at,
                serde_json::to_value(t.source).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                cell(&what),
                cell(&who),
                cell(&t.reference)
            );
        }
        md.push('\n');
    }
    if let Some(thread) = &r.thread {
        thread_section(&mut md, thread, &r.timeline);
    }
    let _ = writeln!(md, "## What went well\n\n{}\n", r.went_well);
    let _ = writeln!(md, "## What went badly\n\n{}\n", r.went_badly);
    let _ = writeln!(md, "## Follow-ups\n\n{}", r.follow_ups);
    md
}

#[cfg(test)]
mod tests;
