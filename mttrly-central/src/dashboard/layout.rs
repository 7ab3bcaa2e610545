//! The page shell and the headers every dashboard response carries.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use mttrly_core::MttrlyError;

use super::assets;
use crate::signin::web::SignedIn;

/// No inline script or style, nothing from elsewhere; forms post only here; never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The request header `app.js` sends to get only a page's `<main>` (and the response header that
/// says a fragment came back, not a sign-in page after a redirect).
pub(super) const FRAGMENT_HEADER: &str = "x-mttrly-fragment";

/// Which page this is: the navigation marks it, and `app.js` reads `data-live` to know which
/// events refresh it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Live {
    /// The pending actions.
    Pending,
    /// One action's page.
    Action(String),
    /// The servers.
    Servers,
    /// One server's page (its id).
    Server(String),
    /// The alerts.
    Alerts,
    /// The audit log.
    Audit,
    /// People, tokens, grants, chat links and the approval rules (admins).
    Admin,
    /// The investigations.
    Investigations,
    /// One investigation's page (its id).
    Investigation(String),
}

impl Live {
    /// The page's own address: what `app.js` fetches again (the address bar may show a form's
    /// POST target after a refusal).
    fn url(&self) -> String {
        match self {
            Self::Pending => "/".to_owned(),
            Self::Action(id) => format!("/actions/{}", crate::web::page::urlencode(id)),
            Self::Servers => "/servers".to_owned(),
            Self::Server(id) => format!("/servers/{}", crate::web::page::urlencode(id)),
            Self::Alerts => "/alerts".to_owned(),
            Self::Audit => "/audit".to_owned(),
            Self::Admin => "/admin".to_owned(),
            Self::Investigations => "/investigations".to_owned(),
            Self::Investigation(id) => format!("/investigations/{}", crate::web::page::urlencode(id)),
        }
    }

    fn attribute(&self) -> String {
        match self {
            Self::Pending => "pending".to_owned(),
            Self::Action(id) => format!("action:{id}"),
            Self::Servers => "servers".to_owned(),
            Self::Server(id) => format!("server:{id}"),
            Self::Alerts => "alerts".to_owned(),
            Self::Audit => "audit".to_owned(),
            Self::Admin => "admin".to_owned(),
            Self::Investigations => "investigations".to_owned(),
            Self::Investigation(id) => format!("investigation:{id}"),
        }
    }
}

/// Whether the request asks for the fragment only.
pub(super) fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.get(FRAGMENT_HEADER).is_some_and(|v| v.as_bytes() == b"1")
}

/// A whole page (or only its main part when `fragment`), with the security headers.
pub(super) fn page(
    status: StatusCode,
    signed: &SignedIn,
    title: &str,
    live: &Live,
    fragment: bool,
    main: &Markup,
) -> Response {
    page_at(status, signed, title, live, &live.url(), fragment, main)
}

/// [`page`] for a page whose address carries its filters (`/audit?source=cli`): `url` is what
/// `app.js` fetches again, so a live refresh keeps them.
pub(super) fn page_at(
    status: StatusCode,
    signed: &SignedIn,
    title: &str,
    live: &Live,
    url: &str,
    fragment: bool,
    main: &Markup,
) -> Response {
    if fragment {
        let mut response = respond(status, main.clone());
        response.headers_mut().insert(FRAGMENT_HEADER, HeaderValue::from_static("1"));
        return response;
    }
    let current = |l: Live| if &l == live { Some("page") } else { None };
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mttrly" }
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                header.top {
                    nav aria-label="Dashboard" {
                        a href="/" aria-current=[current(Live::Pending)] { "Pending actions" }
                        a href="/servers" aria-current=[current(Live::Servers)] { "Servers" }
                        a href="/alerts" aria-current=[current(Live::Alerts)] { "Alerts" }
                        a href="/audit" aria-current=[current(Live::Audit)] { "Audit" }
                        a href="/investigations" aria-current=[current(Live::Investigations)] { "Investigations" }
                        @if signed.role == mttrly_core::Role::Admin {
                            a href="/admin" aria-current=[current(Live::Admin)] { "Admin" }
                        }
                    }
                    div.who {
                        span {
                            "Signed in as " b { (signed.name) } " (" (signed.role.as_str()) ", through "
                            (signed.method.as_str()) ")"
                        }
                        form.inline method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(signed.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main data-live=(live.attribute()) data-url=(url) { (main) }
            }
        }
    };
    respond(status, doc)
}

/// An HTML response with the dashboard's security headers.
pub(super) fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    secure(response.headers_mut());
    response
}

/// The answer to a form that worked: `303 See Other` back to `path` (post/redirect/get, so a
/// reload never posts twice), with the headers every dashboard response carries.
pub(super) fn back_to(path: &str) -> axum::response::Response {
    let mut r = crate::signin::web::see_other(path, None);
    secure(r.headers_mut());
    r
}

/// The headers every dashboard response carries.
pub(super) fn secure(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on a
    // form's POST, which the origin check refuses; other sites still get no referrer (a link in
    // an action's content never tells its site where it was found).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The page for an error reading central's own data (the detail goes to the log).
pub(super) fn failed(signed: &SignedIn, live: &Live, fragment: bool, e: &MttrlyError) -> Response {
    tracing::warn!(error = %mttrly_core::ErrorChain(e), "dashboard page failed");
    let main = html! {
        h1 { "Something went wrong" }
        p.err { "Central could not answer. Try again in a moment." }
    };
    page(StatusCode::INTERNAL_SERVER_ERROR, signed, "Error", live, fragment, &main)
}

/// The HTTP status of a refused request, from its error code.
pub(super) fn status_of(e: &MttrlyError) -> StatusCode {
    StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// What every state-changing form checks before an engine sees it: the request came from this
/// site (`check_origin`), carries the session's CSRF token (`check_csrf`), names a well-formed
/// id (`parse` gives the page's own "not found" otherwise), and the signed-in person is still a
/// caller, with their role as it is now. One guard for every form, so no form forgets one.
pub(super) async fn form_guard<T>(
    state: &crate::app_state::AppState,
    signed: &crate::signin::web::SignedIn,
    headers: &axum::http::HeaderMap,
    csrf: &str,
    id: &str,
    parse: impl FnOnce(&str) -> Result<T, mttrly_core::MttrlyError>,
) -> Result<(T, crate::db::accounts::TokenOwner), mttrly_core::MttrlyError> {
    crate::signin::web::check_origin(&state.site, headers)?;
    crate::signin::web::check_csrf(signed, csrf)?;
    let id = parse(id)?;
    Ok((id, super::owner(state, signed).await?))
}
