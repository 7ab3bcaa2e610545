//! HTTP/2 settings of the gRPC listener, sized for a fleet: tens of thousands of agents each
//! holding one long-lived connection with one stream, idle but for a heartbeat every ten
//! seconds, and now and then a large answer (a file tail, a search: several MB).
//!
//! What an idle agent costs central is mostly fixed per connection and per stream (h2's frame
//! buffers and HPACK tables, tonic's message buffers, the outbound queue); BENCHMARKS.md's
//! "Fleet" section has the measured breakdown. Flow-control windows allocate nothing up front,
//! so they are sized for answers, not for memory: a window bounds throughput to window / RTT, and
//! a 4 MB file tail over a 50 ms path needs about a megabyte of window to arrive within a second.

use std::time::Duration;

use tonic::transport::Server;

/// How often central pings a connection's peer. Agents ping every 30 s themselves; central's own
/// ping finds a peer that vanished without a FIN (a powered-off host, a dropped NAT mapping).
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-stream receive window: one stream per agent, whose answers can be several MB.
pub(crate) const STREAM_WINDOW: u32 = 1024 * 1024;
/// Per-connection receive window: an agent's connection carries its one session stream, plus a
/// CLI's or an API client's unary calls on theirs.
pub(crate) const CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// Concurrent streams one connection may open. An agent opens one (its session); API clients a
/// handful. h2 keeps per-stream state only for streams that exist, so this bounds a misbehaving
/// peer, not an idle one's cost.
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 64;

/// Applies the fleet's HTTP/2 settings to the gRPC server builder.
pub(crate) fn http2<L>(builder: Server<L>) -> Server<L> {
    builder
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_adaptive_window(Some(false))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
}
