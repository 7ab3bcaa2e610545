//! Browser sessions on central's own pages: who is signed in ([`SignedIn`], an axum extractor),
//! opening a session ([`start_session`]), CSRF for state-changing forms ([`check_csrf`], and a
//! pre-session token for the forms a person submits before signing in), the `next` parameter
//! ([`safe_next`]), and the pages themselves (`pages`: sign-in, sign-out, the signed-in home;
//! `invite`: the invite link).
//!
//! Sessions are server-side: the cookie holds a 256-bit secret, the database its SHA-256
//! (`db::people`). A session is alive while it is not ended, its user is not removed, and neither
//! the idle nor the absolute timeout has passed (`signin::session::alive`); it is looked up on
//! every request, so removing a user or signing out ends it at once. Its last use is written at
//! most once a minute.
//!
//! Cookies travel only where they are safe ([`transport`]): over HTTPS (`Secure`, `__Host-`), or
//! plain HTTP on a loopback address (quickstart, tests). A site served over plain HTTP on another
//! address gets no session at all: the cookie would cross the network in clear text.
//!
//! CSRF, two layers on every POST: the `Origin` (or `Sec-Fetch-Site`) of a browser request must
//! be this site's; and the form carries a token a cross-site page can neither read nor compute —
//! HMAC of the session secret once signed in, and before that (sign-in and invite forms) HMAC of a
//! random pre-session cookie (double submit: the attacker can neither read nor set a `__Host-`
//! cookie on this site).

pub(crate) mod invite;
pub(crate) mod pages;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{ErrorCode, MttrlyError, Role};

use crate::app_state::{AppState, Site};
pub(crate) use crate::db::people::SignInMethod;
use crate::signin::session::{self, Transport};
use crate::web::page::{escape, page, urlencode};

/// Sessions end after this long unused.
pub(crate) const IDLE: std::time::Duration = session::DEFAULT_IDLE;
/// Sessions end this long after sign-in, however active.
pub(crate) const ABSOLUTE: std::time::Duration = session::DEFAULT_ABSOLUTE;
/// A session's last use is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A person signed in on this browser, with a live session.
#[derive(Clone)]
pub(crate) struct SignedIn {
    /// Their account.
    pub account_id: AccountId,
    /// Who they are.
    pub user_id: UserId,
    /// Their name now.
    pub name: String,
    /// Their role now.
    pub role: Role,
    /// The CSRF token of this session, for the forms of the page.
    pub csrf: String,
    /// How they signed in.
    pub method: SignInMethod,
    /// The session's secret (never shown; the CSRF check derives from it).
    secret: String,
    /// Its stored hash.
    hash: [u8; 32],
}

impl SignedIn {
    /// The stable, non-secret key of this session (from its hash): what the dashboard's decisions
    /// count against in place of a token's.
    pub(crate) fn session_key(&self) -> String {
        crate::db::accounts::credential_key(&self.hash)
    }

    /// Whether this session is still live, for the same person in the same account: what a
    /// long response (an audit export streaming for minutes) checks as it goes, since the
    /// request's own check was at its start. A failed read counts as not valid.
    pub(crate) async fn still_valid(&self, state: &AppState) -> bool {
        let Ok(Some(row)) = state.central.db.signins().session(&self.hash).await else { return false };
        let times = session::Times { created_ms: row.created_at, last_seen_ms: row.last_seen_at };
        row.account_id == self.account_id
            && row.user_id == self.user_id
            && session::alive(times, crate::db::now_ms(), IDLE, ABSOLUTE)
    }
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("user_id", &self.user_id).field("name", &self.name).finish_non_exhaustive()
    }
}

/// How cookies travel on this site, or `None` when no session may be set (plain HTTP to a
/// non-loopback address).
pub(crate) fn transport(site: &Site) -> Option<Transport> {
    transport_of(&site.base_url)
}

/// [`transport`] for a site at `base_url`.
pub(crate) fn transport_of(base_url: &str) -> Option<Transport> {
    let url = base_url.to_ascii_lowercase();
    if url.starts_with("https://") {
        return Some(Transport::Https);
    }
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback.then_some(Transport::LoopbackHttp)
}

/// The page shown when the site cannot hold a session safely.
pub(crate) fn needs_https() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "HTTPS needed",
        "<p>This central is served over plain HTTP on a non-loopback address, so a sign-in cookie would \
         cross the network in clear text. Serve it over HTTPS and set <code>public_http_url</code> to the \
         <code>https://</code> address (or sign in on the machine itself, through <code>http://127.0.0.1</code>).</p>",
    )
}

/// Every `Cookie` header's pairs, joined (HTTP/2 may split them).
fn cookies(headers: &HeaderMap) -> String {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("; ")
}

/// A fresh 256-bit secret, base64url.
pub(crate) fn fresh_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The session secret this request carries, if any.
fn presented(state: &AppState, headers: &HeaderMap) -> Option<(Transport, String)> {
    let transport = transport(&state.site)?;
    let jar = cookies(headers);
    let secret = transport.session_from(&jar)?;
    // Only what we issue: 43 base64url characters. Anything else is never looked up.
    (secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| (transport, secret.to_owned()))
}

/// The live session of this request, if any.
pub(crate) async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<SignedIn>, MttrlyError> {
    let Some((_, secret)) = presented(state, headers) else { return Ok(None) };
    let hash = crate::secrets::hash(&secret);
    let Some(row) = state.central.db.signins().session(&hash).await? else { return Ok(None) };
    let now = crate::db::now_ms();
    let times = session::Times { created_ms: row.created_at, last_seen_ms: row.last_seen_at };
    let people = state.central.db.account(&row.account_id).people();
    if !session::alive(times, now, IDLE, ABSOLUTE) {
        people.end_session(&hash, now).await?;
        return Ok(None);
    }
    if now - row.last_seen_at >= TOUCH_EVERY_MS {
        people.touch_session(&hash, now).await?;
    }
    Ok(Some(SignedIn {
        account_id: row.account_id,
        user_id: row.user_id,
        name: row.name,
        role: row.role,
        csrf: session::csrf_token(&secret),
        method: row.method,
        secret,
        hash,
    }))
}

/// The answer to a request that needs a session and has none: a GET goes to the sign-in page
/// (coming back here after), anything else gets 401.
fn not_signed_in(parts: &Parts) -> Response {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        let here = parts.uri.path_and_query().map_or("/", axum::http::uri::PathAndQuery::as_str);
        let target = match safe_next(here) {
            Some(next) if next != "/" => format!("/signin?next={}", urlencode(&next)),
            _ => "/signin".to_owned(),
        };
        return see_other(&target, None);
    }
    page(
        StatusCode::UNAUTHORIZED,
        "Not signed in",
        "<p>Your session has ended. <a href=\"/signin\">Sign in</a> again.</p>",
    )
}

/// The page for a storage error (the detail went to the log).
pub(crate) fn internal_error(e: &MttrlyError) -> Response {
    tracing::warn!(error = %e, "sign-in page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Central could not answer. Try again in a moment.</p>",
    )
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match current(state, &parts.headers).await {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(not_signed_in(parts)),
            Err(e) => Err(internal_error(&e)),
        }
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        current(state, &parts.headers).await.map_err(|e| internal_error(&e))
    }
}

/// Opens a new session for `user` and returns its `Set-Cookie`. Rotation: whatever session id
/// the request carried is ended first, so an id planted before sign-in is never the one
/// authenticated. Audited. Refused (`FORBIDDEN`) on a site that cannot hold a session safely, or
/// for a user who is not a living user of `account`.
pub(crate) async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    account: &AccountId,
    user: &UserId,
    method: SignInMethod,
) -> Result<HeaderValue, MttrlyError> {
    let Some(transport) = transport(&state.site) else {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "sessions need HTTPS (or a loopback address): set public_http_url to an https:// address",
        ));
    };
    let now = crate::db::now_ms();
    if let Some(old) = transport.session_from(&cookies(headers)) {
        state.central.db.signins().end_presented(&crate::secrets::hash(old), now).await?;
    }
    let secret = fresh_secret();
    let hash = crate::secrets::hash(&secret);
    let name = state.central.db.account(account).people().start_session(&hash, user, method, now).await?;
    let result = name.clone().ok_or_else(|| MttrlyError::new(ErrorCode::Forbidden, "this user no longer exists"));
    if let Some(name) = name {
        audit(state, account, user, &name, "SignIn", serde_json::json!({ "method": method.as_str() }), &result);
    }
    result?;
    HeaderValue::from_str(&transport.set_cookie(&secret, ABSOLUTE))
        .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "session cookie"))
}

/// Ends the signed-in session (sign-out); returns the `Set-Cookie` that clears it.
pub(crate) async fn end_session(state: &AppState, signed: &SignedIn) -> Result<Option<HeaderValue>, MttrlyError> {
    let now = crate::db::now_ms();
    let ended = state.central.db.account(&signed.account_id).people().end_session(&signed.hash, now).await;
    audit(state, &signed.account_id, &signed.user_id, &signed.name, "SignOut", serde_json::json!({}), &ended);
    ended?;
    Ok(transport(&state.site).and_then(|t| HeaderValue::from_str(&t.clear_cookie()).ok()))
}

/// Records a sign-in event of a person, from the dashboard.
pub(crate) fn audit<T>(
    state: &AppState,
    account: &AccountId,
    user: &UserId,
    name: &str,
    subject: &str,
    parameters: serde_json::Value,
    result: &Result<T, MttrlyError>,
) {
    state.central.audit(mttrly_core::audit::AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: None,
        actor: mttrly_core::audit::AuditActor::Human { user_id: user.clone(), name: name.to_owned() },
        source: mttrly_core::Source::Dashboard,
        kind: mttrly_core::audit::AuditKind::ApiCall,
        subject: subject.to_owned(),
        parameters,
        outcome: match result {
            Ok(_) => mttrly_core::audit::AuditOutcome::Ok,
            Err(e) => mttrly_core::audit::AuditOutcome::Error { code: e.code() },
        },
        duration_ms: None,
    });
}

/// Checks a signed-in form's CSRF token (constant time). `FORBIDDEN` when it is not this
/// session's.
pub(crate) fn check_csrf(signed: &SignedIn, presented: &str) -> Result<(), MttrlyError> {
    if session::csrf_ok(&signed.secret, presented) {
        Ok(())
    } else {
        Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "this form has expired or did not come from this site; reload the page",
        ))
    }
}

/// The hidden input carrying the session's CSRF token, for every state-changing form.
pub(crate) fn csrf_input(signed: &SignedIn) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(&signed.csrf))
}

/// Whether a POST comes from this site as far as the browser says: an `Origin` header must be one
/// of the site's origins, and `Sec-Fetch-Site` (sent by every current browser) must not say
/// another site. Requests with neither (non-browser clients) still need the form's token.
pub(crate) fn check_origin(site: &Site, headers: &HeaderMap) -> Result<(), MttrlyError> {
    let refused = || MttrlyError::new(ErrorCode::Forbidden, "this form was sent from another site");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| refused())?.trim_end_matches('/').to_ascii_lowercase();
        if !site.form_origins.contains(&origin) {
            return Err(refused());
        }
    }
    if let Some(fetch_site) = headers.get("sec-fetch-site")
        && !matches!(fetch_site.to_str().unwrap_or_default(), "same-origin" | "none")
    {
        return Err(refused());
    }
    Ok(())
}

/// `next` if it is a path on this site (`/x`), else `None`: not `//host` nor `/\host` (browsers
/// read both as another host), no scheme, no control characters or spaces (browsers drop some of
/// them, which can turn `/\t/host` into `//host`), no backslash anywhere.
pub(crate) fn safe_next(next: &str) -> Option<String> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && !next.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    ok.then(|| next.to_owned())
}

/// A 303 to a path on this site, optionally setting a cookie.
pub(crate) fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        r.headers_mut().append(header::SET_COOKIE, cookie);
    }
    r
}

/// The pre-session cookie's name (double-submit CSRF for forms sent before signing in).
fn pre_cookie_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Https => "__Host-mttrly_pre",
        Transport::LoopbackHttp => "mttrly_pre",
    }
}

/// The pre-session secret this request carries.
fn pre_secret(transport: Transport, headers: &HeaderMap) -> Option<String> {
    let name = pre_cookie_name(transport);
    cookies(headers).split(';').map(str::trim).find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name && v.len() == 43).then(|| v.to_owned())
    })
}

/// The token for a pre-session form, and the cookie to set when the browser has none yet.
pub(crate) fn pre_session(transport: Transport, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(secret) = pre_secret(transport, headers) {
        return (session::csrf_token(&secret), None);
    }
    let secret = fresh_secret();
    let cookie = format!(
        "{}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400{}",
        pre_cookie_name(transport),
        if transport == Transport::Https { "; Secure" } else { "" }
    );
    (session::csrf_token(&secret), HeaderValue::from_str(&cookie).ok())
}

/// Checks a pre-session form: this site's origin, and the token matching the cookie.
pub(crate) fn check_pre_session(
    site: &Site,
    transport: Transport,
    headers: &HeaderMap,
    presented: &str,
) -> Result<(), MttrlyError> {
    check_origin(site, headers)?;
    match pre_secret(transport, headers) {
        Some(secret) if session::csrf_ok(&secret, presented) => Ok(()),
        _ => Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "this form has expired or did not come from this site; reload the page and try again",
        )),
    }
}

/// The hidden input of a pre-session form.
pub(crate) fn pre_input(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(token))
}

/// A page with a `Set-Cookie` added.
pub(crate) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The page for a refused form (CSRF, origin).
pub(crate) fn refused(e: &MttrlyError) -> Response {
    page(StatusCode::FORBIDDEN, "Refused", &format!("<p class=\"err\">{}</p>", escape(e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_path_on_this_site() {
        for ok in ["/", "/actions", "/actions?id=1&x=%2F%2Fevil", "/a/b#c"] {
            assert_eq!(safe_next(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "evil.example/x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil",
            "/a\\b",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(3000))), None);
    }

    #[test]
    fn sessions_travel_only_over_https_or_loopback() {
        let site = |url: &str| Site::new(url.to_owned(), vec![], vec![], format!("{url}/mcp"));
        assert_eq!(transport(&site("https://central.example")), Some(Transport::Https));
        assert_eq!(transport(&site("HTTPS://central.example:8443")), Some(Transport::Https));
        for loopback in ["http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]:80", "http://127.1.2.3"] {
            assert_eq!(transport(&site(loopback)), Some(Transport::LoopbackHttp), "{loopback}");
        }
        for remote in
            ["http://10.0.0.5:8080", "http://central.example", "http://localhost.evil.example", "http://0.0.0.0:80"]
        {
            assert_eq!(transport(&site(remote)), None, "{remote}");
        }
    }

    #[test]
    fn a_cross_site_post_is_refused_by_origin_or_fetch_metadata() {
        let site = Site::new(
            "https://c.example".into(),
            vec!["https://c.example".into()],
            vec!["https://mcp-client.example".into()],
            "https://c.example/mcp".into(),
        );
        let mut h = HeaderMap::new();
        assert!(check_origin(&site, &h).is_ok(), "no browser headers: the token decides");
        h.insert(header::ORIGIN, HeaderValue::from_static("https://c.example"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_origin(&site, &h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(check_origin(&site, &h).is_err());
        // A browser MCP client's origin may call `/mcp`, never post a form with a cookie.
        h.insert(header::ORIGIN, HeaderValue::from_static("https://mcp-client.example"));
        assert!(check_origin(&site, &h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_origin(&site, &h).is_err());
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_origin(&site, &h).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(check_origin(&site, &h).is_err(), "a sibling sub-domain is another site for forms");
    }
}
