//! `GET/POST /device`: where a signed-in person approves a `mttrly-cli login`.
//!
//! Three steps, each a page: type the code (prefilled from `?code=`, the complete URL); see which
//! client asked, from which host and address, and when, next to the code — a code someone else
//! started and sent you ("enter WDJB-MJHT to fix your access") shows a host you do not know — and
//! choose Allow or Deny; the outcome. Every POST checks the site's origin and the session's CSRF
//! token; a wrong code counts against the person ([`super::WRONG_CODES_ALLOWED`]). Any human with
//! a session may approve: the token issued is theirs, with their role (a viewer's login yields a
//! viewer's token). Assistants have no sessions, so never reach this page.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{Decider, LookupRefusal};
use crate::app_state::AppState;
use crate::db::device::PendingLogin;
use crate::signin::web::{SignedIn, check_csrf, check_origin, csrf_input, internal_error, refused};
use crate::web::page::{escape, page};

/// `?code=`.
#[derive(Deserialize)]
pub(crate) struct CodeQuery {
    #[serde(default)]
    code: String,
}

/// What the page's forms send.
#[derive(Deserialize)]
pub(crate) struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    /// Absent on the first step (look the code up); `allow` or `deny` on the second.
    #[serde(default)]
    decision: String,
}

/// The longest code field kept for re-display (a code is 9 characters).
const MAX_TYPED: usize = 32;

fn decider(signed: &SignedIn) -> Decider {
    Decider { account_id: signed.account_id.clone(), user_id: signed.user_id.clone(), name: signed.name.clone() }
}

/// The code form, with an error when the last try failed.
fn code_form(signed: &SignedIn, typed: &str, error: Option<(StatusCode, &str)>) -> Response {
    let typed: String = typed.chars().take(MAX_TYPED).collect();
    let err = error.map(|(_, e)| format!("<p class=\"err\">{}</p>", escape(e))).unwrap_or_default();
    let body = format!(
        "<p>Signed in as <b>{name}</b>. Type the code <code>mttrly-cli login</code> printed in your terminal.</p>{err}\
         <form method=\"post\" action=\"/device\">{csrf}\
         <label>Code<br><input name=\"code\" value=\"{typed}\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" placeholder=\"WDJB-MJHT\" required></label><br>\
         <button>Continue</button></form>",
        name = escape(&signed.name),
        csrf = csrf_input(signed),
        typed = escape(&typed),
    );
    page(error.map_or(StatusCode::OK, |(status, _)| status), "Sign in a device", &body)
}

/// How long ago, for people.
fn ago(ms: i64) -> String {
    let secs = (crate::db::now_ms() - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s ago"),
        _ => format!("{} min ago", secs / 60),
    }
}

/// The confirmation: who asks, from where, and Allow / Deny.
fn confirm(signed: &SignedIn, login: &PendingLogin) -> Response {
    let body = format!(
        "<p><b>{client}</b> on <b>{host}</b> asks to sign in as <b>{name}</b> ({role}). It would get a token \
         that acts as you in the CLI until you revoke it.</p>\
         <table><tr><td>Code</td><td><code>{code}</code></td></tr>\
         <tr><td>Host (as the client says)</td><td><code>{host}</code></td></tr>\
         <tr><td>Address central saw</td><td><code>{peer}</code></td></tr>\
         <tr><td>Started</td><td>{started}</td></tr></table>\
         <p>Allow it only if you just ran <code>mttrly-cli login</code> on that computer and it shows this \
         code. If someone sent you this code, deny it.</p>\
         <form method=\"post\" action=\"/device\">{csrf}<input type=\"hidden\" name=\"code\" value=\"{code}\">\
         <button name=\"decision\" value=\"allow\">Allow</button> \
         <button name=\"decision\" value=\"deny\">Deny</button></form>",
        client = escape(&login.client_name),
        host = escape(&login.client_host),
        peer = escape(&login.peer),
        code = escape(&login.user_code),
        name = escape(&signed.name),
        role = escape(signed.role.as_str()),
        started = ago(login.created_at),
        csrf = csrf_input(signed),
    );
    page(StatusCode::OK, "Allow this sign-in?", &body)
}

/// GET: the code form (prefilled from `?code=`). Not signed in: the extractor sends the browser
/// to `/signin?next=/device?code=…`, which comes back here.
pub(crate) async fn show(signed: SignedIn, Query(q): Query<CodeQuery>) -> Response {
    code_form(&signed, &q.code, None)
}

/// POST: look the code up (first step) or decide (second step).
pub(crate) async fn submit(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Response {
    if let Err(e) = check_origin(&state.site, &headers).and_then(|()| check_csrf(&signed, &form.csrf)) {
        return refused(&e);
    }
    let who = decider(&signed);
    let login = match super::lookup(&state.central, &who, &form.code).await {
        Ok(Ok(login)) => login,
        Ok(Err(LookupRefusal::NoSuchCode)) => {
            return code_form(
                &signed,
                &form.code,
                Some((
                    StatusCode::NOT_FOUND,
                    "No login is waiting with that code: it may be mistyped, expired (codes last 10 minutes) or \
                     already used. Run `mttrly-cli login` again for a new one.",
                )),
            );
        }
        Ok(Err(LookupRefusal::TooManyWrong(wait))) => {
            let why = format!("Too many wrong codes. Try again in {} minutes.", wait.div_ceil(60));
            return code_form(&signed, "", Some((StatusCode::TOO_MANY_REQUESTS, &why)));
        }
        Err(e) => return internal_error(&e),
    };
    let approve = match form.decision.as_str() {
        "" => return confirm(&signed, &login),
        "allow" => true,
        "deny" => false,
        _ => return code_form(&signed, &form.code, Some((StatusCode::BAD_REQUEST, "Choose Allow or Deny."))),
    };
    match super::decide(&state.central, &who, &login, approve).await {
        Ok(true) if approve => page(
            StatusCode::OK,
            "Signed in",
            &format!(
                "<p>Done: <b>{}</b> on <b>{}</b> gets its token in a few seconds. You can close this page.</p>\
                 <p>It is listed in <code>mttrly-cli tokens list</code>; <code>mttrly-cli tokens revoke ID</code> \
                 ends it.</p>",
                escape(&login.client_name),
                escape(&login.client_host)
            ),
        ),
        Ok(true) => page(
            StatusCode::OK,
            "Denied",
            "<p>Denied: that login gets no token. If you did not start it, someone tried to get a token through \
             you; nothing was given.</p>",
        ),
        Ok(false) => code_form(
            &signed,
            "",
            Some((StatusCode::CONFLICT, "That login is no longer waiting (it expired or was decided).")),
        ),
        Err(e) => internal_error(&e),
    }
}
