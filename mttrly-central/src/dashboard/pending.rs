//! `GET /`: the actions waiting for a decision, each with everything a human decides on and
//! whether *you* may decide it (and if not, why), with the Approve and Reject forms when you may.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::approval::SecondFactor;
use mttrly_core::{MttrlyError, Source, display};

use super::layout::{self, Live};
use super::show::{self, Names};
use crate::app_state::AppState;
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::signin::web::SignedIn;

/// The most pending actions one page shows (the per-server cap keeps real lists far shorter).
const MAX_SHOWN: u32 = 500;

/// One pending action as this person sees it.
pub(super) struct Card {
    /// The action.
    pub action: ActionRow,
    /// Approvals recorded so far.
    pub received: u32,
    /// Whether this person may approve it through the dashboard now, or why not.
    pub may_approve: Result<(), MttrlyError>,
    /// Whether approving asks for a fresh TOTP code.
    pub totp: bool,
    /// A file write's diff against the current file ([`super::diff`]), under "Exactly what runs".
    pub diff: Option<Markup>,
}

/// Whether `owner` may approve `action` here, and whether the rule asks for a code.
pub(super) async fn judge(
    state: &AppState,
    owner: &TokenOwner,
    action: ActionRow,
    received: u32,
) -> Result<Card, MttrlyError> {
    let checked =
        crate::actions::approval_check_counted(&state.central, owner, &action, Source::Dashboard, received).await;
    let may_approve = match checked {
        Err(e) if e.code() == mttrly_core::ErrorCode::InternalError => return Err(e),
        other => other,
    };
    let totp = crate::actions::rule_for(&state.central, &action).second_factor == SecondFactor::Totp;
    Ok(Card { action, received, may_approve, totp, diff: None })
}

/// The account's people by id.
pub(super) async fn names(state: &AppState, owner: &TokenOwner) -> Result<Names, MttrlyError> {
    let users = state.central.db.account(&owner.account_id).users().list().await?;
    Ok(users.into_iter().map(|u| (u.id, u.name)).collect())
}

async fn gather(state: &AppState, signed: &SignedIn) -> Result<(Vec<Card>, Names), MttrlyError> {
    let owner = super::owner(state, signed).await?;
    let (rows, counts) =
        state.central.db.account(&owner.account_id).actions().pending_with_approvals(None, MAX_SHOWN).await?;
    let now = crate::db::now_ms();
    let mut cards = Vec::with_capacity(rows.len());
    for action in rows.into_iter().filter(|a| a.expires_at > now) {
        let received = counts.get(&action.id).copied().unwrap_or(0);
        cards.push(judge(state, &owner, action, received).await?);
    }
    cards.sort_by_key(|c| c.action.expires_at);
    let rows: Vec<&ActionRow> = cards.iter().map(|c| &c.action).collect();
    let diffs =
        super::diff::for_actions(&state.central, &state.file_readings, &owner.account_id, owner.role, &rows).await;
    for (card, diff) in cards.iter_mut().zip(diffs) {
        card.diff = diff;
    }
    Ok((cards, names(state, &owner).await?))
}

/// `GET /`.
pub(super) async fn page(State(state): State<AppState>, signed: SignedIn, headers: HeaderMap) -> Response {
    let fragment = layout::wants_fragment(&headers);
    match gather(&state, &signed).await {
        Ok((cards, names)) => {
            let main = list(&cards, &names, &signed.csrf, signed.role.may_decide());
            layout::page(StatusCode::OK, &signed, "Pending actions", &Live::Pending, fragment, &main)
        }
        Err(e) => layout::failed(&signed, &Live::Pending, fragment, &e),
    }
}

/// The list.
pub(super) fn list(cards: &[Card], names: &Names, csrf: &str, may_decide: bool) -> Markup {
    html! {
        h1 { "Pending actions" }
        @if cards.is_empty() {
            p.empty { "Nothing waits for a decision." }
        }
        @for c in cards {
            (card(c, names, csrf, may_decide, true))
        }
    }
}

/// One action waiting for a decision: the facts central owns first, the assistant's words last
/// and labelled, then what this person can do. `linked`: the heading links to the action's page.
pub(super) fn card(c: &Card, names: &Names, csrf: &str, may_decide: bool, linked: bool) -> Markup {
    let a = &c.action;
    let description = display::text(&a.description);
    html! {
        article.action #(format!("action-{}", a.id)) data-sha256=(a.content_sha256) {
            h2 {
                @if linked { a href=(super::action_path(&a.id)) { (description) } } @else { (description) }
                " " span.env.(a.environment.as_str()) { (a.environment.as_str()) }
            }
            dl.facts {
                dt { "Server" } dd { (display::text(&a.server_name)) " (" (a.environment.as_str()) ")" }
                dt { "Action" } dd { (a.content.action_type().as_str()) " " code { (a.id) } }
                dt { "Exactly what runs" } dd { (show::content(&a.content)) @if let Some(diff) = &c.diff { (diff) } }
                dt { "Content SHA-256" } dd { code.hash { (a.content_sha256) } }
                dt { "Requested by" } dd { (show::principal(&a.requested_by, names)) " via " (a.requested_via.as_str()) }
                dt { "Approvals" } dd { (c.received) " of " (a.approvals_required) " received" }
                dt { "Expires" } dd { (show::expiry(a.expires_at)) }
                @if c.totp {
                    dt { "Second factor" } dd { "approving asks for a fresh code from your authenticator app" }
                }
            }
            (show::reason(a.reason.as_deref()))
            (decide(c, csrf, may_decide))
        }
    }
}

/// The forms, or why there are none.
fn decide(c: &Card, csrf: &str, may_decide: bool) -> Markup {
    let id = &c.action.id;
    html! {
        div.decide {
            @match &c.may_approve {
                Ok(()) => {
                    form.approve method="post" action=(format!("/actions/{id}/approve")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="seen_sha256" value=(c.action.content_sha256);
                        @if c.totp {
                            label {
                                "Code from your authenticator app "
                                input type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                                    required maxlength="32";
                            }
                        }
                        button.approve type="submit" { "Approve" }
                    }
                }
                Err(why) => {
                    p.cannot { "You cannot approve this: " (why.message()) }
                }
            }
            @if may_decide {
                form.reject method="post" action=(format!("/actions/{id}/reject")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Reason " input type="text" name="reason" maxlength="500"; }
                    button.reject type="submit" { "Reject" }
                }
            }
        }
    }
}
