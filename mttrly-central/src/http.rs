//! Central's HTTP surface: `/healthz`, and `/mcp` (Streamable HTTP) with its OAuth resource
//! metadata.
//!
//! Every request to `/mcp` passes [`mcp_gate`] first, in this order: an `Origin` that is not
//! allowed gets 403 (before authentication, token or not: a browser page on another site must
//! never reach the tools); then the bearer token is resolved by [`crate::auth::resolve`] (the same
//! rules as the gRPC API, plus OAuth access tokens for this resource), and a missing or refused
//! one gets 401 with the `WWW-Authenticate` challenge pointing at the protected-resource metadata
//! (RFC 9728); then the token's owner rides in the request's extensions to the MCP server.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mttrly_core::{ErrorCode, MttrlyError};
use serde_json::{Value, json};

use crate::app_state::{AppState, Site};
use crate::db::accounts::TokenOwner;
use crate::mcp_sessions::{Lookup, SessionLimits, SessionTable};
use crate::state::Central;

/// Where the MCP endpoint lives.
pub const MCP_PATH: &str = "/mcp";
/// The protected-resource metadata of `/mcp` (RFC 9728: the well-known prefix, then the path).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// The HTTP router. `http_addr` is the bound listen address (the base URL when no public URL is
/// configured).
pub fn router(central: Arc<Central>, http_addr: std::net::SocketAddr) -> Router {
    let base_url = crate::app_state::public_base_url(&central.config, http_addr);
    let mcp_origins: Vec<String> = central.config.mcp_allowed_origins.iter().map(|o| normalise_origin(o)).collect();
    let mut own_origins = vec![normalise_origin(&base_url)];
    if http_addr.ip().is_loopback() {
        own_origins.push(normalise_origin(&format!("http://localhost:{}", http_addr.port())));
        own_origins.push(normalise_origin(&format!("http://127.0.0.1:{}", http_addr.port())));
    }
    let mut allowed_hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), "[::1]".into()];
    allowed_hosts.extend(central.config.mcp_allowed_hosts.iter().cloned());
    if let Some(host) = host_of(&base_url) {
        allowed_hosts.push(host);
    }
    if !http_addr.ip().is_unspecified() {
        allowed_hosts.push(http_addr.ip().to_string());
    }
    let resource = format!("{base_url}{MCP_PATH}");
    let site = Arc::new(Site::new(base_url, own_origins, mcp_origins, resource));
    let idle = Duration::from_secs(u64::from(central.config.mcp_session_idle_seconds));
    let table = Arc::new(SessionTable::new(SessionLimits {
        per_token: central.config.mcp_sessions_per_token,
        per_user: central.config.mcp_sessions_per_user,
        idle,
    }));
    // The gate ends idle sessions; the MCP layer's own timeout is only a backstop behind it.
    let mcp_sessions = mttrly_mcp::http::Sessions::new(idle + SESSION_SWEEP);
    let mcp = mttrly_mcp::http::service_with_sessions(
        Arc::new(crate::mcp::CentralBackend::new(Arc::clone(&central))),
        mttrly_mcp::server::Options {
            surface: mttrly_core::ToolSurface::default(),
            human_wait: Duration::from_secs(u64::from(central.config.mcp_approval_wait_seconds)),
            ..mttrly_mcp::server::Options::default()
        },
        mttrly_mcp::http::HttpOptions { allowed_hosts, allowed_origins: Vec::new() },
        &mcp_sessions,
    );
    tokio::spawn(sweep_sessions(Arc::downgrade(&table), mcp_sessions.downgrade()));
    let state = AppState {
        central,
        site,
        sessions: table,
        mcp_sessions,
        registrations: Arc::default(),
        file_readings: Arc::default(),
    };
    Router::new()
        .route("/healthz", get(healthz))
        // Issue 16: the install script and the agent binaries it downloads (no authentication:
        // the one-liner pins each binary's SHA-256 and carries the install token itself).
        .route("/install.sh", get(crate::dist::install_script))
        .route("/dist/mttrly-agent/{target}", get(crate::dist::binary))
        .route(
            "/hooks/alertmanager",
            axum::routing::post(crate::hooks::alertmanager::receive)
                .layer(axum::extract::DefaultBodyLimit::max(crate::hooks::MAX_BODY)),
        )
        .route(
            "/hooks/grafana",
            axum::routing::post(crate::hooks::grafana::receive)
                .layer(axum::extract::DefaultBodyLimit::max(crate::hooks::MAX_BODY)),
        )
        .route(
            "/hooks/deploy",
            axum::routing::post(crate::hooks::deploy::receive)
                .layer(axum::extract::DefaultBodyLimit::max(crate::hooks::deploy::MAX_BODY)),
        )
        .route(
            "/hooks/pagerduty",
            axum::routing::post(crate::hooks::pagerduty::receive)
                .layer(axum::extract::DefaultBodyLimit::max(crate::hooks::MAX_BODY)),
        )
        .route(
            "/hooks/telegram",
            axum::routing::post(crate::chat::telegram::receiver::webhook)
                .layer(axum::extract::DefaultBodyLimit::max(crate::chat::telegram::receiver::MAX_BODY)),
        )
        .route(
            "/hooks/slack/interactions",
            axum::routing::post(crate::chat::slack::handlers::interactions)
                .layer(axum::extract::DefaultBodyLimit::max(crate::chat::slack::MAX_BODY)),
        )
        .route(
            "/hooks/slack/commands",
            axum::routing::post(crate::chat::slack::handlers::commands)
                .layer(axum::extract::DefaultBodyLimit::max(crate::chat::slack::MAX_BODY)),
        )
        .route(RESOURCE_METADATA_PATH, get(resource_metadata))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-authorization-server", get(crate::oauth::metadata))
        .route("/oauth/register", axum::routing::post(crate::oauth::register))
        .route("/oauth/authorize", get(crate::oauth::authorize_page).post(crate::oauth::authorize_decide))
        .route("/oauth/token", axum::routing::post(crate::oauth::token))
        .route("/signin", get(crate::signin::web::pages::signin_form).post(crate::signin::web::pages::signin_submit))
        .route("/signout", axum::routing::post(crate::signin::web::pages::signout))
        .route("/device", get(crate::signin::device_flow::page::show).post(crate::signin::device_flow::page::submit))
        .route("/invite/{secret}", get(crate::signin::web::invite::show).post(crate::signin::web::invite::submit))
        .route(crate::signin::oidc::flow::START_PATH, get(crate::signin::oidc::flow::start))
        .route(crate::signin::oidc::flow::CALLBACK_PATH, get(crate::signin::oidc::flow::callback))
        // The dashboard (issue 14): `/`, `/actions/…`, `/servers`, `/events`, `/assets/…`.
        .merge(crate::dashboard::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .nest_service(MCP_PATH, mcp)
        .layer(middleware::from_fn_with_state(state.clone(), mcp_gate))
        .with_state(state)
}

/// How often expired MCP sessions are swept (they are also refused on use, sweep or not).
const SESSION_SWEEP: Duration = Duration::from_secs(30);

/// Ends expired sessions in the MCP layer, until the router (and so the table) is dropped.
async fn sweep_sessions(table: std::sync::Weak<SessionTable>, mcp: mttrly_mcp::http::WeakSessions) {
    let mut tick = tokio::time::interval(SESSION_SWEEP);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (Some(table), Some(mcp)) = (table.upgrade(), mcp.upgrade()) else { return };
        let expired = table.sweep();
        drop(table);
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "ending idle MCP sessions");
        }
        for id in expired {
            mcp.close(&id).await;
        }
    }
}

/// Ends these sessions in the MCP layer without holding up the request.
fn close_later(mcp: &mttrly_mcp::http::Sessions, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let mcp = mcp.clone();
    tokio::spawn(async move {
        for id in ids {
            mcp.close(&id).await;
        }
    });
}

async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "agents_connected": state.central.agents.connected() }))
}

/// RFC 9728 metadata for the `/mcp` resource.
async fn resource_metadata(State(state): State<AppState>) -> Json<Value> {
    let base = &state.site.base_url;
    Json(json!({
        "resource": format!("{base}{MCP_PATH}"),
        "authorization_servers": [base],
        "scopes_supported": ["mcp"],
        "bearer_methods_supported": ["header"],
        "resource_name": "mttrly",
        "resource_documentation": "https://github.com/mttrly/mttrly#connect-an-mcp-client",
    }))
}

/// `scheme://host[:port]` in lower case, without a trailing slash or path.
fn normalise_origin(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    match origin.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            let authority = match (scheme, authority.rsplit_once(':')) {
                ("http", Some((host, "80"))) | ("https", Some((host, "443"))) => host,
                _ => authority,
            };
            format!("{scheme}://{authority}")
        }
        None => origin,
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))?
    } else {
        authority.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then_some(host)
}

fn error_response(status: StatusCode, err: &MttrlyError) -> Response {
    (status, Json(serde_json::to_value(err.body()).unwrap_or(Value::Null))).into_response()
}

fn challenge(site: &Site, err: &MttrlyError, invalid_token: bool) -> Response {
    let metadata = format!("{}{RESOURCE_METADATA_PATH}", site.base_url);
    let value = if invalid_token {
        format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{metadata}\"",
            err.message().replace('"', "'")
        )
    } else {
        format!("Bearer resource_metadata=\"{metadata}\"")
    };
    let mut response = error_response(StatusCode::UNAUTHORIZED, err);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// Origin check, then authentication, for `/mcp`.
async fn mcp_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path != MCP_PATH && !path.starts_with("/mcp/") {
        return next.run(request).await;
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| state.site.allowed_origins.contains(&normalise_origin(o)));
        if !allowed {
            let shown: String = String::from_utf8_lossy(origin.as_bytes()).chars().take(200).collect();
            tracing::warn!(origin = %shown, "refused /mcp request from an origin that is not allowed");
            return error_response(
                StatusCode::FORBIDDEN,
                &MttrlyError::new(
                    ErrorCode::Forbidden,
                    format!("origin `{shown}` is not allowed to call this MCP server; add it to MCP_ALLOWED_ORIGINS"),
                )
                .with_detail("origin", shown),
            );
        }
    }
    let resource = crate::auth::Resource::Mcp(state.site.resource_str());
    match crate::auth::resolve(&state.central, crate::auth::http_credential(request.headers()), resource).await {
        Ok(owner) => route_mcp(&state, owner, request, next).await,
        Err(crate::auth::AuthRefusal::Internal(e)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(refusal) => {
            let invalid_token = refusal.invalid_token();
            challenge(&state.site, &refusal.error(resource), invalid_token)
        }
    }
}

/// An authenticated `/mcp` request: session ownership, the session caps, then the MCP layer.
async fn route_mcp(state: &AppState, owner: TokenOwner, mut request: Request, next: Next) -> Response {
    let user = owner.session_key();
    let session = request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let method = request.method().clone();
    let mut reservation = None;
    let mut in_use = None;
    let mut stateless_use = None;
    // 2026-07-28 requests name their revision in this header and open no session: they are not
    // an `initialize`, so they take no session slot, only one of the person's stateless slots
    // for as long as the answer lasts (a `subscriptions/listen` stream: until it ends).
    let stateless = session.is_none()
        && method == axum::http::Method::POST
        && request
            .headers()
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok())
            .is_some_and(mttrly_mcp::http::is_stateless_revision);
    match &session {
        Some(id) => match state.sessions.touch(id, &user) {
            Lookup::Mine(used) => in_use = Some(used),
            Lookup::Foreign => {
                tracing::warn!("a request used another user's MCP session id; refused");
                return no_such_session();
            }
            Lookup::Unknown => {
                // Unknown here means never opened, ended or expired: make sure the MCP layer
                // has let go of it too.
                close_later(&state.mcp_sessions, vec![id.clone()]);
                return no_such_session();
            }
        },
        None if stateless => match state.sessions.take_stateless(&user) {
            Ok(slot) => stateless_use = Some(slot),
            Err(e) => return too_many(&e),
        },
        // A POST without a session is an `initialize`: hold a slot before the session exists,
        // so concurrent ones cannot overshoot the caps.
        None if method == axum::http::Method::POST => match state.sessions.reserve(&owner.credential, &user) {
            Ok(mut r) => {
                close_later(&state.mcp_sessions, std::mem::take(&mut r.evicted));
                reservation = Some(r);
            }
            Err(e) => return too_many(&e),
        },
        None => {}
    }
    request.extensions_mut().insert(owner);
    let response = next.run(request).await;
    let created = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok());
    match (session, created, reservation) {
        (None, Some(created), Some(reservation)) => reservation.commit(created),
        // A session opened by a request that claimed 2026-07-28 took no slot: it is not kept.
        (None, Some(created), None) => {
            close_later(&state.mcp_sessions, vec![created.to_owned()]);
            return error_response(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(
                    ErrorCode::ValidationError,
                    "an `initialize` must not carry MCP-Protocol-Version 2026-07-28 or later (that revision has no initialize)",
                ),
            );
        }
        (Some(id), _, _) if method == axum::http::Method::DELETE && response.status().is_success() => {
            state.sessions.remove(&id);
            // 204, not the 202 the MCP layer answers: the session is gone, nothing is pending,
            // and clients (the official Python SDK among them) expect 200 or 204.
            return StatusCode::NO_CONTENT.into_response();
        }
        _ => {}
    }
    match (in_use, stateless_use) {
        // The session stays in use until the answer ends (an SSE stream: until it closes).
        (Some(used), _) => {
            response.map(|body| axum::body::Body::new(crate::mcp_sessions::InUseBody { body, _use: used }))
        }
        (None, Some(slot)) => {
            response.map(|body| axum::body::Body::new(crate::mcp_sessions::InUseBody { body, _use: slot }))
        }
        (None, None) => response,
    }
}

/// A refusal for being over a cap: 429 with `Retry-After` when the error says when.
fn too_many(e: &MttrlyError) -> Response {
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, e);
    if let Some(retry) = e.details().get("retry_after_seconds").and_then(Value::as_u64)
        && let Ok(v) = HeaderValue::from_str(&retry.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn no_such_session() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &MttrlyError::new(ErrorCode::NotFound, "no such MCP session (it ended or expired): initialize a new one"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_by_scheme_host_and_port() {
        assert_eq!(normalise_origin("HTTPS://App.Example.com:443/"), "https://app.example.com");
        assert_eq!(normalise_origin("http://localhost:80"), "http://localhost");
        assert_eq!(normalise_origin("http://localhost:8080/path"), "http://localhost:8080");
        assert_ne!(normalise_origin("https://app.example.com.evil.test"), normalise_origin("https://app.example.com"));
        assert_eq!(normalise_origin("null"), "null");
    }

    #[test]
    fn hosts_come_out_of_urls() {
        assert_eq!(host_of("https://mttrly.example.com/x").as_deref(), Some("mttrly.example.com"));
        assert_eq!(host_of("http://127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("http://[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(host_of("nonsense"), None);
    }
}
