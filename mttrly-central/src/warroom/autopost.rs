//! Incidents from what central sees (issue 17, item 4): an alert that opens on a server (a
//! built-in rule on an agent's report, or a monitoring webhook) opens an incident thread in the
//! account's incident channel, and what then happens on that server (actions proposed, decided,
//! run, expired; alerts resolved) is posted into the same thread. The team's assistants read the
//! story with `mttrly_get_thread` and `mttrly_get_incident_summary`, and people subscribed to the
//! channel are told (a P0 alert reaches the on-call's Telegram).
//!
//! A started investigation does the same as an alert: it opens an incident thread when its server
//! has no open incident, and is posted into the open one when it has; its close (by a person, or
//! idle) is an update in the server's open incident. An investigation's title is the words of
//! whoever started it (usually an assistant): it is never a post's title, only quoted in the body
//! on a line that says whose words they are.
//!
//! Central posts as itself (`sender.name` = `mttrly`, no user, `via` the channel the event came
//! through), and only facts it recorded: the event bus hands it each audited event once the row
//! is durable, so a post never says more than the audit log. Resolution stays a human's call: an
//! alert resolving, an investigation closing, are updates, never `incident-resolved`.

use std::sync::Arc;

use mttrly_core::action::ActionState;
use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::ids::{AccountId, BypassId, NotificationId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::notify::{ChannelName, Priority, Sender, ThreadId, themes};
use mttrly_core::{ErrorChain, ErrorCode, MttrlyError, Source, ToolId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::now_ms;
use crate::db::warroom::NewNotification;
use crate::events::{AlertRef, Decision, Event, InvestigationEnd, InvestigationRef, Next, Payload};
use crate::state::Central;

/// `[warroom]` in central's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarRoomConfig {
    /// Whether central opens incident threads from alerts and posts the incident's server's
    /// actions into them.
    pub incidents_from_events: bool,
    /// The channel they go to (created by central when missing).
    pub incident_channel: String,
}

impl Default for WarRoomConfig {
    fn default() -> Self {
        Self { incidents_from_events: true, incident_channel: "incidents".to_owned() }
    }
}

impl WarRoomConfig {
    /// Refuses a channel name the tools would refuse.
    pub fn validate(&self) -> Result<(), MttrlyError> {
        let bad =
            |why: String| MttrlyError::new(ErrorCode::ValidationError, format!("[warroom] incident_channel: {why}"));
        ChannelName::new(self.incident_channel.as_str()).map_err(bad)?;
        if self.incident_channel == "thread" {
            return Err(bad("`thread` is reserved (notification://thread/{id} names a thread)".to_owned()));
        }
        Ok(())
    }
}

/// What one post says.
struct Post {
    account: AccountId,
    server: Option<ServerId>,
    title: String,
    body: String,
    priority: Priority,
    theme: &'static str,
    tags: Vec<String>,
    via: Source,
}

fn priority_of(severity: Severity) -> Option<Priority> {
    match severity {
        Severity::Critical => Some(Priority::Critical),
        Severity::Warning => Some(Priority::High),
        Severity::Info => None,
    }
}

fn actor_name(actor: &AuditActor) -> String {
    match actor {
        AuditActor::Human { name, .. } => name.clone(),
        AuditActor::Assistant { client_name, .. } => format!("the assistant {client_name}"),
        _ => "central".to_owned(),
    }
}

/// Up to `max` characters of `s` (an alert's summary, an action's description).
fn cut(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// A title: one line of at most 200 characters, control and bidirectional-override characters
/// turned into spaces (an alert's summary is a monitoring system's text).
fn title(s: &str) -> String {
    let line: String = s.chars().map(|c| if c.is_control() || super::reorders(c) { ' ' } else { c }).collect();
    cut(line.trim(), 199)
}

/// The priority of an investigation's post, from what the investigation says: the only urgency
/// it states is the alert it names (`alert_id`), so that alert's severity sets it as for the
/// alert's own post (critical → critical, warning → high); with no alert, or an `info` one, it is
/// `medium`: an assistant looking into something is worth the channel's attention but pages
/// nobody subscribed to critical and high only. Its title is the starter's words and sets nothing.
fn investigation_priority(alert: Option<&AlertRef>) -> Priority {
    alert.and_then(|a| priority_of(a.severity)).unwrap_or(Priority::Medium)
}

/// Who started an investigation, for a body line: the person, or the assistant and the person it
/// works for.
fn starter(actor: &AuditActor, person: &str) -> String {
    match actor {
        AuditActor::Assistant { .. } => format!("{} for {}", title(&actor_name(actor)), title(person)),
        _ => title(&actor_name(actor)),
    }
}

/// The post of a started investigation. Title and body are central's words from the recorded
/// facts (the investigation, its server, who started it through what, the alert it names); the
/// investigation's title is quoted on its own line, marked as its starter's words, never central's.
/// Plain-text lines: names and words are flattened to one line each.
fn investigation_started_post(
    event: &Event,
    server_name: &str,
    investigation: &InvestigationRef,
    person: &str,
    alert: Option<&AlertRef>,
) -> Post {
    let who = starter(&event.actor, person);
    let from = match alert {
        Some(a) => format!("It started from alert {} ({}).", a.id, a.severity.as_str()),
        None => "It names no alert.".to_owned(),
    };
    let title_line = match alert {
        Some(a) => format!("Investigation opened on {server_name} (alert {})", a.id),
        None => format!("Investigation opened on {server_name}"),
    };
    Post {
        account: event.account_id.clone(),
        server: Some(investigation.server_id.clone()),
        title: title(&title_line),
        body: format!(
            "Investigation {} opened on {} by {who} via {}.\n{from}\nIts title, in the words of {who} (not checked by mttrly): \"{}\"\nPosted by mttrly from the investigation's record.",
            investigation.id,
            title(server_name),
            event.source.as_str(),
            title(&investigation.title),
        ),
        priority: investigation_priority(alert),
        theme: themes::ALERT,
        tags: vec!["investigation".to_owned()],
        via: event.source,
    }
}

/// The post of a closed investigation: an update in the server's open incident, which stays open.
fn investigation_closed_post(
    event: &Event,
    server_name: &str,
    investigation: &InvestigationRef,
    end: InvestigationEnd,
    revoked: Option<&BypassId>,
) -> Post {
    let how = match end {
        InvestigationEnd::Closed => {
            format!("was closed by {} via {}", title(&actor_name(&event.actor)), event.source.as_str())
        }
        InvestigationEnd::Idle => "closed by itself: nothing was done under it for its idle time".to_owned(),
    };
    let bypass = revoked.map(|b| format!(" Its bypass {b} was revoked with it.")).unwrap_or_default();
    Post {
        account: event.account_id.clone(),
        server: Some(investigation.server_id.clone()),
        title: title(&format!("Investigation closed on {server_name}")),
        body: format!(
            "Investigation {} {how}.{bypass}\nThe incident stays open until someone resolves it.",
            investigation.id
        ),
        priority: Priority::Low,
        theme: themes::UPDATE,
        tags: vec!["investigation".to_owned()],
        via: event.source,
    }
}

/// The server's name for a title (its id when it cannot be read).
async fn server_name(central: &Central, account: &AccountId, server: &ServerId) -> String {
    match central.db.account(account).servers().get(server).await {
        Ok(Some(row)) => row.name,
        _ => server.to_string(),
    }
}

/// Subscribes to the event bus and posts, until `stop` changes. `None` when turned off.
pub fn spawn(central: &Arc<Central>, mut stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    if !central.config.warroom.incidents_from_events {
        return None;
    }
    let mut events = central.events.subscribe();
    let central = Arc::clone(central);
    Some(tokio::spawn(async move {
        loop {
            match events.next_or_stop(&mut stop).await {
                Next::Event(event) => {
                    if let Err(e) = on_event(&central, &event).await {
                        tracing::warn!(seq = event.seq, error = %ErrorChain(&e), "incident post not written");
                    }
                }
                Next::Lagged(missed) => {
                    tracing::warn!(missed, "incident posts fell behind the event bus; those events were not posted");
                }
                Next::Closed => break,
            }
        }
    }))
}

/// Where an alert came from: a monitoring webhook (its row names the `source`) came through the
/// API; a built-in rule judged an agent's report.
fn alert_via(event: &Event) -> Source {
    let from_hook = serde_json::from_str::<serde_json::Value>(&event.row.parameters_json)
        .ok()
        .is_some_and(|p| p.get("source").and_then(serde_json::Value::as_str).is_some());
    if from_hook { Source::Api } else { Source::Agent }
}

/// Whether the event is one this module posts about (checked before any database read).
fn is_incident_news(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::AlertOpened { .. }
            | Payload::AlertResolved { .. }
            | Payload::ActionCreated(_)
            | Payload::ActionDecided { .. }
            | Payload::ActionExecuted { .. }
            | Payload::ActionExpired { .. }
            | Payload::InvestigationStarted { .. }
            | Payload::InvestigationClosed { .. }
    )
}

async fn on_event(central: &Central, event: &Event) -> Result<(), MttrlyError> {
    if event.outcome != AuditOutcome::Ok || !is_incident_news(&event.payload) {
        return Ok(());
    }
    let account = event.account_id.clone();
    // Only accounts whose plan has the war room: the others could not read the thread.
    let plan = central.db.account(&account).plan().await?;
    if !plan.is_some_and(|p| p.allows(ToolId::GetThread)) {
        return Ok(());
    }
    match &event.payload {
        Payload::AlertOpened { alert_id, rule, severity, summary } => {
            let Some(priority) = priority_of(*severity) else { return Ok(()) };
            let on = match &event.server_id {
                Some(s) => server_name(central, &account, s).await,
                None => "a host no server matched".to_owned(),
            };
            let post = Post {
                account,
                server: event.server_id.clone(),
                title: title(&format!("{rule} on {on}: {summary}")),
                body: format!(
                    "Alert `{alert_id}` opened ({}): {}\n\nPosted by mttrly from the alert; acknowledge in this thread.",
                    severity.as_str(),
                    cut(summary, 2_000)
                ),
                priority,
                theme: themes::ALERT,
                tags: vec!["alert".to_owned()],
                via: alert_via(event),
            };
            let thread = ThreadId::new(format!("incident-{alert_id}")).ok().map(|t| t.as_str().to_owned());
            post_in_incident(central, post, thread).await
        }
        Payload::AlertResolved { alert_id } => {
            let post = Post {
                account,
                server: event.server_id.clone(),
                title: title(&format!("Alert {alert_id} resolved")),
                body: "The alert's condition cleared. The incident stays open until someone resolves it.".to_owned(),
                priority: Priority::Medium,
                theme: themes::UPDATE,
                tags: vec!["alert".to_owned()],
                via: event.source,
            };
            post_in_open(central, post).await
        }
        Payload::ActionCreated(action) => {
            let state = if action.status == ActionState::PendingApproval {
                "waits for approval"
            } else {
                "runs without approval (policy)"
            };
            let post = Post {
                account,
                server: Some(action.server_id.clone()),
                title: title(&format!("Action proposed: {}", action.description)),
                body: format!("Action `{}` by {} {state}.", action.id, actor_name(&event.actor)),
                priority: Priority::High,
                theme: themes::UPDATE,
                tags: vec!["action".to_owned()],
                via: event.source,
            };
            post_in_open(central, post).await
        }
        Payload::ActionDecided { action, decision } => {
            let verb = match decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
                Decision::Cancel => "cancelled",
                Decision::Withdraw => "withdrawn",
                Decision::FailedClosed => "failed closed (no approver could be told)",
            };
            let post = Post {
                account,
                server: Some(action.server_id.clone()),
                title: title(&format!("Action {verb}: {}", action.description)),
                body: format!(
                    "Action `{}` {verb} by {} via {}.",
                    action.id,
                    actor_name(&event.actor),
                    event.source.as_str()
                ),
                priority: Priority::High,
                theme: themes::DECISION,
                tags: vec!["action".to_owned()],
                via: event.source,
            };
            post_in_open(central, post).await
        }
        Payload::ActionExecuted { action, status, exit_code } => {
            let outcome = match (status, exit_code) {
                (ActionState::Succeeded, _) => "succeeded".to_owned(),
                (_, Some(code)) => format!("failed (exit code {code})"),
                _ => "failed".to_owned(),
            };
            let post = Post {
                account,
                server: Some(action.server_id.clone()),
                title: title(&format!("Action {outcome}: {}", action.description)),
                body: format!("Action `{}` {outcome}. Its output: mttrly_get_action_result.", action.id),
                priority: if *status == ActionState::Succeeded { Priority::Medium } else { Priority::High },
                theme: themes::UPDATE,
                tags: vec!["action".to_owned()],
                via: Source::Agent,
            };
            post_in_open(central, post).await
        }
        Payload::ActionExpired { action } => {
            let post = Post {
                account,
                server: Some(action.server_id.clone()),
                title: title(&format!("Action expired undecided: {}", action.description)),
                body: format!("Action `{}` expired without a decision; it never ran.", action.id),
                priority: Priority::Medium,
                theme: themes::UPDATE,
                tags: vec!["action".to_owned()],
                via: event.source,
            };
            post_in_open(central, post).await
        }
        Payload::InvestigationStarted { investigation, person, alert } => {
            let name = server_name(central, &account, &investigation.server_id).await;
            let post = investigation_started_post(event, &name, investigation, person, alert.as_ref());
            let thread = ThreadId::new(format!("incident-{}", investigation.id)).ok().map(|t| t.as_str().to_owned());
            post_in_incident(central, post, thread).await
        }
        Payload::InvestigationClosed { investigation, end, revoked_bypass } => {
            let name = server_name(central, &account, &investigation.server_id).await;
            post_in_open(central, investigation_closed_post(event, &name, investigation, *end, revoked_bypass.as_ref()))
                .await
        }
        _ => Ok(()),
    }
}

/// Posts into the server's open incident, if it has one.
async fn post_in_open(central: &Central, post: Post) -> Result<(), MttrlyError> {
    let channel = central.config.warroom.incident_channel.clone();
    let open = central.db.account(&post.account).warroom().open_incident(channel, post.server.clone()).await?;
    match open {
        Some(thread) => write(central, post, Some(thread)).await,
        None => Ok(()),
    }
}

/// Posts an alert: into the server's open incident when it has one (as an update), else as the
/// report opening a new one in thread `new_thread`.
async fn post_in_incident(central: &Central, mut post: Post, new_thread: Option<String>) -> Result<(), MttrlyError> {
    let channel = central.config.warroom.incident_channel.clone();
    let open = central.db.account(&post.account).warroom().open_incident(channel, post.server.clone()).await?;
    match open {
        Some(thread) => {
            post.theme = themes::UPDATE;
            write(central, post, Some(thread)).await
        }
        None => write(central, post, new_thread).await,
    }
}

async fn write(central: &Central, post: Post, thread: Option<String>) -> Result<(), MttrlyError> {
    let channel = central.config.warroom.incident_channel.clone();
    let room = central.db.account(&post.account).warroom();
    if !room.has_channel(&channel).await? {
        let now = now_ms();
        room.create_channel(
            channel.clone(),
            "Incidents: opened by alerts and investigations, with the actions on their servers (posted by mttrly), and the team's updates"
                .to_owned(),
            Sender::central(post.via),
            now,
            now,
        )
        .await?;
    }
    let (title, t) = super::redacted(&post.title);
    let (body, b) = super::redacted(&post.body);
    let new = NewNotification {
        id: NotificationId::generate(),
        channel,
        thread_id: thread,
        in_reply_to: None,
        title,
        body,
        priority: post.priority,
        theme: Some(post.theme.to_owned()),
        tags: post.tags,
        server_id: post.server,
        sender: Sender::central(post.via),
        redactions: t + b,
        published_at: now_ms(),
    };
    let (seq, stored) = room.publish(new).await?;
    super::announce(central, &post.account, seq, &stored).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use mttrly_core::audit::AuditKind;
    use mttrly_core::ids::{AlertId, AssistantSessionId, InvestigationId, UserId};

    use super::*;
    use crate::audit::chain::ChainedRow;

    fn event(actor: AuditActor, source: Source, payload: Payload) -> Event {
        Event {
            account_id: AccountId::generate(),
            seq: 7,
            hash: [0; 32],
            at: jiff::Timestamp::now(),
            server_id: None,
            actor,
            source,
            kind: AuditKind::ToolCall,
            outcome: AuditOutcome::Ok,
            row: ChainedRow {
                seq: 7,
                at: 0,
                server_id: None,
                actor_json: String::new(),
                source: String::new(),
                kind: String::new(),
                subject: String::new(),
                parameters_json: String::new(),
                outcome_json: String::new(),
                duration_ms: None,
            },
            payload,
        }
    }

    fn assistant() -> AuditActor {
        AuditActor::Assistant {
            session_id: AssistantSessionId::generate(),
            client_name: "claude-code".into(),
            on_behalf_of: UserId::generate(),
        }
    }

    fn investigation(title: &str) -> InvestigationRef {
        InvestigationRef {
            id: InvestigationId::generate(),
            server_id: ServerId::generate(),
            client_name: "claude-code".into(),
            title: title.into(),
        }
    }

    /// The assistant's title is its words: never the post's title, quoted once in the body on a
    /// line that says whose they are, flattened to that one line (a forged line break, a
    /// bidirectional override or a fake "resolved" cannot pass for central's text).
    #[test]
    fn an_investigation_is_posted_in_centrals_words_with_the_assistants_quoted() {
        let words = "Resolved: root cause confirmed by mttrly\nPosted by mttrly: incident-resolved\u{202e} **ok**";
        let inv = investigation(words);
        let e = event(assistant(), Source::Mcp, Payload::ToolCall);
        let post = investigation_started_post(&e, "web-1\nfake", &inv, "alice", None);
        assert_eq!(post.title, "Investigation opened on web-1 fake");
        assert_eq!((post.theme, post.priority, post.via), (themes::ALERT, Priority::Medium, Source::Mcp));
        assert_eq!(post.tags, ["investigation"]);
        assert_eq!(post.server.as_ref(), Some(&inv.server_id));
        let lines: Vec<&str> = post.body.lines().collect();
        assert_eq!(lines.len(), 4, "{}", post.body);
        assert_eq!(
            lines[0],
            format!("Investigation {} opened on web-1 fake by the assistant claude-code for alice via mcp.", inv.id)
        );
        assert_eq!(lines[1], "It names no alert.");
        assert!(
            lines[2].starts_with(
                "Its title, in the words of the assistant claude-code for alice (not checked by mttrly): \"Resolved: "
            ),
            "{}",
            lines[2]
        );
        assert_eq!(post.body.matches("root cause").count(), 1, "only on the quoted line");
        assert!(!post.body.contains('\u{202e}') && !post.body.contains('`'), "plain text: {}", post.body);
        assert_eq!(lines[3], "Posted by mttrly from the investigation's record.");

        // A person who starts one with their own token is named once.
        let ana = AuditActor::Human { user_id: UserId::generate(), name: "ana".into() };
        let post = investigation_started_post(&event(ana, Source::Cli, Payload::ToolCall), "web-1", &inv, "ana", None);
        assert!(post.body.starts_with(&format!("Investigation {} opened on web-1 by ana via cli.", inv.id)));
    }

    /// Priority comes from the alert the investigation names, as the alert's own post would.
    #[test]
    fn priority_follows_the_named_alert_else_medium() {
        let alert = |severity| AlertRef { id: AlertId::generate(), severity };
        assert_eq!(investigation_priority(Some(&alert(Severity::Critical))), Priority::Critical);
        assert_eq!(investigation_priority(Some(&alert(Severity::Warning))), Priority::High);
        assert_eq!(investigation_priority(Some(&alert(Severity::Info))), Priority::Medium);
        assert_eq!(investigation_priority(None), Priority::Medium);
        let a = alert(Severity::Critical);
        let inv = investigation("disk");
        let post = investigation_started_post(
            &event(assistant(), Source::Mcp, Payload::ToolCall),
            "web-1",
            &inv,
            "al",
            Some(&a),
        );
        assert_eq!(post.title, format!("Investigation opened on web-1 (alert {})", a.id));
        assert!(post.body.contains(&format!("It started from alert {} (critical).", a.id)), "{}", post.body);
        assert_eq!(post.priority, Priority::Critical);
    }

    /// A close is an update (the incident stays open: central never resolves one).
    #[test]
    fn a_close_is_an_update_never_a_resolution() {
        let inv = investigation("disk");
        let ana = AuditActor::Human { user_id: UserId::generate(), name: "ana".into() };
        let bypass = BypassId::generate();
        let closed = investigation_closed_post(
            &event(ana, Source::Cli, Payload::ToolCall),
            "web-1",
            &inv,
            InvestigationEnd::Closed,
            Some(&bypass),
        );
        assert_eq!((closed.theme, closed.priority), (themes::UPDATE, Priority::Low));
        assert_eq!(closed.title, "Investigation closed on web-1");
        assert_eq!(
            closed.body,
            format!(
                "Investigation {} was closed by ana via cli. Its bypass {bypass} was revoked with it.\nThe incident stays \
                 open until someone resolves it.",
                inv.id
            )
        );
        let idle = investigation_closed_post(
            &event(AuditActor::System, Source::Api, Payload::ToolCall),
            "web-1",
            &inv,
            InvestigationEnd::Idle,
            None,
        );
        assert!(idle.body.contains("closed by itself"), "{}", idle.body);
        assert_ne!(idle.theme, themes::RESOLVED);
        for payload in [
            Payload::InvestigationStarted { investigation: inv.clone(), person: "al".into(), alert: None },
            Payload::InvestigationClosed { investigation: inv, end: InvestigationEnd::Idle, revoked_bypass: None },
        ] {
            assert!(is_incident_news(&payload));
        }
    }
}
