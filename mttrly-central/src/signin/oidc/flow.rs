//! The two routes of single sign-on: `GET /signin/oidc` sends the browser to the provider,
//! `GET /signin/oidc/callback` takes it back and signs the person in.
//!
//! The pending login (state, nonce, PKCE verifier, where to go next) lives server-side for ten
//! minutes, found by the SHA-256 of a random key in a short-lived `HttpOnly` cookie: the callback
//! only completes in the browser that started it (a code and state lifted into another browser
//! find no pending login there), and only once (the record is deleted as it is read, so a replayed
//! callback finds nothing). The ID token must carry the nonce of that record.
//!
//! Who the person is: a binding of the provider's subject to a living user first, then a single
//! living user with the verified e-mail (the subject is bound to them then), then, only with
//! `create_users`, a new user with the role their groups map to. Roles and the group claim: the
//! claim may *lower* a matched user's role at each sign-in (someone taken out of the leads' group
//! at the provider stops being an admin here at their next sign-in), never raise it: raising an
//! existing user stays an admin's act (`mttrly-cli users set-role`), so a group edit at the
//! provider, or a mapping typo, cannot quietly hand someone approval rights over production. The
//! last admin is never lowered (logged). Creation, binding and lowering are audited.
//!
//! Every refusal is a page saying what the person can do, nothing the provider said (that goes
//! to the log with a reference the page shows), and nothing is created.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::{ErrorCode, Source};
use serde::Deserialize;
use serde_json::json;

use super::client::OidcClient;
use super::identity::{IdentityRefusal, identity};
use crate::app_state::AppState;
use crate::db::oidc::{Create, Matched, PendingLogin, SignedIn, SsoRefusal, Vouched};
use crate::signin::session::Transport;
use crate::web::page::{escape, page};

/// Where the sign-in starts.
pub(crate) const START_PATH: &str = "/signin/oidc";
/// Where the provider sends the browser back (registered at the provider as
/// `{public base URL}/signin/oidc/callback`).
pub(crate) const CALLBACK_PATH: &str = "/signin/oidc/callback";
/// How long a started sign-in may take at the provider.
pub(crate) const PENDING_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Live pending logins at most (anyone may start one; they expire after ten minutes).
pub(crate) const MAX_PENDING: u32 = 10_000;
/// The pending login's cookie over HTTPS (`__Host-`: only this host, `Secure`, `Path=/`).
pub(crate) const SECURE_COOKIE: &str = "__Host-mttrly_oidc";
/// The same over plain HTTP on loopback, where browsers drop `Secure` cookies.
pub(crate) const LOOPBACK_COOKIE: &str = "mttrly_oidc";

/// The redirect URI registered at the provider.
pub(crate) fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.site.base_url)
}

/// The pending cookie's name and whether it is `Secure`, by how the site is served (the session
/// cookie's rules: HTTPS, or plain HTTP on loopback; `None` on plain HTTP elsewhere, where no
/// sign-in cookie may travel).
fn cookie_kind(state: &AppState) -> Option<(&'static str, bool)> {
    crate::signin::web::transport(&state.site).map(|t| match t {
        Transport::Https => (SECURE_COOKIE, true),
        Transport::LoopbackHttp => (LOOPBACK_COOKIE, false),
    })
}

/// The pending login's `Set-Cookie`: `SameSite=Lax`, since the provider's redirect back is a
/// cross-site top-level navigation that must carry it.
fn pending_cookie(state: &AppState, value: &str, max_age_secs: i64) -> Option<HeaderValue> {
    let (name, secure) = cookie_kind(state)?;
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"))
        .ok()
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty()).then_some(v)
    })
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn key_hash(key: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Equal strings, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A short reference tying the page the person sees to the log line the operator reads.
fn reference() -> String {
    random_token().map_or_else(|| "-".to_owned(), |t| t.chars().take(10).collect())
}

fn not_configured() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Single sign-on is not configured",
        "<p>This central has no <code>[oidc]</code> provider. Sign in with your password instead.</p>",
    )
}

/// A refusal: what the person may do, and a reference for the operator's log.
fn refusal(status: StatusCode, what: &str, reference: &str) -> Response {
    page(
        status,
        "Sign-in refused",
        &format!(
            "<p>{}</p><p><a href=\"{START_PATH}\">Start again</a> · <a href=\"/signin\">Other ways to sign in</a></p>\
             <p><small>Reference: <code>{}</code></small></p>",
            escape(what),
            escape(reference)
        ),
    )
}

/// The sign-in page's "Sign in with …" link (keeping `next`), or nothing without a provider.
pub(crate) fn signin_link(state: &AppState, next: &str) -> String {
    let Some(client) = state.central.oidc.get() else { return String::new() };
    let href = match next {
        "/" | "" => START_PATH.to_owned(),
        next => format!("{START_PATH}?next={}", super::client::form_encode(next)),
    };
    format!(
        "<p><a class=\"sso\" href=\"{}\">Sign in with {}</a></p><p>or with your password:</p>",
        escape(&href),
        escape(client.display_name())
    )
}

#[derive(Deserialize)]
pub(crate) struct StartQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /signin/oidc?next=/path`: a pending login, then off to the provider.
pub(crate) async fn start(State(state): State<AppState>, Query(query): Query<StartQuery>) -> Response {
    let Some(client) = state.central.oidc.get() else { return not_configured() };
    if cookie_kind(&state).is_none() {
        return refusal(
            StatusCode::FORBIDDEN,
            "Sign-in needs HTTPS: this central is served over plain HTTP on a non-loopback address.",
            "http",
        );
    }
    let next = query.next.as_deref().and_then(crate::signin::web::safe_next);
    let (Some(key), Some(login_state), Some(nonce), Some(verifier)) =
        (random_token(), random_token(), random_token(), random_token())
    else {
        tracing::error!("the operating system's random source failed; cannot start a sign-in");
        return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in is unavailable right now.", "random");
    };
    let now = crate::db::now_ms();
    let pending =
        PendingLogin { state: login_state.clone(), nonce: nonce.clone(), code_verifier: verifier.clone(), next };
    match state
        .central
        .db
        .oidc_logins()
        .insert(&key_hash(&key), pending, now, now + PENDING_LIFETIME_MS, MAX_PENDING)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(cap = MAX_PENDING, "too many single sign-ons in progress; refusing a new one");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many sign-ins are in progress. Try again in a few minutes.",
                "busy",
            );
        }
        Err(e) => {
            let r = reference();
            tracing::error!(reference = %r, error = %e, "cannot store a pending sign-in");
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in is unavailable right now.", &r);
        }
    }
    let target = client.authorization_url(&redirect_uri(&state), &login_state, &nonce, &verifier);
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&target) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = pending_cookie(&state, &key, PENDING_LIFETIME_MS / 1000) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// RFC 9207: the issuer of this response, when the provider says.
    #[serde(default)]
    iss: Option<String>,
}

/// `GET /signin/oidc/callback`: the provider's answer. The pending cookie is cleared whatever
/// happens (its record is gone either way).
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(client) = state.central.oidc.get() else { return not_configured() };
    let mut response = finish(&state, client, &headers, query).await;
    if let Some(clear) = pending_cookie(&state, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

async fn finish(state: &AppState, client: &OidcClient, headers: &HeaderMap, query: CallbackQuery) -> Response {
    let r = reference();
    let start_again = "This sign-in has expired, was already used, or was started in another browser. Start again.";
    let Some(key) = cookie_kind(state).and_then(|(name, _)| cookie_value(headers, name)) else {
        tracing::info!(reference = %r, "single sign-on callback without a pending login cookie");
        return refusal(StatusCode::BAD_REQUEST, start_again, &r);
    };
    let pending = match state.central.db.oidc_logins().take(&key_hash(key), crate::db::now_ms()).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            tracing::info!(reference = %r, "single sign-on callback for no live pending login (expired or replayed)");
            return refusal(StatusCode::BAD_REQUEST, start_again, &r);
        }
        Err(e) => {
            tracing::error!(reference = %r, error = %e, "cannot read a pending sign-in");
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in is unavailable right now.", &r);
        }
    };
    if !query.state.as_deref().is_some_and(|s| same(s, &pending.state)) {
        tracing::warn!(reference = %r, "single sign-on callback with a state that is not this browser's; refused");
        return refusal(StatusCode::BAD_REQUEST, start_again, &r);
    }
    if query.iss.as_deref().is_some_and(|iss| iss != client.issuer()) {
        tracing::warn!(reference = %r, iss = ?query.iss, "single sign-on callback names another issuer; refused");
        return refusal(StatusCode::BAD_REQUEST, "The sign-in could not be completed.", &r);
    }
    if let Some(error) = &query.error {
        let error: String = error.chars().filter(char::is_ascii_graphic).take(64).collect();
        tracing::info!(reference = %r, %error, "the OpenID provider did not sign the person in");
        return refusal(StatusCode::FORBIDDEN, "The identity provider did not sign you in.", &r);
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 4096) else {
        tracing::info!(reference = %r, "single sign-on callback without a code");
        return refusal(StatusCode::BAD_REQUEST, "The sign-in could not be completed.", &r);
    };
    let claims = match client.exchange(code, &pending.code_verifier, &redirect_uri(state), &pending.nonce).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(reference = %r, issuer = %client.issuer(), error = %mttrly_core::ErrorChain(&e), "single sign-on refused: code exchange or ID token");
            return refusal(StatusCode::BAD_GATEWAY, "The sign-in could not be completed.", &r);
        }
    };
    // OpenID Connect Core §2: a subject is at most 255 ASCII characters; it is stored as the binding.
    if claims.subject().len() > 255 || !claims.subject().is_ascii() {
        tracing::warn!(reference = %r, "single sign-on refused: the ID token's subject is not a valid `sub`");
        return refusal(StatusCode::BAD_GATEWAY, "The sign-in could not be completed.", &r);
    }
    let config = client.config();
    let person = match identity(config, &claims) {
        Ok(person) => person,
        Err(refused) => {
            let what = match &refused {
                IdentityRefusal::NoVerifiedEmail => {
                    "Your identity provider did not confirm your e-mail address, which this central requires."
                }
                IdentityRefusal::DomainNotAllowed(_) => "Your e-mail domain is not allowed to sign in here.",
            };
            tracing::info!(reference = %r, subject = %claims.subject(), reason = %refused, "single sign-on refused");
            audit_refusal(state, client, claims.subject(), claims.str("email"), &refused.to_string());
            return refusal(StatusCode::FORBIDDEN, what, &r);
        }
    };
    // With a role claim configured, the claim is the provider's word on the person's rights: no
    // mapped group (left every mapped group, or the claim is missing, as Entra ID does for people
    // in too many groups) means the weakest role, so leaving the leads' group at the provider
    // takes the rights away here at the next sign-in. Creation still needs a mapped group.
    let lower_to = config.role_claim.as_ref().map(|_| person.mapped_role.unwrap_or(mttrly_core::Role::Viewer));
    let vouched = Vouched {
        issuer: client.issuer().to_owned(),
        subject: person.subject.clone(),
        verified_email: person.verified_email.clone(),
        mapped_role: lower_to,
    };
    let create = match (config.create_users, person.mapped_role) {
        (true, Some(role)) => {
            Some(Create { names: candidate_names(person.verified_email.as_deref(), person.name.as_deref()), role })
        }
        _ => None,
    };
    let account = client.account().clone();
    let signed_in = match state.central.db.account(&account).sso().sign_in(vouched, create).await {
        Ok(Ok(signed_in)) => signed_in,
        Ok(Err(refused)) => {
            let (what, reason) = match refused {
                SsoRefusal::Removed => {
                    ("Your user has been removed from this central.", "the user bound to this subject was removed")
                }
                SsoRefusal::Unknown => (
                    "No user here matches your identity. Ask an admin to add you (with your e-mail address).",
                    "no user matches",
                ),
                SsoRefusal::Ambiguous => (
                    "Several users here have your e-mail address; ask an admin to sort it out.",
                    "several living users have this e-mail",
                ),
                SsoRefusal::BoundToOther => (
                    "The user with your e-mail address is linked to another identity at your provider.",
                    "the user with this e-mail is bound to another subject",
                ),
                SsoRefusal::NameTaken => (
                    "No free user name could be found for you; ask an admin to add you.",
                    "every candidate name is taken",
                ),
            };
            tracing::info!(reference = %r, subject = %person.subject, email = ?person.verified_email, reason, "single sign-on refused");
            audit_refusal(state, client, &person.subject, person.verified_email.as_deref(), reason);
            return refusal(StatusCode::FORBIDDEN, what, &r);
        }
        Err(e) => {
            tracing::error!(reference = %r, error = %e, "single sign-on: cannot match the user");
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in is unavailable right now.", &r);
        }
    };
    audit_changes(state, client, &person.subject, &signed_in);
    let user = signed_in.matched.user();
    let cookie = match crate::signin::web::start_session(
        state,
        headers,
        &account,
        &user.id,
        crate::signin::web::SignInMethod::Oidc,
    )
    .await
    {
        Ok(cookie) => cookie,
        Err(e) => {
            tracing::error!(reference = %r, error = %e, "single sign-on: cannot start the session");
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in is unavailable right now.", &r);
        }
    };
    let next = pending.next.as_deref().and_then(crate::signin::web::safe_next).unwrap_or_else(|| "/".to_owned());
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&next) {
        h.insert(header::LOCATION, location);
    }
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Names for a user created at first sign-in: the e-mail's local part (else the display name),
/// reduced to the user-name alphabet, then with `-2` … `-9`.
fn candidate_names(email: Option<&str>, name: Option<&str>) -> Vec<String> {
    let raw = email.and_then(|e| e.split('@').next()).or(name).unwrap_or("sso-user");
    let mut base: String =
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' }
            })
            .collect::<String>()
            .trim_start_matches(['.', '-', '_'])
            .chars()
            .take(60)
            .collect();
    if crate::users::check_name(&base).is_err() {
        "sso-user".clone_into(&mut base);
    }
    let mut names = vec![base.clone()];
    names.extend((2..=9).map(|n| format!("{base}-{n}")));
    names
}

fn event(client: &OidcClient, actor: AuditActor, subject: &str, parameters: serde_json::Value, ok: bool) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: client.account().clone(),
        server_id: None,
        actor,
        source: Source::Dashboard,
        kind: AuditKind::ApiCall,
        subject: subject.to_owned(),
        parameters,
        outcome: if ok { AuditOutcome::Ok } else { AuditOutcome::Error { code: ErrorCode::Forbidden } },
        duration_ms: None,
    }
}

/// A refusal after the provider vouched for someone (an anonymous callback is not audited: anyone
/// can make one, and it names nobody).
fn audit_refusal(state: &AppState, client: &OidcClient, subject: &str, email: Option<&str>, reason: &str) {
    let params = json!({ "issuer": client.issuer(), "subject": subject, "email": email, "reason": reason });
    state.central.audit(event(client, AuditActor::System, "SsoSignIn", params, false));
}

/// What a sign-in changed: a user created, a subject bound, a role lowered.
fn audit_changes(state: &AppState, client: &OidcClient, subject: &str, signed_in: &SignedIn) {
    let user = signed_in.matched.user();
    let actor = || AuditActor::Human { user_id: user.id.clone(), name: user.name.clone() };
    match &signed_in.matched {
        Matched::Created(_) => {
            let params = json!({
                "name": user.name, "role": user.role.as_str(), "email": user.email,
                "user_id": user.id.to_string(), "issuer": client.issuer(), "subject": subject,
                "skipped_removed_names": signed_in.skipped_removed_names,
            });
            state.central.audit(event(client, actor(), "SsoCreateUser", params, true));
        }
        Matched::ByEmail(_) => {
            let params = json!({ "name": user.name, "user_id": user.id.to_string(), "issuer": client.issuer(), "subject": subject });
            state.central.audit(event(client, actor(), "SsoBindSubject", params, true));
        }
        Matched::Bound(_) => {}
    }
    if let Some(previous) = signed_in.demoted_from {
        let params = json!({ "name": user.name, "role": user.role.as_str(), "previous_role": previous.as_str(), "issuer": client.issuer() });
        state.central.audit(event(client, actor(), "SsoLowerRole", params, true));
        // Their open credentials resolve to the new role on their next request.
        state.central.auth_cache.invalidate_all();
    }
    if signed_in.kept_last_admin {
        tracing::warn!(
            user = %user.name,
            "the group claim maps the account's last admin (or its last admin with a second factor) to a lower role; kept admin"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_names_follow_the_user_name_rules() {
        assert_eq!(candidate_names(Some("bob.smith@example.com"), None)[0], "bob.smith");
        assert_eq!(candidate_names(Some("Bob+ops@example.com"), None)[0], "bob-ops");
        assert_eq!(candidate_names(Some("_x@example.com"), None)[0], "x");
        assert_eq!(candidate_names(None, Some("Ann Lee"))[0], "ann-lee");
        assert_eq!(candidate_names(None, Some("日本"))[0], "sso-user");
        assert_eq!(candidate_names(None, None)[1], "sso-user-2");
        for name in candidate_names(Some(&format!("{}@e.com", "a".repeat(80))), None) {
            assert!(crate::users::check_name(&name).is_ok(), "{name}");
        }
    }

    #[test]
    fn states_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
