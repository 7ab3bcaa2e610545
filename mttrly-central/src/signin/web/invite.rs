//! The invite link's pages: `GET /invite/{secret}` shows the step the invite is at (choose a
//! password, then enrol the TOTP secret), `POST /invite/{secret}` takes it. The rules are in
//! `crate::signin::invite`; the forms carry the pre-session CSRF token.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mttrly_core::second_factor::{RecoveryCode, TotpSecret};
use mttrly_core::{ErrorCode, MttrlyError};
use serde::Deserialize;

use super::{
    SignInMethod, check_pre_session, internal_error, needs_https, pre_input, pre_session, refused, start_session,
    transport, with_cookie,
};
use crate::app_state::AppState;
use crate::signin::invite::{self, Open};
use crate::web::page::{escape, page};

/// What the invite forms send.
#[derive(Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
    #[serde(default)]
    code: String,
}

fn refusal_page(refusal: crate::db::people::InviteRefusal) -> Response {
    let status = match refusal {
        crate::db::people::InviteRefusal::Unknown => StatusCode::NOT_FOUND,
        crate::db::people::InviteRefusal::NotReady => StatusCode::CONFLICT,
        _ => StatusCode::GONE,
    };
    page(status, "Invite not usable", &format!("<p>{}</p>", escape(invite::refusal_text(refusal))))
}

fn password_step(open: &Open, secret: &str, token: &str, error: Option<&str>) -> Response {
    let error = error.map(|e| format!("<p class=\"err\">{}</p>", escape(e))).unwrap_or_default();
    let body = format!(
        "<p>Welcome, <b>{name}</b>. Choose a password for mttrly: at least {min} characters (a passphrase of a few \
         words is best), not containing your user name. Next you will add a second factor with an authenticator app.</p>\
         {error}<form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"step\" value=\"password\">\
         <p><label>Password<br><input type=\"password\" name=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required></label></p>\
         <p><label>The same again<br><input type=\"password\" name=\"password_again\" autocomplete=\"new-password\" minlength=\"{min}\" required></label></p>\
         <button type=\"submit\">Continue</button></form>",
        name = escape(&open.row.name),
        min = crate::signin::password::MIN_CHARS,
        action = escape(&format!("{}{secret}", invite::PATH)),
        csrf = pre_input(token),
    );
    page(if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST }, "Set your password", &body)
}

/// The otpauth URI as an inline SVG QR code (no separate resource, so the page's CSP stays shut).
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).build();
            // The XML declaration has no place inside HTML.
            svg.find("<svg").map_or(svg.clone(), |at| svg[at..].to_owned())
        }
        Err(e) => {
            tracing::warn!(error = %e, "the enrolment URI does not fit a QR code");
            String::new()
        }
    }
}

/// The secret in groups of four, as people type it into an app.
fn grouped(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

fn code_step(
    state: &AppState,
    open: &Open,
    secret: &str,
    totp: &TotpSecret,
    token: &str,
    error: Option<&str>,
) -> Response {
    let issuer = crate::second_factor::issuer(&state.central);
    let uri = totp.otpauth_uri(&issuer, &open.row.name);
    let error = error.map(|e| format!("<p class=\"err\">{}</p>", escape(e))).unwrap_or_default();
    let body = format!(
        "<p>Now add a second factor. Scan this code with an authenticator app (any TOTP app: 1Password, Aegis, \
         Google Authenticator, …), or type the key into it by hand.</p>{qr}\
         <p>Key: <code>{key}</code><br>Account: <code>{name}</code>, issuer <code>{issuer}</code></p>\
         {error}<form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"step\" value=\"code\">\
         <p><label>The six-digit code the app shows<br><input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
         pattern=\"[0-9 ]{{6,7}}\" required></label></p><button type=\"submit\">Confirm</button></form>",
        qr = qr_svg(&uri),
        key = escape(&grouped(&totp.to_base32())),
        name = escape(&open.row.name),
        issuer = escape(&issuer),
        action = escape(&format!("{}{secret}", invite::PATH)),
        csrf = pre_input(token),
    );
    page(if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST }, "Add a second factor", &body)
}

fn done_page(name: &str, codes: &[RecoveryCode]) -> Response {
    let list = codes.iter().fold(String::new(), |mut list, c| {
        list.push_str(&format!("<li><code>{}</code></li>", escape(&c.to_string())));
        list
    });
    let body = format!(
        "<p>You are signed in as <b>{name}</b>.</p><p>These recovery codes let you in if your phone is gone: each \
         works once, in place of a code. Keep them somewhere safe now; they are not shown again.</p><ul>{list}</ul>\
         <p><a href=\"/\">Continue</a></p>",
        name = escape(name)
    );
    page(StatusCode::OK, "All set", &body)
}

/// `GET /invite/{secret}`.
pub(crate) async fn show(State(state): State<AppState>, Path(secret): Path<String>, headers: HeaderMap) -> Response {
    let Some(transport) = transport(&state.site) else { return needs_https() };
    let open = match invite::find(&state.central, &secret).await {
        Ok(Ok(open)) => open,
        Ok(Err(refusal)) => return refusal_page(refusal),
        Err(e) => return internal_error(&e),
    };
    let (token, cookie) = pre_session(transport, &headers);
    let response = match invite::pending_secret(&state.central, &open).await {
        // An enrolment interrupted after the password step resumes where it stopped.
        Ok(Some(totp)) => code_step(&state, &open, &secret, &totp, &token, None),
        Ok(None) => password_step(&open, &secret, &token, None),
        Err(e) => internal_error(&e),
    };
    with_cookie(response, cookie)
}

/// `POST /invite/{secret}`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> Response {
    let Some(transport) = transport(&state.site) else { return needs_https() };
    if let Err(e) = check_pre_session(&state.site, transport, &headers, &form.csrf) {
        return refused(&e);
    }
    let open = match invite::find(&state.central, &secret).await {
        Ok(Ok(open)) => open,
        Ok(Err(refusal)) => return refusal_page(refusal),
        Err(e) => return internal_error(&e),
    };
    let token = form.csrf.clone();
    match form.step.as_str() {
        "password" => {
            if form.password != form.password_again {
                return password_step(&open, &secret, &token, Some("The two passwords differ."));
            }
            match invite::choose_password(&state.central, &open, &form.password).await {
                Ok(Ok(totp)) => code_step(&state, &open, &secret, &totp, &token, None),
                Ok(Err(refusal)) => refusal_page(refusal),
                Err(e) if e.code() == ErrorCode::ValidationError => {
                    password_step(&open, &secret, &token, Some(e.message()))
                }
                Err(e) => internal_error(&e),
            }
        }
        "code" => confirm(&state, &open, &secret, &headers, &form.code, &token).await,
        _ => refused(&MttrlyError::new(ErrorCode::ValidationError, "unknown step; open the invite link again")),
    }
}

async fn confirm(
    state: &AppState,
    open: &Open,
    secret: &str,
    headers: &HeaderMap,
    code: &str,
    token: &str,
) -> Response {
    let (account, user, name) = (&open.row.account_id, &open.row.user_id, &open.row.name);
    let result = invite::confirm(&state.central, open, code).await;
    let audited: Result<(), MttrlyError> = match &result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(refusal)) => Err(MttrlyError::new(ErrorCode::ValidationError, invite::refusal_text(*refusal))),
        Err(e) => Err(MttrlyError::new(e.code(), e.message())),
    };
    super::audit(state, account, user, name, "AcceptInvite", serde_json::json!({}), &audited);
    match result {
        Ok(Ok((user, codes))) => match start_session(state, headers, account, &user, SignInMethod::Invite).await {
            Ok(cookie) => with_cookie(done_page(name, &codes), Some(cookie)),
            Err(e) => internal_error(&e),
        },
        Ok(Err(refusal)) => refusal_page(refusal),
        Err(e) if e.code() == ErrorCode::AuthFailed => match invite::pending_secret(&state.central, open).await {
            Ok(Some(totp)) => code_step(state, open, secret, &totp, token, Some(e.message())),
            Ok(None) => refusal_page(crate::db::people::InviteRefusal::NotReady),
            Err(e) => internal_error(&e),
        },
        Err(e) => internal_error(&e),
    }
}
