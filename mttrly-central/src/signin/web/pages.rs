//! `GET/POST /signin` and `POST /signout` (the signed-in home `GET /` is the dashboard's).
//!
//! Sign-in asks for a login, the password and a TOTP code (or a recovery code) on one form, and
//! answers every failure with the same words and status, whatever failed: an unknown name, a
//! wrong password, a wrong code, a lock.
//!
//! The login names exactly one person before any password is looked at: `ACCOUNT/NAME`, or a
//! name or e-mail that only one living user on the whole central has. A password is compared with
//! that one person's hash and nobody else's. Trying it against every account's `bob` would let a
//! tenant's admin create their own `bob`, set a guessed password, and learn from the answer
//! whether it is another tenant's bob's password, unlimited. An ambiguous or unknown login costs
//! the same one hash (the dummy) and records nothing anywhere.
//!
//! Two counters, both 5 → 15 minutes. Wrong passwords count on the password's own (so anyone who
//! knows a name can at worst hold up that person's sign-in by password, never their approvals);
//! each attempt is counted before the hash is checked and cleared by the right password, so
//! parallel guesses cannot pass the limit. Wrong codes, typed after the right password, count on
//! the second factor's (`second_factor::verify_from`).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::second_factor::Lockout;
use mttrly_core::{ErrorCode, MttrlyError, Source};
use serde::Deserialize;

use super::{
    SignInMethod, SignedIn, check_csrf, check_origin, check_pre_session, current, end_session, internal_error,
    needs_https, pre_input, pre_session, refused, safe_next, see_other, start_session, transport, with_cookie,
};
use crate::app_state::AppState;
use crate::db::people::PasswordAttempt;
use crate::web::page::{escape, page};

/// The one answer to every failed sign-in.
const FAILED: &str = "The name, password or code is wrong, or this sign-in is locked after too many attempts \
                      (it unlocks 15 minutes after the last one).";
/// Said on the sign-in page of a central that holds several accounts.
const SHARED: &str = "If your team shares this central with others, sign in as account/name.";
/// Longest name or e-mail looked up.
const MAX_LOGIN: usize = 254;

/// `?next=`.
#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// What the sign-in form sends.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

/// A form carrying only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The sign-in page. `sso` is the single sign-on link (`oidc::flow::signin_link`), above the form;
/// `shared`: the central holds more than one account (the page says how to name yours).
fn signin_page(sso: &str, shared: bool, token: &str, next: &str, login: &str, error: Option<&str>) -> Response {
    let (status, error) = match error {
        Some(e) => (StatusCode::UNAUTHORIZED, format!("<p class=\"err\">{}</p>", escape(e))),
        None => (StatusCode::OK, String::new()),
    };
    let shared = if shared { format!("<p>{SHARED}</p>") } else { String::new() };
    let body = format!(
        "{error}{sso}{shared}<form method=\"post\" action=\"/signin\">{csrf}<input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <p><label>Name or e-mail<br><input name=\"login\" value=\"{login}\" autocomplete=\"username\" required></label></p>\
         <p><label>Password<br><input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><label>Code from your authenticator app (or a recovery code)<br><input name=\"code\" autocomplete=\"one-time-code\" required></label></p>\
         <button type=\"submit\">Sign in</button></form>\
         <p>No password yet? Open the invite link an admin sent you (<code>mttrly-cli users invite NAME</code> makes a new one).</p>",
        csrf = pre_input(token),
        next = escape(next),
        login = escape(login),
    );
    page(status, "Sign in", &body)
}

/// `GET /signin`.
pub(crate) async fn signin_form(
    State(state): State<AppState>,
    Query(query): Query<NextQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(transport) = transport(&state.site) else { return needs_https() };
    let next = query.next.as_deref().and_then(safe_next).unwrap_or_else(|| "/".to_owned());
    match current(&state, &headers).await {
        Ok(Some(_)) => return see_other(&next, None),
        Ok(None) => {}
        Err(e) => return internal_error(&e),
    }
    let shared = match state.central.db.signins().shared().await {
        Ok(shared) => shared,
        Err(e) => return internal_error(&e),
    };
    let (token, cookie) = pre_session(transport, &headers);
    let sso = crate::signin::oidc::flow::signin_link(&state, &next);
    with_cookie(signin_page(&sso, shared, &token, &next, "", None), cookie)
}

/// `POST /signin`.
pub(crate) async fn signin_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let Some(transport) = transport(&state.site) else { return needs_https() };
    if let Err(e) = check_pre_session(&state.site, transport, &headers, &form.csrf) {
        return refused(&e);
    }
    let next = safe_next(&form.next).unwrap_or_else(|| "/".to_owned());
    match authenticate(&state, &form).await {
        Ok(Some((account, user))) => {
            match start_session(&state, &headers, &account, &user, SignInMethod::Password).await {
                Ok(cookie) => see_other(&next, Some(cookie)),
                Err(e) => internal_error(&e),
            }
        }
        Ok(None) => {
            let shared = match state.central.db.signins().shared().await {
                Ok(shared) => shared,
                Err(e) => return internal_error(&e),
            };
            let sso = crate::signin::oidc::flow::signin_link(&state, &next);
            signin_page(&sso, shared, &form.csrf, &next, form.login.trim(), Some(FAILED))
        }
        Err(e) => internal_error(&e),
    }
}

/// Who the form proves to be, or `None` (every failure alike; each audited in the account of the
/// one person the login named; an ambiguous or unknown login is audited nowhere). One password
/// hash per request, whatever happens.
async fn authenticate(state: &AppState, form: &SignInForm) -> Result<Option<(AccountId, UserId)>, MttrlyError> {
    let central = &state.central;
    let login = form.login.trim();
    let candidate =
        if login.is_empty() || login.len() > MAX_LOGIN { None } else { central.db.signins().resolve(login).await? };
    let now = crate::db::now_ms();
    let policy = Lockout::default();
    let attempt = match &candidate {
        Some(c) => central.db.account(&c.account_id).people().password_attempt(&c.user_id, policy, now).await?,
        None => PasswordAttempt::Unknown,
    };
    // Only an admitted attempt's hash is checked; every other path checks the dummy instead.
    let stored = match (&candidate, attempt) {
        (Some(c), PasswordAttempt::Admitted(_)) => Some(c.password_hash.clone()),
        _ => None,
    };
    let password = form.password.clone();
    let matched = tokio::task::spawn_blocking(move || crate::signin::password::verify(&password, stored.as_deref()))
        .await
        .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "checking the password failed"))?;
    let Some(candidate) = candidate else { return Ok(None) };
    let (account, user) = (&candidate.account_id, &candidate.user_id);
    let refuse = |refusal: &str, error: MttrlyError| {
        let failed: Result<(), _> = Err(error);
        super::audit(
            state,
            account,
            user,
            &candidate.name,
            "SignIn",
            serde_json::json!({ "refusal": refusal }),
            &failed,
        );
    };
    match attempt {
        PasswordAttempt::Admitted(_) if matched => {}
        PasswordAttempt::Admitted(after) => {
            let refusal = if after.locked_until_ms.is_some() { "password_locked_now" } else { "password" };
            refuse(refusal, MttrlyError::new(ErrorCode::AuthFailed, "wrong password"));
            return Ok(None);
        }
        PasswordAttempt::Locked { until } => {
            let error = MttrlyError::new(ErrorCode::RateLimited, format!("sign-in by password locked until {until}"));
            refuse("password_locked", error);
            return Ok(None);
        }
        // Removed between the lookup and the count.
        PasswordAttempt::Unknown => return Ok(None),
    }
    central.db.account(account).people().password_accepted(user, now).await?;
    match crate::second_factor::verify_from(central, account, user, &form.code, Source::Dashboard).await {
        Ok(()) => Ok(Some((account.clone(), user.clone()))),
        Err(e) if matches!(e.code(), ErrorCode::AuthFailed | ErrorCode::RateLimited | ErrorCode::Forbidden) => {
            refuse("second_factor", e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `POST /signout`.
pub(crate) async fn signout(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(e) = check_origin(&state.site, &headers).and_then(|()| check_csrf(&signed, &form.csrf)) {
        return refused(&e);
    }
    match end_session(&state, &signed).await {
        Ok(cookie) => see_other("/signin", cookie),
        Err(e) => internal_error(&e),
    }
}
