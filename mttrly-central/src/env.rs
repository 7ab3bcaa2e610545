//! Every environment variable central reads, declared once with what it means.

/// Where central keeps its database, TLS material and state (`--data-dir`).
pub const DATA_DIR: &str = "MTTRLY_DATA_DIR";
/// The gRPC listen address for agents and API clients (`--grpc-listen`), e.g. `127.0.0.1:50051`.
pub const GRPC_LISTEN: &str = "MTTRLY_GRPC_LISTEN";
/// The HTTP listen address for `/healthz` and, later, `/mcp` (`--http-listen`).
pub const HTTP_LISTEN: &str = "MTTRLY_HTTP_LISTEN";
/// The gRPC URL agents and the CLI use to reach central, when it differs from the listen address
/// (behind NAT or a load balancer).
pub const PUBLIC_GRPC_URL: &str = "MTTRLY_PUBLIC_GRPC_URL";
/// The plan `init` gives the first account (`watchdog`, `deployment_bro`, `deployment_crew`).
pub const PLAN: &str = "MTTRLY_PLAN";
/// Expected seconds between agent heartbeats.
pub const HEARTBEAT_INTERVAL_SECONDS: &str = "MTTRLY_HEARTBEAT_INTERVAL_SECONDS";
/// How many heartbeats an agent may miss before its server counts as offline.
pub const OFFLINE_AFTER_MISSED_HEARTBEATS: &str = "MTTRLY_OFFLINE_AFTER_MISSED_HEARTBEATS";
/// Accept plaintext gRPC on a non-loopback address (logs a warning).
pub const INSECURE: &str = "MTTRLY_INSECURE";
/// `tracing` filter for central's logs, e.g. `info` or `mttrly_central=debug`.
pub const LOG: &str = "MTTRLY_LOG";
/// Only tools that change nothing (`1`/`true`).
pub const READ_ONLY: &str = "MTTRLY_READ_ONLY";
/// The toolsets switched on, comma-separated.
pub const TOOLSETS: &str = "MTTRLY_TOOLSETS";
/// The public URL of central's HTTP listener.
pub const PUBLIC_HTTP_URL: &str = "MTTRLY_PUBLIC_HTTP_URL";
/// Browser origins allowed to call `/mcp`, comma-separated (the name the MCP ecosystem uses).
pub const MCP_ALLOWED_ORIGINS: &str = "MCP_ALLOWED_ORIGINS";
/// Host names `/mcp` answers to, comma-separated.
pub const MCP_ALLOWED_HOSTS: &str = "MCP_ALLOWED_HOSTS";
/// The limits against hostile load (see `Config` for each one's meaning): live MCP sessions per
/// token and per user, MCP session idle lifetime, pending actions per server, connection caps,
/// the handshake timeout and the idle connection timeouts, an investigation's idle lifetime and
/// the longest bypass.
pub const LIMITS: [&str; 13] = [
    "MTTRLY_MCP_SESSIONS_PER_TOKEN",
    "MTTRLY_MCP_SESSIONS_PER_USER",
    "MTTRLY_MCP_SESSION_IDLE_SECONDS",
    "MTTRLY_MAX_PENDING_ACTIONS_PER_SERVER",
    "MTTRLY_HTTP_MAX_CONNECTIONS",
    "MTTRLY_GRPC_MAX_CONNECTIONS",
    "MTTRLY_MAX_HANDSHAKING_CONNECTIONS",
    "MTTRLY_HANDSHAKE_TIMEOUT_SECONDS",
    "MTTRLY_HTTP_IDLE_TIMEOUT_SECONDS",
    "MTTRLY_GRPC_IDLE_TIMEOUT_SECONDS",
    "MTTRLY_MCP_APPROVAL_WAIT_SECONDS",
    "MTTRLY_INVESTIGATION_IDLE_MINUTES",
    "MTTRLY_BYPASS_MAX_MINUTES",
];
