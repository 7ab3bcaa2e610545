//! Central's HTTP accept loop.
//!
//! `axum::serve` gives no hold on connections: no header read timeout (hyper needs a timer for
//! one), no cap, no idle timeout. This loop serves the same router through hyper-util's
//! HTTP/1 + HTTP/2 builder with those limits (see [`crate::conn`]) and shuts down gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::conn::{TrackLayer, Tracker};

/// Serves `app` on `listener` under `tracker`'s limits until `stop` completes, then lets requests
/// in flight finish for at most `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tracker: Arc<Tracker>,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let app = tower::ServiceBuilder::new().layer(TrackLayer).service(app);
    tokio::pin!(stop);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or the peer gave up before accept: wait a moment
                    // instead of spinning.
                    tracing::debug!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(io) = tracker.admit(tcp) else { continue };
        // Small request/response exchanges: without this, Nagle adds ~40 ms per MCP call.
        if let Err(e) = io.get_ref().set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let handle = io.handle();
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(handle.clone());
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(axum::body::Body::new)).await;
                Ok::<_, Infallible>(match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::debug!("HTTP connections still open after the grace period (long-lived streams); closing");
    }
}
