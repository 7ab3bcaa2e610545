//! The authorization request: checking it, the login and consent page, and the human's decision
//! (an authorization code bound to the PKCE challenge and the MCP resource).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::page::{escape, page, redirect_to};
use super::register::{acceptable_redirect, redirect_host};
use super::{CODE_TTL_MS, GRANT_TTL_MS, SCOPE};
use crate::app_state::AppState;
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};

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
    // The consent form is one more transport for a human's API token: the same resolution as
    // the gRPC API (an OAuth access token never mints another grant).
    let token = q.get("token").map_or("", |t| t.trim());
    let presented = (!token.is_empty() && token.len() <= 256).then_some(token);
    let owner = crate::auth::resolve(&state.central, presented, crate::auth::Resource::Api).await.ok();
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
    let result = state.central.db.oauth().insert_code(&code_hash, grant.clone(), now_ms() + CODE_TTL_MS).await;
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
