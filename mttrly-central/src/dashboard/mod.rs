//! The web dashboard central serves itself (issue 14): the pending actions at `/`, an action's
//! page at `/actions/{id}` with Approve and Reject, the servers at `/servers`, and `/events`, the
//! live feed that keeps an open page current.
//!
//! Safe by construction:
//! - HTML comes from `maud` templates, checked at compile time, every interpolation escaped; text
//!   an assistant or a server chose goes through `mttrly_core::display` first as well, so ANSI
//!   escapes, CR, bidi overrides and other invisible characters show as visible escapes, exactly
//!   as the CLI and chat show them.
//! - Every response carries a strict Content-Security-Policy (no inline script or style, only this
//!   site's own assets, which are built into the binary), no framing, no referrer, no caching
//!   ([`layout::respond`]).
//! - Every state change is a POST checked twice before anything else: the browser's `Origin` /
//!   `Sec-Fetch-Site` must be this site's, and the form must carry the session's CSRF token
//!   (`signin::web::check_csrf`).
//! - Decisions go through the action engine like every other channel (`actions::approve` and
//!   `actions::reject` with source `dashboard`): the same rules, four eyes, roles, second factor,
//!   and the content hash the page showed (`seen_sha256`), so a page showing stale content
//!   cannot approve changed content.
//!
//! Every page shows its facts without JavaScript; `assets/app.js` only keeps them live: it listens
//! to `/events` and reloads the page's `<main>` as a fragment (`X-Mttrly-Fragment: 1`).

mod action;
mod admin;
mod alerts;
mod assets;
mod audit;
mod chart;
mod diff;
mod investigation;
mod layout;
mod live;
mod pending;
mod server;
mod servers;
mod show;

use axum::Router;
use axum::routing::{get, post};
use mttrly_core::{ErrorCode, MttrlyError, Principal, ToolSurface};

use crate::app_state::AppState;
use crate::db::accounts::TokenOwner;
use crate::signin::web::SignedIn;

pub(crate) use self::diff::Readings;

/// The path of action `id`'s page (`/actions/{id}`): the one place that knows it, for the
/// dashboard's own links and for the absolute links chat messages and IDE approvals carry.
pub(crate) fn action_path(id: &mttrly_core::ids::ActionId) -> String {
    format!("/actions/{id}")
}

/// The dashboard's routes (merged into central's HTTP router).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pending::page))
        .route("/actions/{id}", get(action::page))
        .route("/actions/{id}/approve", post(action::approve))
        .route("/actions/{id}/reject", post(action::reject))
        .route("/servers", get(servers::page))
        .route("/servers/{id}", get(server::page))
        .route("/alerts", get(alerts::page))
        .route("/audit", get(audit::page))
        .route("/audit.csv", get(audit::csv))
        .route("/audit.json", get(audit::json))
        .route("/admin", get(admin::page))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke))
        .route("/admin/links/unlink", post(admin::unlink))
        .route("/investigations", get(investigation::list))
        .route("/investigations/{id}", get(investigation::page))
        .route("/investigations/{id}/grant", post(investigation::grant))
        .route("/investigations/{id}/revoke", post(investigation::revoke))
        .route("/investigations/{id}/close", post(investigation::close))
        .route("/events", get(live::events))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::JS_PATH, get(assets::js))
}

/// The signed-in person as the action engine knows a caller: themselves (a human principal),
/// with their role now, and every tool within reach (a person in their browser is not a narrowed
/// token). Decisions count against the session, not any token.
async fn owner(state: &AppState, signed: &SignedIn) -> Result<TokenOwner, MttrlyError> {
    let plan = state
        .central
        .db
        .account(&signed.account_id)
        .plan()
        .await?
        .ok_or_else(|| MttrlyError::new(ErrorCode::Forbidden, "this account no longer exists"))?;
    Ok(TokenOwner {
        account_id: signed.account_id.clone(),
        plan,
        principal: Principal::Human { user_id: signed.user_id.clone(), name: signed.name.clone() },
        role: signed.role,
        user_name: signed.name.clone(),
        scope: ToolSurface::ALL,
        credential: signed.session_key(),
    })
}
