//! IDE approvals a client cannot fake: the decision is made on the action's page, by the human
//! signed in to the dashboard, never by anything the client answers.
//!
//! `mttrly_approve_action` and `mttrly_cancel_action` never decide (central answers them with
//! `FORBIDDEN` and the ways a human decides). When central offers its dashboard, that refusal
//! carries the action's page (`details.action_url`). For a client that declared URL-mode
//! elicitation (MCP 2025-11-25), this server then asks the client to open that page for its user
//! and, if the client says the user went there, waits for the action to end and answers with its
//! outcome. The client's "accept" means only "the user was shown the link": the action stays
//! pending until someone signed in on the page decides (with the same rules, four eyes, roles and
//! second factor as every other channel), and a client that accepts everything gets, at the end of
//! the wait, the same refusal it would have got without URL mode. A client without URL mode gets
//! the refusal at once, with the page's address in its message and details.

use std::time::Duration;

use mttrly_core::action::ActionState;
use mttrly_core::{ErrorCode, MttrlyError};
use rmcp::RoleServer;
use rmcp::model::{
    CallToolResponse, CallToolResult, CustomNotification, ElicitRequest, ElicitRequestParams, ElicitResult,
    ElicitationAction, InputRequest, InputRequests, InputRequiredResult, InputResponses, ProgressNotificationParam,
    ProgressToken, ServerNotification,
};
use rmcp::service::{ElicitationMode, Peer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::time::Instant;

use crate::backend::{Backend, Session};
use crate::result;

/// How often a waiting call tells a client that asked for progress that it is still waiting
/// (clients that reset their timeout on progress then wait as long as the human takes).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The URL-mode request sending the user to action `action_id`'s page.
fn page_request(action_id: &str, url: &str, elicitation_id: &str) -> ElicitRequestParams {
    ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message: format!(
            "Action {action_id} waits for a human decision. Open its page, signed in to mttrly as yourself, to see \
             exactly what will run and approve or reject it there; this assistant cannot decide it for you."
        ),
        url: url.to_owned(),
        elicitation_id: elicitation_id.to_owned(),
    }
}

/// The key of the page request for `action_id` in a 2026-07-28 `input_required` result.
fn stateless_key(action_id: &str) -> String {
    format!("mttrly-page-{action_id}")
}

/// The page a refusal points at, when there is one: the action's id and the page's address.
pub(crate) fn page_of(refused: &MttrlyError) -> Option<(String, String)> {
    if refused.code() != ErrorCode::Forbidden {
        return None;
    }
    let details = refused.details();
    let url = details.get("action_url")?.as_str()?;
    let id = details.get("action_id")?.as_str()?;
    // Only ever the action's own page on central: whatever relayed the refusal.
    let own = url.ends_with(&format!("/actions/{id}")) && (url.starts_with("https://") || url.starts_with("http://"));
    own.then(|| (id.to_owned(), url.to_owned()))
}

/// What one call needs to send the user to the page and wait.
pub(crate) struct Visit<'a, B: Backend> {
    pub backend: &'a B,
    pub caller: &'a B::Caller,
    pub session: &'a Session,
    pub peer: &'a Peer<RoleServer>,
    pub progress: Option<ProgressToken>,
    /// The longest a call waits for the human.
    pub wait: Duration,
    /// What the assistant asked for: `approve`, `reject` or `cancel`.
    pub asked: &'a str,
}

impl<B: Backend> Visit<'_, B> {
    /// The answer to a refused decision whose page is `url`: through the page when the client
    /// can open it, else the refusal itself (which names the page).
    pub(crate) async fn answer(&self, refused: MttrlyError, action_id: &str, url: &str) -> CallToolResult {
        if !self.peer.supported_elicitation_modes().contains(&ElicitationMode::Url) {
            return result::failure(&refused);
        }
        let elicitation_id = format!("mttrly-{}", uuid::Uuid::now_v7().simple());
        let asked = self
            .peer
            .create_elicitation_with_timeout(page_request(action_id, url, &elicitation_id), Some(self.wait))
            .await;
        let opened = match asked.map(|r| r.action) {
            Ok(ElicitationAction::Accept) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::info!(error = %e, "the client did not open the action's page");
                false
            }
        };
        self.conclude(refused, action_id, url, opened.then_some(elicitation_id.as_str())).await
    }

    /// 2026-07-28, which has no server-to-client requests: the first call is answered with
    /// `input_required` holding the URL-mode request for the page (when the client declared URL
    /// mode; else the refusal). The client retries the same call with the user's answer in
    /// `inputResponses`; central refuses the retry again (nothing a client sends decides), and
    /// this server then waits for the human as it does for a 2025-11-25 client. The answer is
    /// keyed by the action, so an answer given for another action opens nothing.
    pub(crate) async fn answer_stateless(
        &self,
        refused: MttrlyError,
        action_id: &str,
        url: &str,
        supports_url: bool,
        responses: Option<&InputResponses>,
    ) -> CallToolResponse {
        if !supports_url {
            return result::failure(&refused).into();
        }
        let key = stateless_key(action_id);
        let Some(answer) = responses.and_then(|r| r.get(&key)) else {
            let mut requests = InputRequests::new();
            requests
                .insert(key.clone(), InputRequest::Elicitation(ElicitRequest::new(page_request(action_id, url, &key))));
            return InputRequiredResult::from_input_requests(requests).into();
        };
        let opened =
            serde_json::from_value::<ElicitResult>(answer.clone()).is_ok_and(|r| r.action == ElicitationAction::Accept);
        self.conclude(refused, action_id, url, opened.then_some(key.as_str())).await.into()
    }

    /// After the client was asked to open the page: waits for the human when it was opened
    /// (`elicitation` names that request), else reads the action once; says the outcome.
    async fn conclude(
        &self,
        refused: MttrlyError,
        action_id: &str,
        url: &str,
        elicitation: Option<&str>,
    ) -> CallToolResult {
        let opened = elicitation.is_some();
        // Not opened: someone may still have decided meanwhile (on another channel, or from the
        // link in the refusal), so the answer is read, never assumed.
        let until = if opened { Instant::now() + self.wait } else { Instant::now() };
        let view = match self.wait_for_outcome(action_id, until).await {
            Ok(view) => view,
            Err(e) => return result::failure(&e),
        };
        if let Some(waiting) = still_waiting(&view) {
            let first = if opened {
                let minutes = self.wait.as_secs().div_ceil(60);
                format!(
                    "The user was shown the action's page ({url}), but it was not decided there within {minutes} min: {waiting}."
                )
            } else {
                format!("The user did not open the action's page ({url}): {waiting}.")
            };
            return result::failure(&prefixed(&refused, &first));
        }
        if let Some(elicitation_id) = elicitation {
            // The page's work is done: the client may close whatever it opened for it.
            let done = CustomNotification::new(
                "notifications/elicitation/complete",
                Some(json!({ "elicitationId": elicitation_id })),
            );
            if let Err(e) = self.peer.send_notification(ServerNotification::CustomNotification(done)).await {
                tracing::debug!(error = %e, "cannot send elicitation/complete");
            }
        }
        result::success_with_summary(outcome(&view, self.asked), view)
    }

    /// The action's view once it ended or at the deadline, telling the client it is still
    /// waiting meanwhile (when it asked for progress).
    async fn wait_for_outcome(&self, action_id: &str, deadline: Instant) -> Result<Value, MttrlyError> {
        let wait = self.backend.await_action(self.caller, self.session, action_id, deadline);
        let Some(token) = self.progress.clone() else { return wait.await };
        let mut wait = std::pin::pin!(wait);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                view = &mut wait => return view,
                _ = tick.tick() => {
                    ticks += 1;
                    let mut note = ProgressNotificationParam::new(token.clone(), f64::from(ticks));
                    note.message = Some("waiting for a human to decide on the action's page".to_owned());
                    if self.peer.notify_progress(note).await.is_err() {
                        return wait.await;
                    }
                }
            }
        }
    }
}

/// Why a view still waits for a human, in words (`None` once it left `pending_approval`): the
/// approvals so far, and an expiry that passed before the sweeper marked it.
fn still_waiting(view: &Value) -> Option<String> {
    if view.get("status").and_then(Value::as_str) != Some(ActionState::PendingApproval.as_str()) {
        return None;
    }
    let expired = view
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| t <= jiff::Timestamp::now());
    if expired {
        return Some("it has expired undecided".to_owned());
    }
    let required = view.get("approvals_required").and_then(Value::as_u64).unwrap_or(1);
    let received = view
        .get("approvals")
        .and_then(Value::as_array)
        .map_or(0, |a| a.iter().filter(|d| d.get("decision").and_then(Value::as_str) == Some("approve")).count());
    Some(format!("it still waits for a human decision ({received} of {required} approvals)"))
}

/// The first line of the answer once a human decided: what they decided, said against what the
/// assistant asked for, so an assistant that asked to approve cannot mistake a rejection.
fn outcome(view: &Value, asked: &str) -> String {
    let id = view.get("action_id").and_then(Value::as_str).unwrap_or("?");
    let status = view.get("status").and_then(Value::as_str).unwrap_or("unknown");
    let decisions: Vec<String> = view
        .get("approvals")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .map(|d| {
                    let verb = match d.get("decision").and_then(Value::as_str) {
                        Some("approve") => "approved",
                        Some("reject") => "rejected",
                        _ => "decided",
                    };
                    format!("{verb} via {}", d.get("channel").and_then(Value::as_str).unwrap_or("?"))
                })
                .collect()
        })
        .unwrap_or_default();
    let by = if decisions.is_empty() { "no human decision recorded".to_owned() } else { decisions.join(", ") };
    format!(
        "Action {id} is now {status} ({by}). You asked to {asked}; this is the outcome, decided by people, not by this call."
    )
}

/// `refused` with `first` said before its message, details kept.
fn prefixed(refused: &MttrlyError, first: &str) -> MttrlyError {
    let mut err = MttrlyError::new(refused.code(), format!("{first} {}", refused.message()));
    if let Value::Object(details) = refused.details() {
        for (k, v) in details {
            err = err.with_detail(k, v.clone());
        }
    }
    err
}

/// How many calls of one caller (a user or token, across all their sessions) may wait for a
/// human on an action's page at once.
pub(crate) const WAITS_PER_CALLER: usize = 4;
/// How many calls may wait at once in this process, all callers together: each wait listens for
/// the action's events (or polls a remote central), so their number is bounded.
pub(crate) const WAITS_IN_ALL: usize = 64;

/// The waits in progress, per caller and in all. Shared by every session of a server (it lives in
/// [`crate::server::Options`]); a call that finds no free slot gets the refusal at once, which
/// still names the page.
#[derive(Debug, Default)]
pub struct WaitSlots {
    held: Mutex<(usize, HashMap<String, usize>)>,
}

/// One wait in progress; frees its slot when dropped.
pub(crate) struct WaitSlot {
    slots: Arc<WaitSlots>,
    caller: String,
}

impl WaitSlots {
    /// A slot for `caller`, if one is free.
    pub(crate) fn take(self: &Arc<Self>, caller: &str) -> Option<WaitSlot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per) = &mut *held;
        let mine = per.get(caller).copied().unwrap_or(0);
        if *total >= WAITS_IN_ALL || mine >= WAITS_PER_CALLER {
            return None;
        }
        *total += 1;
        per.insert(caller.to_owned(), mine + 1);
        Some(WaitSlot { slots: Arc::clone(self), caller: caller.to_owned() })
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(mine) = per.get_mut(&self.caller) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_caller_and_in_all_and_freed_on_drop() {
        let slots = Arc::new(WaitSlots::default());
        let alice: Vec<_> = (0..WAITS_PER_CALLER).filter_map(|_| slots.take("alice")).collect();
        assert_eq!(alice.len(), WAITS_PER_CALLER);
        assert!(slots.take("alice").is_none(), "alice's waits are all taken");
        assert!(slots.take("bob").is_some(), "bob has his own");
        drop(alice);
        let many: Vec<_> = (0..WAITS_IN_ALL * 2).filter_map(|i| slots.take(&format!("user-{i}"))).collect();
        assert_eq!(many.len(), WAITS_IN_ALL, "never more than the process-wide bound");
        drop(many);
        assert!(slots.take("alice").is_some());
    }

    #[test]
    fn only_the_actions_own_page_is_ever_opened() {
        let refused = |url: &str| {
            MttrlyError::new(ErrorCode::Forbidden, "no")
                .with_detail("action_id", "act_1")
                .with_detail("action_url", url)
        };
        assert_eq!(
            page_of(&refused("https://central.example/actions/act_1")),
            Some(("act_1".to_owned(), "https://central.example/actions/act_1".to_owned()))
        );
        for bad in ["https://evil.example/phish", "javascript:alert(1)//actions/act_1", "https://c/actions/act_2"] {
            assert_eq!(page_of(&refused(bad)), None, "{bad}");
        }
        let other = MttrlyError::new(ErrorCode::ValidationError, "no")
            .with_detail("action_id", "act_1")
            .with_detail("action_url", "https://central.example/actions/act_1");
        assert_eq!(page_of(&other), None, "only a refusal to decide");
    }

    #[test]
    fn the_outcome_is_said_against_what_was_asked() {
        let view = json!({
            "action_id": "act_1", "status": "rejected",
            "approvals": [{ "decision": "reject", "channel": "dashboard" }]
        });
        let said = outcome(&view, "approve");
        assert!(
            said.starts_with("Action act_1 is now rejected (rejected via dashboard). You asked to approve"),
            "{said}"
        );
        let waiting = json!({
            "status": "pending_approval", "approvals_required": 2,
            "approvals": [{ "decision": "approve", "channel": "cli" }],
            "expires_at": "2999-01-01T00:00:00Z"
        });
        assert_eq!(still_waiting(&waiting).as_deref(), Some("it still waits for a human decision (1 of 2 approvals)"));
        let lapsed = json!({ "status": "pending_approval", "expires_at": "2000-01-01T00:00:00Z" });
        assert_eq!(still_waiting(&lapsed).as_deref(), Some("it has expired undecided"));
        assert_eq!(still_waiting(&view), None);
    }
}
