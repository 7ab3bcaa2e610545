//! Central as an OAuth 2.1 authorization server for MCP clients.
//!
//! RFC 8414 metadata, RFC 7591 dynamic registration of public clients, the authorization code
//! grant with PKCE (S256 only), a consent page for the person signed in in the browser (central's
//! own sign-in, `signin::web`; the grant is bound to that person and dies with them), single-use
//! codes that live a minute, exact redirect URI matching, access tokens bound to the MCP resource
//! (RFC 8707) and rotating refresh tokens whose reuse revokes the whole grant. Every code and
//! token is stored as its SHA-256 only.

//!
//! One module per job: [`register`] (RFC 7591 and the redirect URI rules), [`authorize`] (the
//! authorization request, the consent decision; its HTML and redirects come from `crate::web::page`)
//! and [`token`] (the token endpoint, PKCE, issuing and rotating tokens).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app_state::AppState;

mod authorize;
mod register;
mod token;

pub(crate) use authorize::{authorize_decide, authorize_page};
pub(crate) use register::register;
pub(crate) use token::token;

/// How long an authorization code lives.
pub(super) const CODE_TTL_MS: i64 = 60_000;
/// How long an access token lives.
pub const ACCESS_TTL_SECS: i64 = 3600;
/// How long a refresh token lives (each use replaces it).
pub(super) const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// How long a grant lives in all, however often it is refreshed.
pub(super) const GRANT_TTL_MS: i64 = 90 * 24 * 3600 * 1000;
/// Client registrations accepted per minute (registration is open, so it is bounded).
pub(super) const REGISTRATIONS_PER_MINUTE: u32 = 60;
/// The one scope: use the MCP server as the signed-in human's assistant.
pub(super) const SCOPE: &str = "mcp";

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

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (status, Json(json!({ "error": error, "error_description": description }))).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
