//! The token endpoint: the code exchange (PKCE S256, single use) and refresh token rotation
//! (reuse revokes the whole grant).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{ACCESS_TTL_SECS, REFRESH_TTL_MS, oauth_error};
use crate::app_state::AppState;
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn issue(state: &AppState, grant: &db::oauth::CodeGrant, family: String) -> Response {
    let access = secrets::generate(SecretKind::OAuthAccess);
    let refresh = secrets::generate(SecretKind::OAuthRefresh);
    let (a_hash, r_hash) = (secrets::hash(&access), secrets::hash(&refresh));
    let now = now_ms();
    let stored = state
        .central
        .db
        .oauth()
        .insert_token_pair(db::oauth::TokenPair {
            grant: grant.clone(),
            family,
            access_hash: a_hash,
            access_expires_at: now + ACCESS_TTL_SECS * 1000,
            refresh_hash: r_hash,
            refresh_expires_at: now + REFRESH_TTL_MS,
        })
        .await;
    match stored {
        Ok(true) => {}
        Ok(false) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "this sign-in was revoked; sign in again");
        }
        Err(e) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.message()),
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
            let family = uuid_like();
            let grant = match state.central.db.oauth().take_code(&hash, &family, now_ms()).await {
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
            issue(&state, &grant, family).await
        }
        Some("refresh_token") => {
            let Some(refresh) = get("refresh_token") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is required");
            };
            match state.central.db.oauth().use_refresh(&secrets::hash(refresh), client_id, now_ms()).await {
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
    fn pkce_s256_is_base64url_sha256() {
        // Computed independently: base64url(SHA-256(verifier)) without padding.
        assert_eq!(
            s256("mttrly-test-verifier-0123456789-abcdefghijklmnop"),
            "C9Eh3DAjL3z19MNierO69n6t9wNopjgg6-J2xUBrGN0"
        );
    }
}
