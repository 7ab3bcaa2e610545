//! Streamable HTTP: the service a web server mounts at `/mcp`.
//!
//! Authentication, the `Origin` allowlist and the OAuth challenge belong to the mounting server
//! (central), which runs them before a request reaches this service and puts the caller in the
//! request's extensions. This service adds sessions (`Mcp-Session-Id`, DELETE to end one), the
//! `Host` check against DNS rebinding, and a request size limit.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::backend::Backend;
use crate::server::{McpServer, Options};

/// Whether an `MCP-Protocol-Version` header value names a revision without `initialize` or
/// sessions (2026-07-28 and later), which is served statelessly. Revisions are dates, so they
/// compare as strings.
pub fn is_stateless_revision(header: &str) -> bool {
    header >= rmcp::model::ProtocolVersion::NO_INITIALIZE.as_str()
}

/// The largest JSON-RPC request body accepted, in bytes. Tool arguments are small; a write_file
/// of a managed config is the largest legitimate request.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The Streamable HTTP service as a tower service that is cheap to clone.
///
/// rmcp's service clones itself, configuration included (the allowed hosts and origins, each a
/// `String`), on every request, and a router clones it once more; measured, that was a visible
/// share of a `tools/call`'s CPU. Here a request clones one `Arc`.
pub struct McpHttpService<B: Backend>(Arc<StreamableHttpService<McpServer<B>, LocalSessionManager>>);

impl<B: Backend> Clone for McpHttpService<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<B: Backend> McpHttpService<B> {
    fn new(inner: StreamableHttpService<McpServer<B>, LocalSessionManager>) -> Self {
        Self(Arc::new(inner))
    }
}

/// A boxed response future, as rmcp's own service returns.
type ResponseFuture = Pin<Box<dyn Future<Output = Result<http::Response<axum::body::Body>, Infallible>> + Send>>;

impl<B, Body> tower::Service<http::Request<Body>> for McpHttpService<B>
where
    B: Backend,
    Body: http_body::Body + Send + 'static,
    Body::Error: Display,
    Body::Data: Send + 'static,
{
    type Response = http::Response<axum::body::Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        // A POST's answer stream: one write for a fast answer (see `sse.rs`). A GET opens the
        // session's standalone stream, which has no answer to wait for.
        let post = request.method() == http::Method::POST;
        Box::pin(async move {
            let response = inner.handle(request).await.map(axum::body::Body::new);
            Ok(if post { crate::sse::coalesce_first_message(response).await } else { response })
        })
    }
}

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values (`name` or `name:port`) the service answers to; anything else gets 403.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed (`scheme://host[:port]`); checked by this service only in the
    /// standalone server (central checks them itself, before authentication).
    pub allowed_origins: Vec<String>,
}

/// The Streamable HTTP service with one caller for every request (the standalone server, which
/// holds one token for central and only listens on loopback).
pub fn service_with_caller<B: Backend>(
    backend: Arc<B>,
    options: Options,
    http: HttpOptions,
    caller: B::Caller,
) -> McpHttpService<B> {
    let options = Arc::new(options);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(http.allowed_hosts)
        .with_allowed_origins(http.allowed_origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(MAX_REQUEST_BYTES)
        .with_legacy_session_mode(true)
        // A 2026-07-28 request answered by one message gets it as `application/json`, not as a
        // one-event SSE stream (rmcp falls back to SSE when more than one message is sent, as
        // `subscriptions/listen` does). Measured: the stream's setup and framing were a visible
        // share of a stateless call. Sessions of earlier revisions are not affected.
        .with_json_response(true);
    McpHttpService::new(StreamableHttpService::new(
        move || Ok(McpServer::with_caller(Arc::clone(&backend), Arc::clone(&options), caller.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    ))
}

/// The live sessions of a [`service`], so the mounting server can end them: central's gate
/// caps sessions per token and per user, and ends the ones it evicts or finds expired.
#[derive(Clone)]
pub struct Sessions(Arc<LocalSessionManager>);

impl Sessions {
    /// Sessions that end by themselves after `idle` without activity (a backstop: the mounting
    /// server normally ends them first).
    pub fn new(idle: std::time::Duration) -> Self {
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(idle);
        Self(Arc::new(manager))
    }

    /// A handle that does not keep the sessions alive (for background sweeps, which must not
    /// outlive the service).
    pub fn downgrade(&self) -> WeakSessions {
        WeakSessions(Arc::downgrade(&self.0))
    }

    /// Ends a session; unknown ids are ignored.
    pub async fn close(&self, id: &str) {
        use rmcp::transport::streamable_http_server::session::SessionManager as _;
        if let Err(e) = self.0.close_session(&Arc::from(id)).await {
            tracing::debug!(error = %e, "closing an MCP session failed");
        }
    }
}

/// See [`Sessions::downgrade`].
#[derive(Clone)]
pub struct WeakSessions(std::sync::Weak<LocalSessionManager>);

impl WeakSessions {
    /// The sessions, while the service still exists.
    pub fn upgrade(&self) -> Option<Sessions> {
        self.0.upgrade().map(Sessions)
    }
}

/// The Streamable HTTP service, one [`McpServer`] per session, with default session lifetimes.
pub fn service<B: Backend>(backend: Arc<B>, options: Options, http: HttpOptions) -> McpHttpService<B> {
    service_with_sessions(backend, options, http, &Sessions(Arc::new(LocalSessionManager::default())))
}

/// The Streamable HTTP service, one [`McpServer`] per session, keeping its sessions in `sessions`.
pub fn service_with_sessions<B: Backend>(
    backend: Arc<B>,
    options: Options,
    http: HttpOptions,
    sessions: &Sessions,
) -> McpHttpService<B> {
    let options = Arc::new(options);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(http.allowed_hosts)
        .with_max_request_body_bytes(MAX_REQUEST_BYTES)
        .with_legacy_session_mode(true)
        // A 2026-07-28 request answered by one message gets it as `application/json`, not as a
        // one-event SSE stream (rmcp falls back to SSE when more than one message is sent, as
        // `subscriptions/listen` does). Measured: the stream's setup and framing were a visible
        // share of a stateless call. Sessions of earlier revisions are not affected.
        .with_json_response(true);
    McpHttpService::new(StreamableHttpService::new(
        move || Ok(McpServer::per_request(Arc::clone(&backend), Arc::clone(&options))),
        Arc::clone(&sessions.0),
        config,
    ))
}
