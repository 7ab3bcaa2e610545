//! RFC 7591 dynamic registration of public clients, and the rules a redirect URI must meet (at
//! registration and again on every authorization request).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{REGISTRATIONS_PER_MINUTE, oauth_error};
use crate::app_state::AppState;
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};

/// Whether a redirect URI may be registered: https, http on loopback only, or a private-use
/// scheme of a native app (never `javascript:`, `data:`, `file:`); no fragment. Wherever there is
/// an authority (`scheme://…`) it must be a well-formed `host[:port]` with a non-empty host and no
/// userinfo: the consent page names that host, and a browser "repairs" what we would show wrongly
/// (`https:///evil.test/cb` goes to `evil.test`, shown as an empty host).
pub(super) fn acceptable_redirect(uri: &str) -> bool {
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
pub(super) fn redirect_host(authority: &str) -> Option<&str> {
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
    let now = now_ms();
    if let Err(e) = state.central.db.oauth().insert_client(client.clone(), now).await {
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
}
