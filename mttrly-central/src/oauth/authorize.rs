//! The authorization request: checking it, the consent page for the person signed in in this
//! browser (the same session as every other page of central: `signin::web`), and their decision
//! (an authorization code bound to the PKCE challenge, the MCP resource and the person).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use mttrly_core::{MttrlyError, ToolSurface};
use serde_json::json;

use super::register::{acceptable_redirect, redirect_host};
use super::{CODE_TTL_MS, GRANT_TTL_MS, SCOPE};
use crate::app_state::AppState;
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};
use crate::signin::web::{SignedIn, audit, check_csrf, check_origin, csrf_input, refused, safe_next, see_other};
use crate::web::page::{escape, page, redirect_to, urlencode};

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

async fn check_request(state: &AppState, q: &HashMap<String, String>) -> Result<AuthRequest, AuthError> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return Err(AuthError::Page("the request names no client_id".into()));
    };
    let client = state
        .central
        .db
        .oauth()
        .client(client_id)
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

fn consent(signed: &SignedIn, req: &AuthRequest, q: &HashMap<String, String>) -> Response {
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
    let body = format!(
        "<p>Signed in as <b>{user}</b> ({role}).</p>\
         <p><b>{name}</b> wants to use mttrly as your assistant: read server status, alerts and logs, run diagnostics, \
         and <b>request</b> changes. Every change still waits for a human's approval.</p>\
         <p>It will send you back to <code>{host}</code>. Resource: <code>{res}</code>.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}{csrf}\
         <button name=\"decision\" value=\"approve\">Allow</button> \
         <button name=\"decision\" value=\"deny\">Deny</button></form>\
         <p>Not {user}? <a href=\"/\">Sign out first</a>.</p>",
        user = escape(&signed.name),
        role = escape(signed.role.as_str()),
        name = escape(&req.client.client_name),
        host = escape(host),
        res = escape(&req.resource),
        csrf = csrf_input(signed),
    );
    page(StatusCode::OK, "Allow access to mttrly?", &body)
}

/// GET: the consent page for the signed-in person. The request is checked first (a bad one gets
/// its error page without a detour through sign-in); then, without a session, the browser goes
/// to `/signin?next=` this very URL and comes back here once signed in.
pub(crate) async fn authorize_page(
    State(state): State<AppState>,
    signed: Option<SignedIn>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let req = match check_request(&state, &q).await {
        Ok(req) => req,
        // Before the human acted, an error is a page, never a redirect: a self-registered client
        // could otherwise use this endpoint to bounce browsers to its URI (RFC 9700 §4.11.2).
        Err(AuthError::Redirect(_, code, why)) => return fail(AuthError::Page(format!("{code}: {why}")), None, ""),
        Err(e) => return fail(e, None, ""),
    };
    let Some(signed) = signed else {
        let here = uri.path_and_query().map_or("/oauth/authorize", axum::http::uri::PathAndQuery::as_str);
        return match safe_next(here) {
            Some(next) => see_other(&format!("/signin?next={}", urlencode(&next)), None),
            None => fail(AuthError::Page("this authorization request is too long to sign in with".into()), None, ""),
        };
    };
    consent(&signed, &req, &q)
}

/// POST: the signed-in person's decision. The form must come from this site with this session's
/// CSRF token (otherwise a page elsewhere could make a signed-in browser consent); refused forms
/// get a page, never a redirect to the client.
pub(crate) async fn authorize_decide(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    Form(q): Form<HashMap<String, String>>,
) -> Response {
    let csrf = q.get("csrf").map_or("", String::as_str);
    if let Err(e) = check_origin(&state.site, &headers).and_then(|()| check_csrf(&signed, csrf)) {
        return refused(&e);
    }
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
    let params =
        json!({ "client_id": req.client.client_id, "client_name": req.client.client_name, "resource": req.resource });
    if q.get("decision").map(String::as_str) != Some("approve") {
        let denied: Result<(), MttrlyError> = Ok(());
        audit(&state, &signed.account_id, &signed.user_id, &signed.name, "OAuthConsentDenied", params, &denied);
        let p =
            with_state(vec![("error", "access_denied".into()), ("error_description", "the user denied access".into())]);
        return redirect_to(&req.redirect_uri, &p.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    }
    let code = secrets::generate(SecretKind::OAuthCode);
    // Bound to the person, not to a token: the grant ends when they are removed or it is revoked
    // (`tokens revoke oauth_…`). Their whole surface; their role, read afresh on every use of an
    // access token, still decides what they may do.
    let grant = db::oauth::CodeGrant {
        client_id: req.client.client_id.clone(),
        account_id: signed.account_id.clone(),
        user_id: signed.user_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        resource: req.resource.clone(),
        scope: SCOPE.to_owned(),
        human_token_hash: None,
        surface: ToolSurface::ALL,
        grant_expires_at: now_ms() + GRANT_TTL_MS,
    };
    let code_hash = secrets::hash(&code);
    let result = state.central.db.oauth().insert_code(&code_hash, grant, now_ms() + CODE_TTL_MS).await;
    audit(&state, &signed.account_id, &signed.user_id, &signed.name, "OAuthConsent", params, &result);
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
