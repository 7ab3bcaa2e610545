//! `/admin`: the account's people, open invite links, API tokens and OAuth grants, linked chat
//! accounts and the effective approval rules, for admins. Two buttons change anything: **Revoke**
//! (`POST /admin/tokens/{id}/revoke`) and **Unlink** (`POST /admin/links/unlink`).
//!
//! Both go through the code the CLI's gRPC calls take, with source `dashboard`:
//! `tokens::revoke_from` (the auth cache forgets an API token at once, the chat links made with
//! it end in the same transaction, and an OAuth grant's tokens are never cached, so the next
//! request of any open session is refused) and `chat::links::unlink_from`. Each is audited as the
//! CLI's is (`RevokeToken`, `UnlinkChat`), refused or not.
//!
//! Who may: an admin, judged on every request. [`SignedIn`] is read from the session's row
//! joined to the user's row each time (`signin::web::current`), so a person demoted a moment ago
//! gets 403 from the page they still have open, and a removed person's session (or one ended
//! at sign-out) is no session at all. Every POST is checked first for this site's origin and the
//! session's CSRF token (`check_origin`, `check_csrf`), exactly as an action's decision forms are.
//!
//! **No second-factor code is asked for either button.** `crate::users` asks for the calling
//! admin's fresh code where a change would let an admin credential mint or keep power past a
//! person a second factor protects (adding an admin or a token user, raising to admin,
//! re-inviting, lowering or removing a factor-holding admin). Revoking a token or a grant and
//! unlinking a chat account only take authority away: nothing is minted, nobody is out-ranked
//! (the owner signs in again and makes a new token; their own factor is untouched), and they are
//! what an admin does fast when a credential leaks. The CLI's `tokens revoke` and
//! `users unlink` ask for no code for the same reason; a page that asked would only slow the
//! answer to a leak. Role changes, invites and removals, which do need the code, are not on this
//! page: they stay with `mttrly-cli users`.
//!
//! The page shows removed people too, marked removed with the time (the audit log and old actions
//! still name them). Secrets never appear: not an invite link, not a token, only public ids.

mod gather;
mod render;

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use mttrly_core::{ChatProvider, ErrorCode, MttrlyError, Role, Source};
use serde::Deserialize;

use super::layout::{self, Live};
use crate::app_state::AppState;
use crate::db::accounts::TokenOwner;
use crate::signin::web::{SignedIn, check_csrf, check_origin};

/// What a Revoke form sends.
#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

/// What an Unlink form sends.
#[derive(Deserialize)]
pub(super) struct UnlinkForm {
    #[serde(default)]
    csrf: String,
    /// The person whose link it is.
    #[serde(default)]
    user: String,
    /// `telegram` or `slack`.
    #[serde(default)]
    provider: String,
}

/// What the page says happened, after a button's redirect (post/redirect/get).
#[derive(Deserialize, Default)]
pub(super) struct Done {
    /// The public id of the credential just revoked.
    revoked: Option<String>,
    /// The provider of the link just removed.
    unlinked: Option<String>,
    /// Whose link it was.
    of: Option<String>,
}

/// The refusal for anyone but an admin.
fn not_admin() -> MttrlyError {
    MttrlyError::new(ErrorCode::Forbidden, "this page is for the account's admins")
}

/// The page a non-admin gets, whatever they asked for.
fn forbidden(signed: &SignedIn, fragment: bool) -> Response {
    let main = html! {
        h1 { "Admin" }
        p.err role="alert" {
            "This page is for the account's admins. You are signed in as " (signed.role.as_str())
            "; an admin can change that with " code { "mttrly-cli users set-role" } "."
        }
    };
    layout::page(StatusCode::FORBIDDEN, signed, "Admin", &Live::Admin, fragment, &main)
}

/// `GET /admin`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fragment = layout::wants_fragment(&headers);
    // A query the page cannot read says nothing; the facts are shown all the same.
    let done: Done = query.and_then(|q| serde_urlencoded::from_str(&q).ok()).unwrap_or_default();
    let notice = render::notice(&done);
    show(&state, &signed, fragment, notice).await
}

/// The page with `notice` (a line saying what was done, or a refusal) above it.
async fn show(state: &AppState, signed: &SignedIn, fragment: bool, notice: render::Notice) -> Response {
    if signed.role != Role::Admin {
        return forbidden(signed, fragment);
    }
    let facts = async { gather::gather(state, &super::owner(state, signed).await?).await }.await;
    match facts {
        Ok(facts) => {
            let status = notice.status();
            let main = render::page(&facts, &signed.csrf, &notice);
            layout::page(status, signed, "Admin", &Live::Admin, fragment, &main)
        }
        Err(e) => layout::failed(signed, &Live::Admin, fragment, &e),
    }
}

/// What every button checks before anything changes: this site's origin, the session's CSRF
/// token, and that the person is an admin now (their role as of this request). Returns them as a
/// caller of the app's operations.
async fn checked(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<TokenOwner, MttrlyError> {
    check_origin(&state.site, headers)?;
    check_csrf(signed, csrf)?;
    if signed.role != Role::Admin {
        return Err(not_admin());
    }
    super::owner(state, signed).await
}

/// The answer to a button: back to the page saying what was done, or the page with the refusal
/// (a non-admin gets the admins-only page, nothing else).
async fn answer(state: &AppState, signed: &SignedIn, result: Result<String, MttrlyError>) -> Response {
    match result {
        Ok(query) => layout::back_to(&format!("/admin?{query}")),
        Err(e) if signed.role != Role::Admin && e.code() == ErrorCode::Forbidden => {
            tracing::info!(user = %signed.name, "a non-admin's admin form was refused");
            forbidden(signed, false)
        }
        Err(e) => show(state, signed, false, render::Notice::Refused(layout::status_of(&e), e)).await,
    }
}

/// `POST /admin/tokens/{id}/revoke`: an API token (`tkn_…`) or an OAuth grant (`oauth_…`) of
/// this account, through `tokens::revoke_from`; another account's id is `NOT_FOUND`, as a
/// missing one.
pub(super) async fn revoke(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    let result = async {
        let owner = checked(&state, &signed, &headers, &form.csrf).await?;
        crate::tokens::revoke_from(&state.central, &owner, &id, Source::Dashboard).await?;
        Ok(format!("revoked={}", crate::web::page::urlencode(&id)))
    }
    .await;
    answer(&state, &signed, result).await
}

/// `POST /admin/links/unlink`: `user`'s link to `provider`, through `chat::links::unlink_from`.
pub(super) async fn unlink(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    Form(form): Form<UnlinkForm>,
) -> Response {
    let result = async {
        let owner = checked(&state, &signed, &headers, &form.csrf).await?;
        let provider: ChatProvider = form.provider.trim().to_ascii_lowercase().parse().map_err(|_| {
            MttrlyError::new(ErrorCode::ValidationError, "unknown chat provider: telegram or slack")
                .with_detail("provider", form.provider.as_str())
        })?;
        let user = form.user.trim();
        crate::users::check_name(user)?;
        let removed =
            crate::chat::links::unlink_from(&state.central, &owner, provider, Some(user), Source::Dashboard).await?;
        if !removed {
            return Err(MttrlyError::new(
                ErrorCode::NotFound,
                format!("`{user}` has no {} link (already removed?)", provider.display_name()),
            ));
        }
        let user = crate::web::page::urlencode(user);
        Ok(format!("unlinked={}&of={user}", provider.as_str()))
    }
    .await;
    answer(&state, &signed, result).await
}
