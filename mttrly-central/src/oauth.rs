//! Central as an OAuth 2.1 authorization server for MCP clients.
//!
//! RFC 8414 metadata, RFC 7591 dynamic registration of public clients, the authorization code
//! grant with PKCE (S256 only), a login and consent page where the human signs in with their own
//! mttrly token, single-use codes that live a minute, exact redirect URI matching, access tokens
//! bound to the MCP resource (RFC 8707) and rotating refresh tokens whose reuse revokes the whole
//! grant. Every code and token is stored as its SHA-256 only.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::db::{self, now_ms};
use crate::http::AppState;
use crate::secrets::{self, SecretKind};

/// How long an authorization code lives.
const CODE_TTL_MS: i64 = 60_000;
/// How long an access token lives.
pub const ACCESS_TTL_SECS: i64 = 3600;
/// How long a refresh token lives (each use replaces it).
const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// How long a grant lives in all, however often it is refreshed.
const GRANT_TTL_MS: i64 = 90 * 24 * 3600 * 1000;
/// Client registrations accepted per minute (registration is open, so it is bounded).
const REGISTRATIONS_PER_MINUTE: u32 = 60;
/// The one scope: use the MCP server as the signed-in human's assistant.
const SCOPE: &str = "mcp";

/// RFC 8414 metadata.
pub(crate) async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let base = &state.site.base_url;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [SCOPE],
        "authorization_response_iss_parameter_supported": true,
    }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (status, Json(json!({ "error": error, "error_description": description }))).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether a redirect URI may be registered: https, http on loopback only, or a private-use
/// scheme of a native app (never `javascript:`, `data:`, `file:`); no fragment. Wherever there is
/// an authority (`scheme://…`) it must be a well-formed `host[:port]` with a non-empty host and no
/// userinfo: the consent page names that host, and a browser "repairs" what we would show wrongly
/// (`https:///evil.test/cb` goes to `evil.test`, shown as an empty host).
fn acceptable_redirect(uri: &str) -> bool {
    if uri.len() > 2000
        || uri.contains('#')
        || !uri.is_ascii()
        || uri.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || c == '\\')
    {
        return false;
    }
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    let scheme = scheme.to_ascii_lowercase();
    let host = rest.strip_prefix("//").map(|r| redirect_host(r.split(['/', '?']).next().unwrap_or("")));
    match scheme.as_str() {
        "https" => matches!(host, Some(Some(_))),
        "http" => matches!(host, Some(Some("localhost" | "127.0.0.1" | "[::1]"))),
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" => false,
        s => {
            s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
                && !matches!(host, Some(None))
        }
    }
}

/// The host of an authority `host[:port]`, when it is exactly that: a DNS name (labels of
/// letters, digits and inner hyphens), an IPv4 address, or a bracketed IPv6 address; a port of
/// 1 to 65535 when present. Anything else (empty, userinfo, percent-encoding, a trailing dot, an
/// empty port) is `None`.
fn redirect_host(authority: &str) -> Option<&str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return None;
        }
        (host, if after.is_empty() { None } else { Some(after.strip_prefix(':')?) })
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && !(port.len() <= 5
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p)))
    {
        return None;
    }
    if host.starts_with('[') {
        return Some(host);
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (!host.is_empty() && host.len() <= 253 && host.split('.').all(label_ok)).then_some(host)
}

#[derive(Deserialize)]
pub(crate) struct Registration {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
}

/// RFC 7591: registers a public client.
pub(crate) async fn register(
    State(state): State<AppState>,
    body: Result<Json<Registration>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !state.registrations.admit(REGISTRATIONS_PER_MINUTE) {
        return oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "too many client registrations; retry in a minute",
        );
    }
    let Ok(Json(reg)) = body else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must be a JSON client registration",
        );
    };
    let uris = reg.redirect_uris.unwrap_or_default();
    if uris.is_empty() || uris.len() > 10 {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", "give 1 to 10 redirect_uris");
    }
    if let Some(bad) = uris.iter().find(|u| !acceptable_redirect(u)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            &format!(
                "`{}` is not allowed: use https, http on localhost, or an app's own scheme; no fragment",
                bad.chars().take(200).collect::<String>()
            ),
        );
    }
    if reg.token_endpoint_auth_method.as_deref().is_some_and(|m| m != "none") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "only public clients (token_endpoint_auth_method \"none\") with PKCE are supported",
        );
    }
    if reg.grant_types.as_ref().is_some_and(|g| g.iter().any(|t| t != "authorization_code" && t != "refresh_token")) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "grant_types may be authorization_code and refresh_token",
        );
    }
    if reg.response_types.as_ref().is_some_and(|r| r.iter().any(|t| t != "code")) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", "response_types may only be code");
    }
    let name: String = reg
        .client_name
        .unwrap_or_else(|| "MCP client".to_owned())
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let client = db::oauth::Client {
        client_id: secrets::generate(SecretKind::OAuthClient),
        client_name: name,
        redirect_uris: uris,
    };
    let stored = client.clone();
    let now = now_ms();
    if let Err(e) = state.central.db.call(move |conn| db::oauth::insert_client(conn, &stored, now)).await {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.message());
    }
    let mut r = (
        StatusCode::CREATED,
        Json(json!({
            "client_id": client.client_id,
            "client_id_issued_at": now / 1000,
            "client_name": client.client_name,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })),
    )
        .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} · mttrly</title><style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         code{{background:#f3f3f3;padding:0 .2rem}}input[type=password]{{width:100%;padding:.4rem}}button{{padding:.4rem 1rem;margin:.6rem .4rem 0 0}}\
         .err{{color:#a00}}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            // No `form-action`: browsers apply it to the redirect after the form, which must reach
            // the client's own redirect URI.
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// The checked parameters of an authorization request.
struct AuthRequest {
    client: db::oauth::Client,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    resource: String,
}

/// Errors of an authorization request: shown on a page when the redirect URI is not trusted yet,
/// sent back to the client otherwise.
enum AuthError {
    Page(String),
    Redirect(String, &'static str, String),
}

fn redirect_to(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut target = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        target.push(sep);
        target.push_str(k);
        target.push('=');
        target.push_str(&urlencode(v));
        sep = '&';
    }
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn check_request(state: &AppState, q: &HashMap<String, String>) -> Result<AuthRequest, AuthError> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return Err(AuthError::Page("the request names no client_id".into()));
    };
    let id = client_id.to_owned();
    let client = state
        .central
        .db
        .call(move |conn| db::oauth::client(conn, &id))
        .await
        .map_err(|e| AuthError::Page(e.message().to_owned()))?
        .ok_or_else(|| AuthError::Page("unknown client: register it first".into()))?;
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(AuthError::Page("the request names no redirect_uri".into()));
    };
    // Checked again here, not only at registration: a client stored before a rule tightened
    // must not reach the consent page with it.
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) || !acceptable_redirect(redirect_uri) {
        return Err(AuthError::Page(
            "the redirect_uri is not one this client registered (exact match required)".into(),
        ));
    }
    let redirect_uri = redirect_uri.to_owned();
    let st = get("state").map(str::to_owned);
    let bad = |code: &'static str, why: &str| AuthError::Redirect(redirect_uri.clone(), code, why.to_owned());
    if get("response_type") != Some("code") {
        return Err(bad("unsupported_response_type", "response_type must be code"));
    }
    if get("code_challenge_method") != Some("S256") {
        return Err(bad("invalid_request", "PKCE with code_challenge_method S256 is required"));
    }
    let challenge = get("code_challenge").unwrap_or("");
    if !(43..=128).contains(&challenge.len())
        || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(bad("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)"));
    }
    let resource = state.site.resource();
    if let Some(r) = get("resource")
        && r.trim_end_matches('/') != resource
    {
        return Err(bad("invalid_target", "this server only issues tokens for its MCP resource"));
    }
    if let Some(scope) = get("scope")
        && scope.split_whitespace().any(|s| s != SCOPE)
    {
        return Err(bad("invalid_scope", "the only scope is `mcp`"));
    }
    Ok(AuthRequest { client, redirect_uri, state: st, code_challenge: challenge.to_owned(), resource })
}

fn fail(e: AuthError, st: Option<&str>, iss: &str) -> Response {
    match e {
        AuthError::Page(why) => {
            page(StatusCode::BAD_REQUEST, "Cannot sign in", &format!("<p class=\"err\">{}</p>", escape(&why)))
        }
        AuthError::Redirect(uri, code, why) => {
            let mut p = vec![("error", code), ("error_description", why.as_str()), ("iss", iss)];
            if let Some(s) = st {
                p.push(("state", s));
            }
            redirect_to(&uri, &p)
        }
    }
}

fn consent(req: &AuthRequest, q: &HashMap<String, String>, error: Option<&str>) -> Response {
    let hidden: String = [
        "client_id",
        "redirect_uri",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "state",
        "resource",
        "scope",
    ]
    .iter()
    .filter_map(|k| q.get(*k).map(|v| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", escape(v))))
    .collect();
    let host = req
        .redirect_uri
        .split_once("://")
        .and_then(|(_, r)| redirect_host(r.split(['/', '?']).next().unwrap_or("")))
        .unwrap_or(&req.redirect_uri);
    let err = error.map(|e| format!("<p class=\"err\">{}</p>", escape(e))).unwrap_or_default();
    let body = format!(
        "<p><b>{name}</b> wants to use mttrly as your assistant: read server status, alerts and logs, run diagnostics, \
         and <b>request</b> changes. Every change still waits for a human's approval.</p>\
         <p>It will send you back to <code>{host}</code>. Resource: <code>{res}</code>.</p>{err}\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <label>Your mttrly token (from <code>mttrly-cli tokens create --human</code>)<br>\
         <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label><br>\
         <button name=\"decision\" value=\"approve\">Allow</button><button name=\"decision\" value=\"deny\" formnovalidate>Deny</button></form>",
        name = escape(&req.client.client_name),
        host = escape(host),
        res = escape(&req.resource),
    );
    page(if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK }, "Allow access to mttrly?", &body)
}

/// GET: the login and consent page.
pub(crate) async fn authorize_page(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match check_request(&state, &q).await {
        Ok(req) => consent(&req, &q, None),
        // Before the human acted, an error is a page, never a redirect: a self-registered client
        // could otherwise use this endpoint to bounce browsers to its URI (RFC 9700 §4.11.2).
        Err(AuthError::Redirect(_, code, why)) => fail(AuthError::Page(format!("{code}: {why}")), None, ""),
        Err(e) => fail(e, None, ""),
    }
}

/// POST: the human's decision.
pub(crate) async fn authorize_decide(
    State(state): State<AppState>,
    Form(q): Form<HashMap<String, String>>,
) -> Response {
    let iss = state.site.base_url.clone();
    let req = match check_request(&state, &q).await {
        Ok(req) => req,
        Err(e) => return fail(e, q.get("state").map(String::as_str), &iss),
    };
    let with_state = |mut p: Vec<(&'static str, String)>| {
        p.push(("iss", iss.clone()));
        if let Some(s) = &req.state {
            p.push(("state", s.clone()));
        }
        p
    };
    if q.get("decision").map(String::as_str) != Some("approve") {
        let p =
            with_state(vec![("error", "access_denied".into()), ("error_description", "the user denied access".into())]);
        return redirect_to(&req.redirect_uri, &p.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    }
    let token = q.get("token").map_or("", |t| t.trim());
    let hash = secrets::hash(token);
    let owner = if token.is_empty() || token.len() > 256 {
        None
    } else {
        state.central.db.call(move |conn| db::accounts::token_owner(conn, &hash)).await.ok().flatten()
    };
    let Some(owner) = owner.filter(|o| o.principal.is_human()) else {
        return consent(
            &req,
            &q,
            Some("That is not a valid human token. Create one with `mttrly-cli tokens create --human`."),
        );
    };
    let code = secrets::generate(SecretKind::OAuthCode);
    let grant = db::oauth::CodeGrant {
        client_id: req.client.client_id.clone(),
        account_id: owner.account_id.clone(),
        user_id: owner.principal.accountable_user().clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        resource: req.resource.clone(),
        scope: SCOPE.to_owned(),
        human_token_hash: secrets::hash(token).to_vec(),
        surface: owner.scope.clone(),
        grant_expires_at: now_ms() + GRANT_TTL_MS,
    };
    let code_hash = secrets::hash(&code);
    let stored = grant.clone();
    let result = state
        .central
        .db
        .call(move |conn| db::oauth::insert_code(conn, &code_hash, &stored, now_ms() + CODE_TTL_MS))
        .await;
    state.central.audit(crate::audit::events::api_call(
        &owner,
        "OAuthConsent",
        None,
        json!({ "client_id": req.client.client_id, "client_name": req.client.client_name, "resource": req.resource }),
        &result,
    ));
    if let Err(e) = result {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot sign in",
            &format!("<p class=\"err\">{}</p>", escape(e.message())),
        );
    }
    let p = with_state(vec![("code", code)]);
    redirect_to(&req.redirect_uri, &p.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn issue(state: &AppState, grant: &db::oauth::CodeGrant, family: String) -> Response {
    let access = secrets::generate(SecretKind::OAuthAccess);
    let refresh = secrets::generate(SecretKind::OAuthRefresh);
    let (a_hash, r_hash) = (secrets::hash(&access), secrets::hash(&refresh));
    let grant2 = grant.clone();
    let now = now_ms();
    let stored = state
        .central
        .db
        .call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db::internal)?;
            db::oauth::insert_token(
                &tx,
                &db::oauth::NewToken {
                    hash: a_hash,
                    kind: "access",
                    family: &family,
                    grant: &grant2,
                    expires_at: now + ACCESS_TTL_SECS * 1000,
                },
            )?;
            db::oauth::insert_token(
                &tx,
                &db::oauth::NewToken {
                    hash: r_hash,
                    kind: "refresh",
                    family: &family,
                    grant: &grant2,
                    expires_at: now + REFRESH_TTL_MS,
                },
            )?;
            tx.commit().map_err(db::internal)
        })
        .await;
    if let Err(e) = stored {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.message());
    }
    let mut r = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_SECS,
        "refresh_token": refresh,
        "scope": grant.scope,
    }))
    .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The token endpoint.
pub(crate) async fn token(
    State(state): State<AppState>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send application/x-www-form-urlencoded parameters",
        );
    };
    let get = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client_id is required");
    };
    let resource = state.site.resource();
    if get("resource").is_some_and(|r| r.trim_end_matches('/') != resource) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "tokens are only issued for this server's MCP resource",
        );
    }
    match get("grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(verifier), Some(redirect_uri)) =
                (get("code"), get("code_verifier"), get("redirect_uri"))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code, code_verifier and redirect_uri are required",
                );
            };
            if !(43..=128).contains(&verifier.len())
                || !verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code_verifier must be 43 to 128 unreserved characters",
                );
            }
            let hash = secrets::hash(code);
            let grant = match state.central.db.call(move |conn| db::oauth::take_code(conn, &hash, now_ms())).await {
                Ok(db::oauth::CodeUse::Valid(g)) => g,
                Ok(db::oauth::CodeUse::Replayed) => {
                    tracing::warn!(client_id, "an authorization code was used twice; its tokens are revoked");
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the code was already used; the tokens it gave are now revoked",
                    );
                }
                Ok(db::oauth::CodeUse::Invalid) => {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code is unknown or expired");
                }
                Err(e) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.message()),
            };
            if grant.client_id != client_id || grant.redirect_uri != redirect_uri {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code was issued to another client or redirect_uri",
                );
            }
            if s256(verifier) != grant.code_challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code_verifier does not match the code_challenge",
                );
            }
            let family = uuid_like();
            let (hash, fam) = (secrets::hash(code), family.clone());
            if let Err(e) = state.central.db.call(move |conn| db::oauth::set_code_family(conn, &hash, &fam)).await {
                return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.message());
            }
            issue(&state, &grant, family).await
        }
        Some("refresh_token") => {
            let Some(refresh) = get("refresh_token") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is required");
            };
            let (hash, client) = (secrets::hash(refresh), client_id.to_owned());
            match state.central.db.call(move |conn| db::oauth::use_refresh(conn, &hash, &client, now_ms())).await {
                Ok(db::oauth::Refresh::Valid(grant, family)) => issue(&state, &grant, family).await,
                Ok(db::oauth::Refresh::Replayed) => {
                    tracing::warn!(client_id, "a rotated refresh token was used again; its grant is revoked");
                    oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "this refresh token was already used; every token of this sign-in is now revoked",
                    )
                }
                Ok(db::oauth::Refresh::Invalid) => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is unknown, expired or revoked",
                ),
                Err(e) => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.message()),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

fn uuid_like() -> String {
    secrets::generate(SecretKind::OAuthCode).replacen("mttrly_k_", "fam_", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_checked() {
        for ok in [
            "https://app.example.com/cb",
            "http://localhost:3000/callback",
            "http://127.0.0.1:55123/cb",
            "http://[::1]:9/x",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "com.example.app:/oauth2redirect",
            "https://app.example.com:8443/cb?x=1",
            "https://[2001:db8::1]/cb",
            "https://10.0.0.1/cb",
        ] {
            assert!(acceptable_redirect(ok), "{ok}");
        }
        for bad in [
            "http://evil.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://a.example/cb#frag",
            "http://localhost.evil.example/cb",
            "file:///etc/passwd",
            "https://good.example@evil.example/cb",
            "https://exämple.com/cb",
            "",
            "https://",
            // An empty or malformed authority: browsers repair these to another host than shown.
            "https:///evil.test/cb",
            "https:////evil.test/cb",
            "https://:443/cb",
            "https://evil.test:/cb",
            "https://evil.test:99999/cb",
            "https://evil.test./cb",
            "https://.evil.test/cb",
            "https://evil%2etest/cb",
            "https://evil.test\\@good.example/cb",
            "https://[]/cb",
            "https://[evil.test]/cb",
            "http:///localhost/cb",
            "cursor:///cb",
            "cursor://@evil/cb",
        ] {
            assert!(!acceptable_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn the_consent_page_names_the_host_the_browser_goes_to() {
        assert_eq!(redirect_host("app.example.com:8443"), Some("app.example.com"));
        assert_eq!(redirect_host("[::1]:9"), Some("[::1]"));
        assert_eq!(redirect_host(""), None);
        assert_eq!(redirect_host("a@b"), None);
    }

    #[test]
    fn pkce_s256_is_base64url_sha256() {
        // Computed independently: base64url(SHA-256(verifier)) without padding.
        assert_eq!(
            s256("mttrly-test-verifier-0123456789-abcdefghijklmnop"),
            "C9Eh3DAjL3z19MNierO69n6t9wNopjgg6-J2xUBrGN0"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
    }
}
