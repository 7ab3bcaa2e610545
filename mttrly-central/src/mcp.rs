//! Central as an MCP backend: the tools run in-process, as the session's assistant principal.
//!
//! `/mcp` is mounted by [`crate::http`], which authenticates the request and puts the token's
//! [`TokenOwner`] in its extensions. Every call here is attributed to the MCP session's assistant
//! (on behalf of the token's human) with source `mcp`, and audited like any other tool call. No
//! call here ever decides an action: `mttrly_approve_action` answers with the command a human runs
//! (see `tools::decisions`), whatever the client claims a human confirmed.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::ids::ActionId;
use mttrly_core::{MttrlyError, Source, ToolId};
use mttrly_mcp::backend::{Update, Updates};
use mttrly_mcp::{Backend, Session};
use serde_json::Value;
use tokio::time::Instant;

use crate::db::accounts::TokenOwner;
use crate::events::{Event, Next, Payload};
use crate::state::Central;
use crate::tools;

/// Central's tools for MCP sessions.
pub struct CentralBackend {
    central: Arc<Central>,
}

impl CentralBackend {
    /// Serves `central`'s tools.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

/// The caller as this MCP session's assistant (see [`crate::auth::as_assistant`]).
fn as_assistant(owner: &TokenOwner, session: &Session) -> TokenOwner {
    crate::auth::as_assistant(owner, session.id.clone(), &session.client_name)
}

impl Backend for CentralBackend {
    type Caller = TokenOwner;

    fn caller_key(&self, caller: &TokenOwner) -> String {
        caller.session_key()
    }

    async fn tools(&self, caller: &TokenOwner) -> Result<Vec<ToolId>, MttrlyError> {
        // Listed: callable, or held back only by the plan (calling it then names the plan).
        Ok(tools::reach(&self.central, caller).filter(|(_, reach)| reach.is_listed()).map(|(tool, _)| tool).collect())
    }

    async fn lists(&self, caller: &TokenOwner, tool: ToolId) -> Result<bool, MttrlyError> {
        Ok(tools::reach_of(&self.central, caller, tool).is_listed())
    }

    async fn call(
        &self,
        caller: &TokenOwner,
        session: &Session,
        tool: ToolId,
        arguments: Value,
    ) -> Result<Value, MttrlyError> {
        let assistant = as_assistant(caller, session);
        tools::call_audited(&self.central, &assistant, Source::Mcp, tool, arguments).await
    }

    fn pushes(&self) -> bool {
        true
    }

    /// The war-room feed, narrowed to the caller's account and judged against the caller's own
    /// subscription filters. Refused when the caller cannot read channels (plan, surface).
    async fn updates(&self, caller: &TokenOwner) -> Result<Box<dyn Updates>, MttrlyError> {
        let reach = tools::reach_of(&self.central, caller, ToolId::GetNotifications);
        if !reach.is_callable() {
            return Err(MttrlyError::new(
                mttrly_core::ErrorCode::Forbidden,
                "this credential cannot read notification channels, so it gets no updates about them",
            ));
        }
        Ok(Box::new(Feed {
            rx: self.central.warroom.listen(),
            account: caller.account_id.clone(),
            user: caller.principal.accountable_user().clone(),
            stop: self.central.stopping.get().cloned(),
            central: Arc::clone(&self.central),
            credential: caller.credential.clone(),
            checked: self.central.auth_cache.generation(),
            checked_at: Instant::now(),
        }))
    }

    /// Reads the action again whenever the event bus says something happened to it (and every
    /// few seconds, should the bus have dropped events for a slow reader), until it ends or the
    /// deadline passes; returns early when central stops.
    async fn await_action(
        &self,
        caller: &TokenOwner,
        session: &Session,
        action_id: &str,
        deadline: Instant,
    ) -> Result<Value, MttrlyError> {
        /// The longest between two reads when no event arrives.
        const RECHECK: Duration = Duration::from_secs(5);
        let assistant = as_assistant(caller, session);
        let id = ActionId::parse(action_id)
            .map_err(|e| MttrlyError::new(mttrly_core::ErrorCode::ValidationError, format!("action_id: {e}")))?;
        // Subscribed before the first read: nothing between the read and the wait is missed.
        let mut events = self.central.events.subscribe();
        let mut stop = self.central.stopping.get().cloned();
        let mut closed = false;
        loop {
            let view = crate::actions::view(&self.central, &assistant, &id).await?;
            let now = Instant::now();
            if view.status.is_terminal() || now >= deadline || closed || stop.as_ref().is_some_and(|s| *s.borrow()) {
                return serde_json::to_value(view).map_err(|e| {
                    MttrlyError::new(mttrly_core::ErrorCode::InternalError, format!("cannot encode the action: {e}"))
                });
            }
            let until = deadline.min(now + RECHECK);
            let about_it = async {
                loop {
                    let next = match stop.as_mut() {
                        Some(stop) => events.next_or_stop(stop).await,
                        None => events.next().await,
                    };
                    match next {
                        Next::Event(event) if event.account_id == assistant.account_id && about(&event, &id) => {
                            return false;
                        }
                        Next::Event(_) => {}
                        // Missed some: read again.
                        Next::Lagged(_) => return false,
                        // Stopping (or the bus is gone): read once more and answer; waiting on
                        // a closed channel would return at once, again and again.
                        Next::Closed => return true,
                    }
                }
            };
            closed = tokio::time::timeout_at(until, about_it).await.unwrap_or(false);
        }
    }
}

/// Whether `event` changed action `id`.
fn about(event: &Event, id: &ActionId) -> bool {
    match &event.payload {
        Payload::ActionDecided { action, .. }
        | Payload::ActionExecuted { action, .. }
        | Payload::ActionExpired { action } => action.id == *id,
        _ => false,
    }
}

/// One caller's view of the war-room feed.
struct Feed {
    rx: tokio::sync::broadcast::Receiver<Arc<crate::warroom::feed::Published>>,
    account: mttrly_core::ids::AccountId,
    user: mttrly_core::ids::UserId,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    central: Arc<Central>,
    /// The credential that opened the stream (its key): a stream outlives the request that
    /// authenticated it, so revoking the credential, or removing the person, must end it.
    credential: String,
    /// The credential cache's generation when the credential was last known to stand.
    checked: u64,
    /// When it was last read: an OAuth access token expires, and its grant can be revoked, with
    /// no change to the cache, so it is read again at least every [`RECHECK`].
    checked_at: Instant,
}

/// The longest a push stream goes without reading its credential again.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

impl Feed {
    /// Whether the credential still stands for a living member of the account: read again after
    /// a change to people or credentials (the auth cache's generation moved), and at least every
    /// [`RECHECK`].
    async fn still_entitled(&mut self) -> bool {
        let now = self.central.auth_cache.generation();
        if now == self.checked && self.checked_at.elapsed() < RECHECK {
            return true;
        }
        let users = self.central.db.account(&self.account).users();
        match users.credential_live(self.user.clone(), self.credential.clone(), crate::db::now_ms()).await {
            Ok(true) => {
                self.checked = now;
                self.checked_at = Instant::now();
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %mttrly_core::ErrorChain(&e), "cannot check a push stream's credential; ending it");
                false
            }
        }
    }

    async fn next_update(&mut self) -> Option<Update> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let next = match self.stop.as_mut() {
                Some(stop) => tokio::select! {
                    next = self.rx.recv() => next,
                    _ = stop.changed() => return None,
                },
                None => self.rx.recv().await,
            };
            match next {
                Ok(p) if p.account_id == self.account => {
                    if !self.still_entitled().await {
                        return None;
                    }
                    return Some(Update::Notification {
                        channel: p.notification.channel.clone(),
                        thread_id: p.notification.thread_id.clone(),
                        wanted: p.wanted_by(&self.user).unwrap_or(true),
                    });
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return self.still_entitled().await.then_some(Update::Missed),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Updates for Feed {
    fn next(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Update>> + Send + '_>> {
        Box::pin(self.next_update())
    }
}
