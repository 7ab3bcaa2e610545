//! `/actions/{id}`: one action's whole life (created, prompts, decisions, execution, result) from
//! its audit rows and its record, and the decision forms while it waits. `POST …/approve` and
//! `POST …/reject` decide through the action engine with source `dashboard`, then redirect back
//! to the page (post/redirect/get), which shows the outcome; a refusal is shown on the page
//! itself, with the engine's words.

use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::action::ActionState;
use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::ids::ActionId;
use mttrly_core::tools::actions::{AuditEntry, Decision};
use mttrly_core::{ErrorCode, MttrlyError, Source, display};
use serde::Deserialize;

use super::layout::{self, Live};
use super::pending::{self, Card};
use super::show::{self, Names};
use crate::app_state::AppState;
use crate::db::audit::AuditFilter;
use crate::signin::web::SignedIn;

/// The most audit rows an action's page shows.
const MAX_ROWS: u32 = 500;

/// What the approve form sends.
#[derive(Deserialize)]
pub(super) struct ApproveForm {
    #[serde(default)]
    csrf: String,
    /// The content hash the page showed: approval is bound to it.
    #[serde(default)]
    seen_sha256: String,
    /// A fresh TOTP (or recovery) code, when the rule asks.
    #[serde(default)]
    code: String,
}

/// What the reject form sends.
#[derive(Deserialize)]
pub(super) struct RejectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Everything the page shows.
struct Life {
    card: Card,
    decisions: Vec<mttrly_core::tools::actions::ApprovalRecord>,
    rows: Vec<AuditEntry>,
    names: Names,
    /// What it printed so far, while it runs.
    running: Option<crate::agents::output::Shown>,
    /// The bypass it ran under instead of a per-command approval, if it did.
    bypass: Option<mttrly_core::tools::investigations::RanUnderBypass>,
}

fn not_found(id: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::ActionNotFound, format!("no action {} in this account", display::exact(id)))
}

async fn gather(state: &AppState, signed: &SignedIn, id: &ActionId) -> Result<Life, MttrlyError> {
    let owner = super::owner(state, signed).await?;
    let action = crate::actions::load(&state.central, &owner, id).await?;
    let view = crate::actions::view(&state.central, &owner, id).await?;
    let received =
        u32::try_from(view.approvals.iter().filter(|d| d.decision == Decision::Approve).count()).unwrap_or(u32::MAX);
    let mut card = pending::judge(state, &owner, action, received).await?;
    // A bypassed run is stored needing one approval (the agent runs it as human-approved); the
    // grant was that approval, so the card must not claim one is missing.
    card.action.approvals_required = view.approvals_required;
    card.diff =
        super::diff::for_actions(&state.central, &state.file_readings, &owner.account_id, owner.role, &[&card.action])
            .await
            .pop()
            .flatten();
    // A decision a moment ago may still be on its way into the audit log.
    state.central.audit.flush().await;
    let filter = AuditFilter { subject: Some(id.to_string()), limit: MAX_ROWS, ..AuditFilter::default() };
    let mut rows = state.central.db.account(&owner.account_id).audit().list(&filter).await?;
    rows.reverse();
    let running = matches!(card.action.status, ActionState::Approved | ActionState::Running)
        .then(|| state.central.agents.live_output().shown(&owner.account_id, id))
        .flatten();
    Ok(Life {
        card,
        decisions: view.approvals,
        rows,
        names: pending::names(state, &owner).await?,
        running,
        bypass: view.ran_under_bypass,
    })
}

/// The page for action `id`, with `notice` (a refusal) above it.
async fn render(
    state: &AppState,
    signed: &SignedIn,
    raw_id: &str,
    fragment: bool,
    notice: Option<(StatusCode, &MttrlyError)>,
) -> Response {
    let live = Live::Action(display::exact(raw_id).into_owned());
    let life = match ActionId::parse(raw_id) {
        Ok(id) => gather(state, signed, &id).await,
        Err(_) => Err(not_found(raw_id)),
    };
    let life = match life {
        Ok(life) => life,
        Err(e) if e.code() == ErrorCode::ActionNotFound => {
            let main = html! { h1 { "No such action" } p.err { (e.message()) } };
            return layout::page(StatusCode::NOT_FOUND, signed, "No such action", &live, fragment, &main);
        }
        Err(e) => return layout::failed(signed, &live, fragment, &e),
    };
    let status = notice.map_or(StatusCode::OK, |(s, _)| s);
    let main = html! {
        @if let Some((_, e)) = notice {
            p.err role="alert" data-keep { "Refused: " (e.message()) }
        }
        (body(&life, &signed.csrf, signed.role.may_decide()))
    };
    layout::page(status, signed, "Action", &live, fragment, &main)
}

fn body(life: &Life, csrf: &str, may_decide: bool) -> Markup {
    let a = &life.card.action;
    let pending = a.status == ActionState::PendingApproval;
    html! {
        p.status { "Status: " strong.state.(a.status.as_str()) { (a.status.as_str()) } }
        (pending::card(&life.card, &life.names, csrf, may_decide && pending, false))
        section {
            h2 { "Decisions" }
            @if let Some(b) = &life.bypass {
                p.bypassed {
                    "No per-command approval: it ran under bypass "
                    a href=(crate::investigations::page_path(&b.investigation_id)) { (b.bypass_id.as_str()) }
                    @if let Some(by) = &b.granted_by { ", granted by " (show::principal(by, &life.names)) }
                    @if let Some(at) = b.granted_at { " at " (show::time(at.as_millisecond())) }
                    " with a fresh second factor."
                }
            } @else if life.decisions.is_empty() { p { "None yet." } }
            ul.decisions {
                @for d in &life.decisions {
                    li {
                        (show::principal(&d.decided_by, &life.names)) " "
                        strong { (match d.decision { Decision::Approve => "approved", Decision::Reject => "rejected" }) }
                        " via " (d.channel.as_str()) " at " (show::time(d.decided_at.as_millisecond()))
                        @if let Some(reason) = d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                            ": " q { (display::text(reason)) }
                        }
                        @if d.approver_added_by_requester {
                            " " span.warn { "(added or re-invited by the requester's human)" }
                        }
                    }
                }
            }
        }
        @if let Some(out) = &life.running {
            section.running {
                h2 { "Output so far" }
                p.note {
                    "Live while it runs (redacted"
                    @if out.cut { "; only the last " (crate::agents::output::MAX_TAIL / 1024) " KiB" }
                    "); the whole output is stored with the result."
                }
                pre.output { (display::lines(&out.text)) }
            }
        }
        @if let Some(result) = &a.result {
            section.result {
                h2 { "Result" }
                dl.facts {
                    dt { "Exit code" } dd { (result.exit_code.map_or_else(|| "none".to_owned(), |c| c.to_string())) }
                    dt { "Ran" } dd { (show::time(result.started_at.as_millisecond())) " for " (result.duration_ms) " ms" }
                    @if let Some(error) = &result.error {
                        dt { "Error" } dd { (display::text(&error.message)) }
                    }
                }
                h3 { "Output" @if result.truncated { " (cut at the plan's limit)" } }
                pre.output { (display::lines(&result.output)) }
            }
        }
        section {
            h2 { "Its life" }
            ol.life {
                @for row in &life.rows {
                    li {
                        (show::time(row.at.as_millisecond())) " "
                        strong { (row.kind.as_str()) } " by " (actor(&row.actor, &life.names)) " via " (row.source.as_str())
                        @if let Some(decision) = row.parameters.get("decision").and_then(|d| d.as_str()) {
                            " — " (display::text(decision))
                        }
                        @if let AuditOutcome::Error { code } = &row.outcome {
                            " " span.err { "(refused: " (code.as_str()) ")" }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn actor(actor: &AuditActor, names: &Names) -> String {
    match actor {
        AuditActor::Human { name, .. } => display::text(name).into_owned(),
        AuditActor::Assistant { client_name, on_behalf_of, .. } => {
            let human = names.get(on_behalf_of).map_or_else(|| on_behalf_of.to_string(), Clone::clone);
            format!("assistant {} for {}", display::text(client_name), display::text(&human))
        }
        AuditActor::Agent { server_id } => format!("the agent of {server_id}"),
        AuditActor::System => "central".to_owned(),
    }
}

/// `GET /actions/{id}`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    render(&state, &signed, &id, layout::wants_fragment(&headers), None).await
}

/// The answer to a decision: back to the page, or the page with the refusal.
async fn answer(state: &AppState, signed: &SignedIn, id: &str, result: Result<(), MttrlyError>) -> Response {
    match result {
        Ok(()) => layout::back_to(&format!("/actions/{}", crate::web::page::urlencode(id))),
        Err(e) => render(state, signed, id, false, Some((layout::status_of(&e), &e))).await,
    }
}

/// The action a decision form names, behind the shared form guard.
async fn checked(
    state: &AppState,
    signed: &SignedIn,
    id: &str,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(ActionId, crate::db::accounts::TokenOwner), MttrlyError> {
    layout::form_guard(state, signed, headers, csrf, id, |raw| ActionId::parse(raw).map_err(|_| not_found(raw))).await
}

/// `POST /actions/{id}/approve`.
pub(super) async fn approve(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ApproveForm>,
) -> Response {
    let result = async {
        let (action, owner) = checked(&state, &signed, &id, &headers, &form.csrf).await?;
        let code = Some(form.code.trim()).filter(|c| !c.is_empty());
        // Always bound to what the page showed: an empty hash matches nothing.
        let seen = Some(form.seen_sha256.trim());
        crate::actions::approve(&state.central, &owner, &action, seen, code, Source::Dashboard, Duration::ZERO)
            .await
            .map(|_| ())
    }
    .await;
    answer(&state, &signed, &id, result).await
}

/// `POST /actions/{id}/reject`.
pub(super) async fn reject(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<RejectForm>,
) -> Response {
    let result = async {
        let (action, owner) = checked(&state, &signed, &id, &headers, &form.csrf).await?;
        let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
        crate::actions::reject(&state.central, &owner, &action, reason, Source::Dashboard).await.map(|_| ())
    }
    .await;
    answer(&state, &signed, &id, result).await
}
