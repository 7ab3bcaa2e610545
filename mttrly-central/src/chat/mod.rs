//! Approvals in chat: the right humans are told where they linked themselves, decide there, and
//! see the outcome in the same message.
//!
//! The shape, provider by provider the same:
//! - [`ChatChannel`] is what a provider (Telegram, Slack) implements: post an
//!   [`ApprovalMessage`] to a person, and edit it later. Receiving (a bot's updates, an
//!   interaction endpoint) is the provider's own module; whatever it receives comes back here.
//! - [`Chat`] routes: for each action that needs a decision it finds the people who could
//!   approve it through that provider right now (the approval rule's own check, for each living
//!   user), posts to every one of them who linked an account, and records each message with the
//!   content hash it showed ([`Chat::announce`], called with the webhooks by
//!   `notify::Prompts`, so the fail-closed decision counts chat deliveries). Follow-ups
//!   ([`Chat::spawn_followups`], an event-bus subscriber) edit every message of an action when it
//!   is decided, runs, or expires.
//! - [`links`] turns a single-use code sent to the bot into a link (one chat account ↔ one
//!   person); [`decide`] turns a tap into a decision by that person, bound to the message's hash.
//! - [`bypass`]: the same for an investigation bypass an assistant asks for (issue 15): the
//!   people who may grant it are asked, Grant takes a fresh TOTP code, Deny refuses it; the
//!   message is a typed kind of the same record ([`crate::db::chat::Subject`]), decided by the
//!   same tap path.
//!
//! A chat service is outside this machine: no request to it ever runs on a runtime worker with a
//! lock held, and each has its own timeout, so a dead service delays nothing but its own messages.

pub mod bypass;
pub mod decide;
pub mod links;
pub mod message;
pub mod notice;
pub mod slack;
pub mod telegram;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::ActionState;
use mttrly_core::approval::config::ApprovalPolicy;
use mttrly_core::approval::{ApprovalRule, Decider, SecondFactor, check_approval};
use mttrly_core::audit::AuditOutcome;
use mttrly_core::ids::{AccountId, ActionId, UserId};
use mttrly_core::tools::actions::Decision as RecordedDecision;
use mttrly_core::{ChatProvider, ErrorChain, Principal, Source};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use message::{ApprovalMessage, Status};

use crate::db::Db;
use crate::db::accounts::User;
use crate::db::actions::ActionRow;
pub use crate::db::chat::{Posted, Recipient};
use crate::events::{Bus, Decision, Next, Payload};
use crate::notify::{ApprovalPrompt, DeliveryError};

/// A boxed future a channel returns (object-safe, `'static`: it owns what it needs).
pub type ChannelFuture<T> = Pin<Box<dyn Future<Output = Result<T, DeliveryError>> + Send + 'static>>;

/// A chat service approval messages go out through.
pub trait ChatChannel: Send + Sync + 'static {
    /// Which service.
    fn provider(&self) -> ChatProvider;
    /// Posts `message` to `to` (their private chat with the bot or app); the message carries
    /// yes / no controls while [`message::Card::decidable`] (yes only while
    /// [`message::Card::approvable`]). Returns where it landed.
    fn post(&self, to: Recipient, message: message::Shared) -> ChannelFuture<Posted>;
    /// Replaces the message at `posted` with `message` (a decided message loses its controls).
    fn edit(&self, posted: Posted, message: message::Shared) -> ChannelFuture<()>;
    /// Posts a war-room notification to `to` (a person subscribed to its channel): plain text,
    /// no controls.
    fn notify(&self, to: Recipient, notice: notice::Notice) -> ChannelFuture<()>;
}

/// What one announcement reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    /// Messages posted to eligible approvers.
    pub delivered: usize,
    /// What failed, one line each (`telegram to alice: …`), for the fail-closed error and logs.
    pub failures: Vec<String>,
    /// Eligible approvers found (linked or not).
    pub eligible: usize,
}

/// The chat router: the configured channels and what routing needs to pick the people.
pub struct Chat {
    channels: Vec<Arc<dyn ChatChannel>>,
    db: Db,
    approvals: ApprovalPolicy,
    decision_channels: Vec<Source>,
    /// Central's public HTTP address: messages link to the action's dashboard page.
    site_url: String,
}

/// How long a follow-up edit may take before it is given up (the message keeps its last state).
const EDIT_TIMEOUT: Duration = Duration::from_secs(10);

impl Chat {
    /// A router over `channels`, judging eligibility with `approvals` among `decision_channels`
    /// (every human channel this central offers).
    pub fn new(
        channels: Vec<Arc<dyn ChatChannel>>,
        db: Db,
        approvals: ApprovalPolicy,
        decision_channels: Vec<Source>,
        site_url: String,
    ) -> Arc<Self> {
        Arc::new(Self { channels, db, approvals, decision_channels, site_url })
    }

    /// Whether no chat channel is configured.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The configured channel for `provider`.
    pub fn channel(&self, provider: ChatProvider) -> Option<&Arc<dyn ChatChannel>> {
        self.channels.iter().find(|c| c.provider() == provider)
    }

    /// The people of `action`'s account who could approve it through `provider` now: the
    /// approval rule's own check ([`check_approval`]) run for each living user, as if they
    /// tapped Approve. The second factor is asked for at the tap, not here.
    fn eligible(&self, action: &ActionRow, rule: &ApprovalRule, provider: ChatProvider, users: &[User]) -> Vec<UserId> {
        users
            .iter()
            .filter(|user| {
                let principal = Principal::Human { user_id: user.id.clone(), name: user.name.clone() };
                let decider = Decider {
                    principal: &principal,
                    is_admin: user.role == mttrly_core::Role::Admin,
                    may_decide: user.role.may_decide(),
                    token_may_decide: true,
                    channel: provider.source(),
                    existing_channels: &self.decision_channels,
                };
                check_approval(rule, &action.requested_by, &decider, &[]).is_ok()
            })
            .map(|user| user.id.clone())
            .collect()
    }

    /// The message for `action` in `status`, naming the requester's human from `users` (the
    /// account's living users, read once by the caller).
    fn message(&self, action: &ActionRow, rule: &ApprovalRule, status: Status, users: &[User]) -> ApprovalMessage {
        let (requester_human, requester_assistant) = requester(&action.requested_by, users);
        ApprovalMessage {
            prompt: ApprovalPrompt::pending(action),
            requester_human,
            requester_assistant,
            second_factor: rule.second_factor == SecondFactor::Totp,
            output: match status {
                Status::Succeeded { .. } | Status::Failed { .. } => {
                    action.result.as_ref().and_then(|r| message::output_tail(&r.output))
                }
                _ => None,
            },
            status,
            // Only where the dashboard can decide this action: the rule's channels, among the ones
            // central offers.
            page: rule
                .usable_channels(&self.decision_channels)
                .contains(&Source::Dashboard)
                .then(|| format!("{}{}", self.site_url, crate::dashboard::action_path(&action.id))),
        }
    }

    /// Tells every eligible approver with a linked account, on every channel, that `action`
    /// waits for them; records each message sent.
    pub async fn announce(&self, action: &ActionRow) -> Announced {
        // One read of the account's people and one rule serve every channel and the message.
        let users = match self.db.account(&action.account_id).users().list().await {
            Ok(users) => users,
            Err(e) => return Announced { failures: vec![format!("chat: {}", ErrorChain(&e))], ..Announced::default() },
        };
        let rule = crate::actions::rule_with(&self.approvals, action);
        let message = self.message(action, &rule, Status::of(action), &users);
        let subject = crate::db::chat::Subject::Action(action.id.clone());
        self.deliver(&action.account_id, &subject, &action.content_sha256, Arc::new(message), |provider| {
            self.eligible(action, &rule, provider, &users)
        })
        .await
    }

    /// Posts `message` about `subject` to the people `eligible` names for each channel (those
    /// who linked an account there), and records each message sent with the `content_sha256` it
    /// showed, so a tap on it is bound to that content and that person.
    async fn deliver(
        &self,
        account: &AccountId,
        subject: &crate::db::chat::Subject,
        content_sha256: &str,
        message: message::Shared,
        eligible: impl Fn(ChatProvider) -> Vec<UserId>,
    ) -> Announced {
        let mut announced = Announced::default();
        let approvable = message.approvable();
        let mut sends = Vec::new();
        for channel in &self.channels {
            let provider = channel.provider();
            let eligible = eligible(provider);
            announced.eligible = announced.eligible.max(eligible.len());
            let recipients = self.db.account(account).chat().recipients(provider, eligible).await;
            let recipients = match recipients {
                Ok(r) => r,
                Err(e) => {
                    announced.failures.push(format!("{provider}: {}", ErrorChain(&e)));
                    continue;
                }
            };
            if recipients.is_empty() {
                announced.failures.push(format!("{provider}: no eligible approver has linked a {provider} account"));
            }
            for to in recipients {
                let send = channel.post(to.clone(), Arc::clone(&message));
                sends.push(async move { (provider, to, send.await) });
            }
        }
        let sent_at = crate::db::now_ms();
        for (provider, to, result) in futures_join_all(sends).await {
            match result {
                Ok(posted) => {
                    let chat = self.db.account(account).chat();
                    match chat
                        .record_message(provider, posted, subject, &to.user_id, content_sha256, approvable, sent_at)
                        .await
                    {
                        Ok(()) => announced.delivered += 1,
                        Err(e) => {
                            announced.failures.push(format!("{provider} to {}: {}", to.user_name, ErrorChain(&e)));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%subject, %provider, to = %to.user_name, error = %ErrorChain(&e), "approval message not delivered");
                    announced.failures.push(format!("{provider} to {}: {}", to.user_name, ErrorChain(&e)));
                }
            }
        }
        announced
    }

    /// Edits every message about `action` to show `status`.
    async fn follow_up(&self, action: &ActionRow, status: Status) {
        let users = self.db.account(&action.account_id).users().list().await.unwrap_or_default();
        let rule = crate::actions::rule_with(&self.approvals, action);
        let message = self.message(action, &rule, status, &users);
        let subject = crate::db::chat::Subject::Action(action.id.clone());
        self.edit_all(&action.account_id, &subject, Arc::new(message)).await;
    }

    /// Edits every message about `subject`, on every channel, to show `message`.
    async fn edit_all(&self, account: &AccountId, subject: &crate::db::chat::Subject, message: message::Shared) {
        for channel in &self.channels {
            let provider = channel.provider();
            let rows = match self.db.account(account).chat().messages(provider, subject).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(%subject, error = %ErrorChain(&e), "could not read the chat messages to update");
                    continue;
                }
            };
            let edits = rows.into_iter().map(|row| {
                let edit = channel.edit(row.posted, Arc::clone(&message));
                async move { tokio::time::timeout(EDIT_TIMEOUT, edit).await }
            });
            for result in futures_join_all(edits.collect()).await {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(%subject, %provider, error = %ErrorChain(&e), "approval message not updated");
                    }
                    Err(_) => tracing::warn!(%subject, %provider, "approval message update timed out"),
                }
            }
        }
    }

    /// The status an event leaves an action in, reading what the event does not carry.
    async fn status_after(
        &self,
        account: &AccountId,
        id: &ActionId,
        payload: &Payload,
        actor: &str,
    ) -> Option<(ActionRow, Status)> {
        let action = self.db.account(account).actions().get(id).await.ok().flatten()?;
        let approvers = || async {
            self.db
                .account(account)
                .actions()
                .decisions(id)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|d| d.decision == RecordedDecision::Approve)
                .map(|d| d.decided_by.to_string())
                .collect::<Vec<_>>()
        };
        let status = match payload {
            Payload::ActionDecided { decision: Decision::Approve, .. } => {
                let approved_by = approvers().await;
                if action.status == ActionState::PendingApproval {
                    let remaining =
                        action.approvals_required.saturating_sub(u32::try_from(approved_by.len()).unwrap_or(u32::MAX));
                    Status::Pending { approved_by, remaining: remaining.max(1) }
                } else if matches!(action.status, ActionState::Approved | ActionState::Running) {
                    Status::Running { approved_by }
                } else {
                    // Already past running (a fast command): the execution event says how it ended.
                    return None;
                }
            }
            Payload::ActionDecided { decision: Decision::Reject, .. } => Status::Rejected { by: actor.to_owned() },
            Payload::ActionDecided { decision: Decision::Cancel | Decision::Withdraw, .. } => {
                Status::Cancelled { by: actor.to_owned() }
            }
            Payload::ActionDecided { decision: Decision::FailedClosed, .. } => Status::FailedClosed,
            Payload::ActionExecuted { status: ActionState::Succeeded, exit_code, .. } => {
                Status::Succeeded { exit_code: *exit_code }
            }
            Payload::ActionExecuted { exit_code, .. } => Status::Failed { exit_code: *exit_code },
            Payload::ActionExpired { .. } => Status::Expired,
            _ => return None,
        };
        Some((action, status))
    }

    /// Subscribes to `bus` and edits the messages of every action decided, executed or expired,
    /// in event order, until `stop` changes.
    pub fn spawn_followups(self: &Arc<Self>, bus: &Bus, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let mut events = bus.subscribe();
        let chat = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match events.next_or_stop(&mut stop).await {
                    Next::Event(event) => {
                        if event.outcome != AuditOutcome::Ok {
                            continue;
                        }
                        if let Some(bypass) = bypass::changed_by(&event) {
                            chat.follow_up_bypass(&event.account_id, &bypass).await;
                            continue;
                        }
                        let id = match &event.payload {
                            Payload::ActionDecided { action, .. }
                            | Payload::ActionExecuted { action, .. }
                            | Payload::ActionExpired { action } => action.id.clone(),
                            _ => continue,
                        };
                        let actor = match &event.actor {
                            mttrly_core::audit::AuditActor::Human { name, .. } => name.clone(),
                            mttrly_core::audit::AuditActor::Assistant { client_name, .. } => {
                                format!("assistant {client_name}")
                            }
                            _ => "central".to_owned(),
                        };
                        if let Some((action, status)) =
                            chat.status_after(&event.account_id, &id, &event.payload, &actor).await
                        {
                            chat.follow_up(&action, status).await;
                        }
                    }
                    Next::Lagged(missed) => {
                        tracing::warn!(
                            missed,
                            "chat follow-ups fell behind the event bus; some messages keep an older state"
                        );
                    }
                    Next::Closed => break,
                }
            }
        })
    }
}

/// How many war-room notices may be on their way to chat services at once: a slow service
/// holds these, never the feed.
const NOTICES_IN_FLIGHT: usize = 64;

impl Chat {
    /// Pushes each published notification to the people subscribed to its channel whose filter
    /// it passes (not its sender), on every chat service they linked, until `stop` changes. A
    /// notice that cannot be sent is logged: it is in the channel for the pull path.
    pub fn spawn_notices(
        self: &Arc<Self>,
        feed: &crate::warroom::feed::Feed,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let mut notes = feed.listen();
        let chat = Arc::clone(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(NOTICES_IN_FLIGHT));
        tokio::spawn(async move {
            loop {
                let published = tokio::select! {
                    next = notes.recv() => match next {
                        Ok(p) => p,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "chat notices fell behind; those notifications were not pushed to chat");
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = stop.changed() => break,
                };
                let n = &published.notification;
                let wanted: Vec<UserId> = published
                    .subscribers
                    .iter()
                    .filter(|s| n.sender.user_id.as_ref() != Some(&s.user_id) && s.filter.matches(n))
                    .map(|s| s.user_id.clone())
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                let notice = notice::Notice::of(n);
                for channel in &chat.channels {
                    let provider = channel.provider();
                    let recipients = match chat
                        .db
                        .account(&published.account_id)
                        .chat()
                        .recipients(provider, wanted.clone())
                        .await
                    {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(%provider, error = %ErrorChain(&e), "subscribers' chat links not read");
                            continue;
                        }
                    };
                    for to in recipients {
                        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
                        let user = to.user_name.clone();
                        let send = channel.notify(to, notice.clone());
                        let id = n.notification_id.clone();
                        tokio::spawn(async move {
                            let _slot = slot;
                            match tokio::time::timeout(EDIT_TIMEOUT, send).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => {
                                    tracing::warn!(notification = %id, %provider, to = %user, error = %ErrorChain(&e), "notice not delivered");
                                }
                                Err(_) => {
                                    tracing::warn!(notification = %id, %provider, to = %user, "notice delivery timed out");
                                }
                            }
                        });
                    }
                }
            }
        })
    }
}

/// Who asked, for a message: the human (their name from `users`, the account's living users),
/// and the assistant's self-reported client name when an assistant asked; both escaped.
fn requester(by: &Principal, users: &[User]) -> (String, Option<String>) {
    let (human, assistant) = match by {
        Principal::Human { name, .. } => (name.clone(), None),
        Principal::Assistant { client_name, on_behalf_of, .. } => {
            let human = users
                .iter()
                .find(|u| &u.id == on_behalf_of)
                .map_or_else(|| on_behalf_of.to_string(), |u| u.name.clone());
            (human, Some(client_name.clone()))
        }
    };
    (mttrly_core::display::text(&human).into_owned(), assistant.map(|a| mttrly_core::display::text(&a).into_owned()))
}

/// Awaits every future, concurrently, in order (a tiny `join_all`: sends to a handful of people).
async fn futures_join_all<F: Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.await {
            Ok(v) => out.push(v),
            Err(e) => tracing::error!(error = %e, "a chat delivery task failed"),
        }
    }
    out
}

/// Which human channels this central offers for decisions with `chat` configured.
pub fn decision_channels(providers: &[ChatProvider]) -> Vec<Source> {
    let mut channels = vec![Source::Cli];
    channels.extend(providers.iter().map(|p| p.source()));
    channels
}
