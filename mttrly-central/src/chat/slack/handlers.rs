//! What Slack POSTs to central: `/hooks/slack/interactions` (button taps, modal submissions) and
//! `/hooks/slack/commands` (`/mttrly link CODE`, `/mttrly help`).
//!
//! Order, for every request: 404 unless `[slack]` is configured; then the signature over the raw
//! body and its timestamp ([`super::verify`]), 401 and nothing done on any doubt; only then is the
//! body parsed. Slack wants an answer within 3 seconds, so a tap is acknowledged at once and its
//! work (the decision, `views.open`, telling the person) runs on a spawned task; a modal
//! submission and a link code wait for their (local, fast) outcome at most [`SYNC_BUDGET`], so a
//! wrong code can be shown in the modal itself, and otherwise are acknowledged and reported by
//! direct message when done.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mttrly_core::{ChatProvider, ErrorCode, MttrlyError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Slack;
use super::blocks::{self, Metadata};
use super::verify;
use crate::app_state::AppState;
use crate::chat::decide::{self, Choice, Outcome, Tap};
use crate::chat::links;
use crate::db::chat::{Posted, Subject};
use crate::state::Central;

/// How long a modal submission or a link code waits for its outcome before it is acknowledged
/// anyway (Slack's limit is 3 seconds, the network takes its share).
pub const SYNC_BUDGET: Duration = Duration::from_secs(2);

/// The longest error text shown under a modal's input.
const MAX_MODAL_ERROR_CHARS: usize = 300;

fn refuse(status: StatusCode, err: &MttrlyError) -> Response {
    (status, Json(serde_json::to_value(err.body()).unwrap_or(Value::Null))).into_response()
}

/// Why a request was not let through.
enum Unchecked {
    /// `[slack]` is not configured: 404.
    NotConfigured,
    /// The signature or timestamp failed: 401.
    Unsigned,
}

impl Unchecked {
    fn response(self) -> Response {
        match self {
            Self::NotConfigured => {
                refuse(StatusCode::NOT_FOUND, &MttrlyError::new(ErrorCode::NotFound, "no such hook"))
            }
            Self::Unsigned => refuse(
                StatusCode::UNAUTHORIZED,
                &MttrlyError::new(ErrorCode::AuthFailed, "a valid Slack request signature is required"),
            ),
        }
    }
}

/// The configured app, once the request's signature and timestamp are checked on the raw body.
fn checked(central: &Central, headers: &HeaderMap, body: &[u8]) -> Result<Arc<Slack>, Unchecked> {
    let Some(slack) = central.slack.get() else { return Err(Unchecked::NotConfigured) };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = jiff::Timestamp::now().as_second();
    match verify::verify(
        slack.signing_secret(),
        header(verify::TIMESTAMP_HEADER),
        header(verify::SIGNATURE_HEADER),
        body,
        now,
    ) {
        Ok(()) => Ok(Arc::clone(slack)),
        Err(why) => {
            tracing::warn!(reason = %why, "a request claiming to come from Slack was refused");
            Err(Unchecked::Unsigned)
        }
    }
}

fn bad_request(what: &str) -> Response {
    refuse(StatusCode::BAD_REQUEST, &MttrlyError::new(ErrorCode::ValidationError, what.to_owned()))
}

/// `payload=<json>`, the form Slack sends interactions in.
#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum Interaction {
    #[serde(rename = "block_actions")]
    BlockActions(BlockActions),
    #[serde(rename = "view_submission")]
    ViewSubmission(ViewSubmission),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Team {
    id: String,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Container {
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    message_ts: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
}

#[derive(Debug, Deserialize)]
struct BlockActions {
    #[serde(default)]
    team: Option<Team>,
    user: User,
    #[serde(default)]
    container: Container,
    #[serde(default)]
    trigger_id: String,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct ViewSubmission {
    #[serde(default)]
    team: Option<Team>,
    user: User,
    view: View,
}

#[derive(Debug, Deserialize)]
struct View {
    #[serde(default)]
    callback_id: String,
    #[serde(default)]
    private_metadata: String,
    #[serde(default)]
    state: ViewState,
}

#[derive(Debug, Default, Deserialize)]
struct ViewState {
    #[serde(default)]
    values: HashMap<String, HashMap<String, InputValue>>,
}

#[derive(Debug, Deserialize)]
struct InputValue {
    #[serde(default)]
    value: Option<String>,
}

impl ViewState {
    /// The typed value of the input whose block and action id are both `id`.
    fn input(&self, id: &str) -> Option<String> {
        self.values.get(id)?.get(id)?.value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

/// `TEAM:USER`, the chat account as links store it; `None` when Slack named no team.
fn external_user(team: Option<&Team>, user: &User) -> Option<String> {
    let team = team.map(|t| t.id.as_str()).or(user.team_id.as_deref()).filter(|t| !t.is_empty())?;
    (!user.id.is_empty()).then(|| format!("{team}:{}", user.id))
}

/// `POST /hooks/slack/interactions`.
pub(crate) async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = Arc::clone(&state.central);
    let slack = match checked(&central, &headers, &body) {
        Ok(slack) => slack,
        Err(refused) => return refused.response(),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<InteractionForm>(&body) else {
        return bad_request("an interaction is a form with a `payload` field");
    };
    let interaction: Interaction = match serde_json::from_str(&form.payload) {
        Ok(i) => i,
        Err(e) => return bad_request(&format!("not an interaction payload Slack sends: {e}")),
    };
    match interaction {
        Interaction::BlockActions(actions) => block_actions(central, slack, actions),
        Interaction::ViewSubmission(submission) => view_submission(central, slack, submission).await,
        Interaction::Other => StatusCode::OK.into_response(),
    }
}

/// A button tap: acknowledged now, handled on a task.
fn block_actions(central: Arc<Central>, slack: Arc<Slack>, payload: BlockActions) -> Response {
    let Some(external) = external_user(payload.team.as_ref(), &payload.user) else {
        return bad_request("a tap names its team and user");
    };
    let (Some(channel), Some(ts)) = (payload.container.channel_id, payload.container.message_ts) else {
        return bad_request("a tap names the message it was made on");
    };
    let Some(action) = payload.actions.into_iter().next() else { return StatusCode::OK.into_response() };
    let posted = Posted { chat_id: channel, message_id: ts };
    let user = payload.user.id;
    let trigger = payload.trigger_id;
    tokio::spawn(async move {
        match action.action_id.as_str() {
            blocks::APPROVE => approve_tapped(&central, &slack, external, user, posted, trigger).await,
            blocks::REJECT => reject_tapped(&central, &slack, &user, posted, trigger).await,
            other => tracing::debug!(action_id = other, "ignoring a Slack action mttrly does not offer"),
        }
    });
    StatusCode::OK.into_response()
}

/// The sentence a refused decision is told with.
fn refusal_text(err: &MttrlyError) -> String {
    format!("Not decided: {}", err.message())
}

async fn approve_tapped(
    central: &Arc<Central>,
    slack: &Slack,
    external: String,
    user: String,
    posted: Posted,
    trigger: String,
) {
    let tap = Tap {
        provider: ChatProvider::Slack,
        external_user: external,
        posted: posted.clone(),
        choice: Choice::Approve,
        code: None,
    };
    match decide::tap(central, tap).await {
        // The follow-up edits the message with the outcome.
        Ok(Outcome::Decided(_) | Outcome::Bypass(_)) => {}
        Ok(Outcome::CodeNeeded { subject }) => {
            let verb = match subject {
                Subject::Action(_) => "Approve",
                Subject::Bypass(_) => "Grant",
            };
            let view = blocks::code_modal(&Metadata::of(&posted), &format!("{verb} {subject}"), subject.as_str(), verb);
            if let Err(e) = slack.api.call("views.open", json!({ "trigger_id": trigger, "view": view })).await {
                tracing::warn!(error = %mttrly_core::ErrorChain(&e), "could not open the TOTP code modal");
                let text = format!("This needs a TOTP code, but the code form could not be opened: tap {verb} again.");
                slack.tell(&posted.chat_id, &user, &text).await;
            }
        }
        Err(e) => slack.tell(&posted.chat_id, &user, &refusal_text(&e)).await,
    }
}

async fn reject_tapped(central: &Arc<Central>, slack: &Slack, user: &str, posted: Posted, trigger: String) {
    // The reason modal names the action; the tap itself is checked when the modal is submitted.
    let subject = match central.db.chat_lookups().message(ChatProvider::Slack, &posted).await {
        Ok(Some(row)) => row.subject,
        Ok(None) => {
            slack.tell(&posted.chat_id, user, "Not decided: this is not an approval request mttrly sent you").await;
            return;
        }
        Err(e) => {
            slack.tell(&posted.chat_id, user, &refusal_text(&e)).await;
            return;
        }
    };
    let verb = match subject {
        Subject::Action(_) => "Reject",
        Subject::Bypass(_) => "Deny",
    };
    let view = blocks::reason_modal(&Metadata::of(&posted), &format!("{verb} {subject}?"), verb);
    if let Err(e) = slack.api.call("views.open", json!({ "trigger_id": trigger, "view": view })).await {
        tracing::warn!(error = %mttrly_core::ErrorChain(&e), "could not open the reject reason modal");
        slack.tell(&posted.chat_id, user, "The reject form could not be opened: tap Reject again.").await;
    }
}

/// `{"response_action": "errors"}` on `block`.
fn modal_error(block: &str, text: &str) -> Response {
    let mut errors = serde_json::Map::new();
    errors.insert(block.to_owned(), Value::String(blocks::cut(text, MAX_MODAL_ERROR_CHARS)));
    Json(json!({ "response_action": "errors", "errors": errors })).into_response()
}

/// A modal submitted: a fresh tap with the code or reason, answered in the modal when it is
/// decided within [`SYNC_BUDGET`].
async fn view_submission(central: Arc<Central>, slack: Arc<Slack>, payload: ViewSubmission) -> Response {
    let (choice, code, block) = match payload.view.callback_id.as_str() {
        blocks::CODE_MODAL => (Choice::Approve, payload.view.state.input(blocks::CODE_INPUT), blocks::CODE_INPUT),
        blocks::REASON_MODAL => {
            let reason =
                payload.view.state.input(blocks::REASON_INPUT).map(|r| blocks::cut(&r, blocks::MAX_REASON_CHARS));
            (Choice::Reject { reason }, None, blocks::REASON_INPUT)
        }
        _ => return StatusCode::OK.into_response(),
    };
    if choice == Choice::Approve && code.is_none() {
        return modal_error(block, "Enter the code from your authenticator app.");
    }
    let Some(external) = external_user(payload.team.as_ref(), &payload.user) else {
        return bad_request("a submission names its team and user");
    };
    let Ok(metadata) = serde_json::from_str::<Metadata>(&payload.view.private_metadata) else {
        return modal_error(block, "This form does not name an approval request; tap the button on the message again.");
    };
    let tap = Tap { provider: ChatProvider::Slack, external_user: external, posted: metadata.posted(), choice, code };
    // On its own task: a decision that outlives the budget still completes, and is reported.
    let mut decided = tokio::spawn(async move { decide::tap(&central, tap).await });
    match tokio::time::timeout(SYNC_BUDGET, &mut decided).await {
        Ok(Ok(Ok(Outcome::CodeNeeded { .. }))) => modal_error(block, "Enter the code from your authenticator app."),
        Ok(Ok(Ok(Outcome::Decided(_) | Outcome::Bypass(_)))) => StatusCode::OK.into_response(),
        Ok(Ok(Err(e))) => modal_error(block, &refusal_text(&e)),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "a Slack decision task failed");
            modal_error(block, "Not decided: central failed while deciding; try again.")
        }
        Err(_) => {
            // Still deciding: close the modal now and tell the person how it ended.
            let user = payload.user.id;
            tokio::spawn(async move {
                match decided.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => slack.direct(&user, &refusal_text(&e)).await,
                    Err(join) => tracing::error!(error = %join, "a Slack decision task failed"),
                }
            });
            StatusCode::OK.into_response()
        }
    }
}

/// The fields of a slash command central reads.
#[derive(Debug, Deserialize)]
struct Command {
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    text: String,
}

/// The help text of `/mttrly`.
pub const HELP: &str = "mttrly approvals in Slack:\n\
    /mttrly link CODE: link this Slack account to your mttrly user (run `mttrly-cli users link slack` for a code), \
    so approval requests you can decide reach you here\n\
    /mttrly help: this help";

fn ephemeral(text: &str) -> Response {
    Json(json!({ "response_type": "ephemeral", "text": blocks::escape(text) })).into_response()
}

/// `POST /hooks/slack/commands`.
pub(crate) async fn commands(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = Arc::clone(&state.central);
    let slack = match checked(&central, &headers, &body) {
        Ok(slack) => slack,
        Err(refused) => return refused.response(),
    };
    let Ok(command) = serde_urlencoded::from_bytes::<Command>(&body) else {
        return bad_request("a slash command is a form");
    };
    let text = command.text.trim();
    let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    match verb.to_ascii_lowercase().as_str() {
        "link" => {}
        "" | "help" => return ephemeral(HELP),
        _ => return ephemeral(&format!("Unknown command.\n{HELP}")),
    }
    if command.team_id.is_empty() || command.user_id.is_empty() {
        return bad_request("a slash command names its team and user");
    }
    let external = format!("{}:{}", command.team_id, command.user_id);
    let code = rest.trim().to_owned();
    let label = if command.user_name.is_empty() { command.user_id.clone() } else { format!("@{}", command.user_name) };
    let user = command.user_id.clone();
    let mut redeemed = tokio::spawn(async move {
        links::redeem(&central, ChatProvider::Slack, &code, &external, &command.user_id, &label).await
    });
    match tokio::time::timeout(SYNC_BUDGET, &mut redeemed).await {
        Ok(Ok(result)) => ephemeral(&linked_text(&result)),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "a Slack link task failed");
            ephemeral("Not linked: central failed while linking; try again.")
        }
        Err(_) => {
            tokio::spawn(async move {
                if let Ok(result) = redeemed.await {
                    slack.direct(&user, &linked_text(&result)).await;
                }
            });
            ephemeral("Linking…; you will get a message here when it is done.")
        }
    }
}

fn linked_text(result: &Result<links::Linked, links::LinkRefused>) -> String {
    match result {
        Ok(linked) => format!(
            "Linked: this Slack account is now {}'s in mttrly. Approval requests you can decide will arrive here.",
            linked.user_name
        ),
        Err(refused) => format!("Not linked: {refused}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_account_is_team_and_user_and_needs_both() {
        let user = User { id: "U1".into(), team_id: Some("T2".into()) };
        assert_eq!(external_user(Some(&Team { id: "T1".into() }), &user).as_deref(), Some("T1:U1"));
        assert_eq!(external_user(None, &user).as_deref(), Some("T2:U1"));
        assert_eq!(external_user(None, &User { id: "U1".into(), team_id: None }), None);
        assert_eq!(external_user(Some(&Team { id: "T1".into() }), &User { id: String::new(), team_id: None }), None);
    }

    #[test]
    fn documented_payload_shapes_parse() {
        let tap: Interaction = serde_json::from_value(json!({
            "type": "block_actions",
            "team": { "id": "T9TK3CUKW", "domain": "example" },
            "user": { "id": "UA8RXUSPL", "username": "jtorrance", "name": "jtorrance", "team_id": "T9TK3CUKW" },
            "api_app_id": "AABA1ABCD",
            "token": "9s8d9as89d8as9d8as989",
            "container": { "type": "message", "message_ts": "1548261231.000200", "channel_id": "D0PNCRP9N", "is_ephemeral": false },
            "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
            "channel": { "id": "D0PNCRP9N", "name": "directmessage" },
            "actions": [{ "action_id": "mttrly_approve", "block_id": "mttrly_decision", "type": "button",
                          "value": "act_1", "action_ts": "1548426417.840180" }]
        }))
        .unwrap();
        let Interaction::BlockActions(tap) = tap else { panic!("{tap:?}") };
        assert_eq!(tap.container.message_ts.as_deref(), Some("1548261231.000200"));
        let submitted: Interaction = serde_json::from_value(json!({
            "type": "view_submission",
            "team": { "id": "T1", "domain": "x" },
            "user": { "id": "U1", "team_id": "T1" },
            "view": { "id": "V1", "type": "modal", "callback_id": "mttrly_approve_code",
                      "private_metadata": "{\"channel_id\":\"D1\",\"message_ts\":\"1.2\"}",
                      "state": { "values": { "code": { "code": { "type": "plain_text_input", "value": " 123456 " } } } } }
        }))
        .unwrap();
        let Interaction::ViewSubmission(s) = submitted else { panic!("{submitted:?}") };
        assert_eq!(s.view.state.input("code").as_deref(), Some("123456"));
        let other: Interaction = serde_json::from_value(json!({ "type": "view_closed", "user": {} })).unwrap();
        assert!(matches!(other, Interaction::Other));
    }
}
