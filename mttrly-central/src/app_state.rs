//! What central's HTTP handlers share: the state every route gets, and where the site is
//! reachable.
//!
//! Its own module so that the route handlers (`oauth/*`) depend on this state and not on the
//! router: [`crate::http`] builds the state and mounts `oauth`'s routes, `oauth` never imports
//! `http`.

use std::sync::Arc;

use crate::mcp_sessions::SessionTable;
use crate::state::Central;

/// What the HTTP layer needs to know about where it is reachable.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// The base URL clients use (`public_http_url`, or the listen address).
    pub(crate) base_url: String,
    /// `Origin` values allowed on `/mcp`, normalised (`scheme://host[:port]`, lower case): the
    /// site's own and the browser-based MCP clients an operator allowed (`mcp_allowed_origins`).
    pub(crate) allowed_origins: Vec<String>,
    /// `Origin` values a form of this site may be posted from: the site's own only. An origin
    /// allowed for MCP clients may call `/mcp` with a token, never post a decision, a sign-in or
    /// an admin change with a person's cookie.
    pub(crate) form_origins: Vec<String>,
    /// The MCP endpoint's URL, built once: the gate needs it on every request.
    resource: String,
}

impl Site {
    /// A site reachable at `base_url` (and at `form_origins`, its own origins), whose MCP
    /// endpoint is `resource` and also answers browser clients from `mcp_origins`.
    pub(crate) fn new(base_url: String, form_origins: Vec<String>, mcp_origins: Vec<String>, resource: String) -> Self {
        let mut allowed_origins = mcp_origins;
        allowed_origins.extend(form_origins.iter().cloned());
        Self { base_url, allowed_origins, form_origins, resource }
    }

    /// The MCP resource identifier tokens are bound to (RFC 8707).
    pub(crate) fn resource(&self) -> String {
        self.resource.clone()
    }

    /// The same, borrowed (the gate resolves a token against it on every request).
    pub(crate) fn resource_str(&self) -> &str {
        &self.resource
    }
}

/// Central's public HTTP base URL: `public_http_url` when configured, else the bound listen
/// address. One function, since the gRPC login service names pages under it too.
pub(crate) fn public_base_url(config: &crate::config::Config, http_addr: std::net::SocketAddr) -> String {
    config.public_http_url.clone().map_or_else(|| format!("http://{http_addr}"), |u| u.trim_end_matches('/').to_owned())
}

/// State shared by the HTTP handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) central: Arc<Central>,
    pub(crate) site: Arc<Site>,
    /// Which user and token opened each MCP session. Every request on a session, including a
    /// client's answer to a confirmation form, must come from that user; anyone else gets 404.
    /// Also the per-token and per-user session caps, and the sessions' idle lifetime.
    pub(crate) sessions: Arc<SessionTable>,
    /// The MCP layer's sessions, to end the ones the table evicts or finds expired.
    pub(crate) mcp_sessions: mttrly_mcp::http::Sessions,
    /// Open OAuth client registration, bounded per minute.
    pub(crate) registrations: Arc<MinuteLimiter>,
    /// The dashboard's recent `file.current` answers, for file writes' diffs.
    pub(crate) file_readings: Arc<crate::dashboard::Readings>,
}

/// A fixed one-minute window counter.
#[derive(Default)]
pub(crate) struct MinuteLimiter(std::sync::Mutex<Option<(std::time::Instant, u32)>>);

impl MinuteLimiter {
    /// Whether one more event fits in this minute's `limit`.
    pub(crate) fn admit(&self, limit: u32) -> bool {
        let now = std::time::Instant::now();
        let mut w = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *w {
            Some((start, count)) if now.duration_since(*start) < std::time::Duration::from_secs(60) => {
                if *count >= limit {
                    return false;
                }
                *count += 1;
            }
            _ => *w = Some((now, 1)),
        }
        true
    }
}
