//! Incidents from what central sees (issue 17, item 4): an alert that opens on a server (a
//! built-in rule on an agent's report, or a monitoring webhook) opens an incident thread in the
//! account's incident channel, and what then happens on that server (actions proposed, decided,
//! run, expired; alerts resolved) is posted into the same thread. The team's assistants read the
//! story with `mttrly_get_thread` and `mttrly_get_incident_summary`, and people subscribed to the
//! channel are told (a P0 alert reaches the on-call's Telegram).
//!
//! Central posts as itself (`sender.name` = `mttrly`, no user, `via` the channel the event came
//! through), and only facts it recorded: the event bus hands it each audited event once the row
//! is durable, so a post never says more than the audit log. Resolution stays a human's call: an
//! alert resolving is an update, never `incident-resolved`.

use std::sync::Arc;

use mttrly_core::action::ActionState;
use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::ids::{AccountId, NotificationId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::notify::{ChannelName, Priority, Sender, ThreadId, themes};
use mttrly_core::{ErrorChain, ErrorCode, MttrlyError, Source, ToolId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::now_ms;
use crate::db::warroom::NewNotification;
use crate::events::{Decision, Event, Next, Payload};
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
            "Incidents: opened by alerts, with the actions on their servers (posted by mttrly), and the team's updates"
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
