//! Approval prompts driven by the event bus, with the submitter waiting for the delivery result.
//!
//! `actions::submit` must know whether a required prompt reached a human (if not, the action is
//! failed closed), yet the prompt should only leave once the action's creation is durable in the
//! audit log. So the submitter registers a wait and queues the creation event in one step
//! ([`Prompts::record_and_wait`]); the prompt task, a bus subscriber, takes the wait when the
//! committed `ActionCreated` event arrives, delivers through every notifier on the blocking pool,
//! and answers the wait. A prompt is delivered exactly once: whoever removes the wait delivers.
//!
//! If the task falls behind the bus ([`Next::Lagged`]), creation events may be lost: it takes
//! every registered wait, waits for the audit log to commit everything queued (each was queued
//! under the same lock that registered it), and delivers those.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::ErrorChain;
use mttrly_core::action::ActionState;
use mttrly_core::ids::ActionId;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::{ApprovalPrompt, Notifier};
use crate::audit::AuditLog;
use crate::chat::Chat;
use crate::db::actions::ActionRow;
use crate::events::{Bus, Next, Payload, Recorded};

/// What happened to one prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// At least one notifier delivered it.
    pub delivered: bool,
    /// Each failed notifier, with its last error.
    pub failures: Vec<String>,
}

/// The longest the chat router may take to reach every eligible approver of one action.
const CHAT_DELIVERY_TIME: Duration = Duration::from_secs(15);

struct Waiter {
    action: Arc<ActionRow>,
    answer: oneshot::Sender<Delivery>,
}

/// The approval prompt notifiers and the submitters waiting on them.
pub struct Prompts {
    notifiers: Vec<Arc<dyn Notifier>>,
    /// The chat router: approval messages to each eligible approver who linked a chat account.
    chat: Option<Arc<Chat>>,
    /// The waits, and whether the prompt task has stopped (then nothing new is registered).
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    stopped: bool,
    by_action: HashMap<ActionId, Waiter>,
}

/// A submitter's wait for its prompt's delivery.
pub struct Ticket {
    id: ActionId,
    answer: oneshot::Receiver<Delivery>,
}

impl Prompts {
    /// The prompt notifiers and the chat router (possibly neither).
    pub fn new(notifiers: Vec<Arc<dyn Notifier>>, chat: Option<Arc<Chat>>) -> Arc<Self> {
        let chat = chat.filter(|c| !c.is_empty());
        Arc::new(Self { notifiers, chat, waiting: Mutex::new(Waiting::default()) })
    }

    /// Whether nothing is configured to deliver prompts (then no prompt can be delivered).
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty() && self.chat.is_none()
    }

    /// The longest one delivery can take through every notifier, retries included: how long a
    /// submitter waits before it counts the prompt as undelivered. Chat messages go out beside
    /// the webhooks, each with its own timeout.
    pub fn max_delivery_time(&self) -> Duration {
        let webhooks: Duration = self.notifiers.iter().map(|n| n.max_duration()).sum();
        if self.chat.is_some() { webhooks.max(CHAT_DELIVERY_TIME) } else { webhooks }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a wait for `action`'s prompt and queues `creation` (its audit event) in one
    /// step, so a wait in the table always has its event queued before it.
    pub fn record_and_wait(&self, audit: &AuditLog, creation: Recorded, action: Arc<ActionRow>) -> Ticket {
        let (answer, rx) = oneshot::channel();
        let id = action.id.clone();
        let mut waiting = self.waiting();
        // Once the task has stopped nobody would answer: dropping `answer` says "undelivered".
        if !waiting.stopped {
            waiting.by_action.insert(id.clone(), Waiter { action, answer });
        }
        audit.append(creation);
        drop(waiting);
        Ticket { id, answer: rx }
    }

    /// Waits for the delivery result, at most `deadline`; past it, or if the prompt task stopped,
    /// the prompt counts as undelivered and is never sent later.
    pub async fn outcome(&self, ticket: Ticket, deadline: Duration) -> Delivery {
        match tokio::time::timeout(deadline, ticket.answer).await {
            Ok(Ok(delivery)) => delivery,
            Ok(Err(_)) => Delivery { delivered: false, failures: vec!["the approval prompt task stopped".to_owned()] },
            Err(_) => {
                self.waiting().by_action.remove(&ticket.id);
                Delivery { delivered: false, failures: vec![format!("no delivery within {} s", deadline.as_secs())] }
            }
        }
    }

    /// Delivers through every notifier (on the blocking pool) and every chat channel at once,
    /// and answers the waiter: delivered when any webhook took the prompt or any eligible
    /// approver got a chat message.
    fn deliver(self: &Arc<Self>, waiter: Waiter) {
        let prompts = Arc::clone(self);
        tokio::spawn(async move {
            let prompt = ApprovalPrompt::pending(&waiter.action);
            let notifiers = prompts.notifiers.clone();
            let webhooks = async move {
                if notifiers.is_empty() {
                    return Delivery { delivered: false, failures: Vec::new() };
                }
                tokio::task::spawn_blocking(move || {
                    let mut delivery = Delivery { delivered: false, failures: Vec::new() };
                    for n in &notifiers {
                        match n.deliver(&prompt) {
                            Ok(()) => delivery.delivered = true,
                            Err(e) => delivery.failures.push(format!("{}: {}", n.name(), ErrorChain(&e))),
                        }
                    }
                    delivery
                })
                .await
                .unwrap_or_else(|e| Delivery { delivered: false, failures: vec![format!("notifier task failed: {e}")] })
            };
            let chat = async {
                match &prompts.chat {
                    Some(chat) => {
                        let announced = tokio::time::timeout(CHAT_DELIVERY_TIME, chat.announce(&waiter.action))
                            .await
                            .unwrap_or_else(|_| crate::chat::Announced {
                                failures: vec![format!("chat: no delivery within {} s", CHAT_DELIVERY_TIME.as_secs())],
                                ..Default::default()
                            });
                        Delivery { delivered: announced.delivered > 0, failures: announced.failures }
                    }
                    None => Delivery { delivered: false, failures: Vec::new() },
                }
            };
            let (mut delivery, chat) = tokio::join!(webhooks, chat);
            delivery.delivered |= chat.delivered;
            delivery.failures.extend(chat.failures);
            // The submitter may have stopped waiting; the outcome is in the logs either way.
            let _ = waiter.answer.send(delivery);
        });
    }

    /// Subscribes to `bus` and delivers the prompt of each pending action a submitter waits for,
    /// until `stop` changes. Stopping answers every remaining wait "undelivered" (its action
    /// fails closed) and drops the task's audit handle so the writer can end.
    pub fn spawn(self: &Arc<Self>, bus: &Bus, audit: AuditLog, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let mut events = bus.subscribe();
        let prompts = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match events.next_or_stop(&mut stop).await {
                    Next::Event(event) => {
                        if let Payload::ActionCreated(action) = &event.payload
                            && action.status == ActionState::PendingApproval
                            && let Some(waiter) = prompts.waiting().by_action.remove(&action.id)
                        {
                            prompts.deliver(waiter);
                        }
                    }
                    Next::Lagged(missed) => {
                        let waiters: Vec<Waiter> = prompts.waiting().by_action.drain().map(|(_, w)| w).collect();
                        tracing::warn!(
                            missed,
                            resent = waiters.len(),
                            "approval prompts fell behind the event bus; delivering every waiting prompt"
                        );
                        // Each creation was queued as its wait was registered: once this flush
                        // returns, all their rows are committed.
                        audit.flush().await;
                        for waiter in waiters {
                            prompts.deliver(waiter);
                        }
                    }
                    Next::Closed => break,
                }
            }
            let mut waiting = prompts.waiting();
            waiting.stopped = true;
            waiting.by_action.clear();
        })
    }
}
