//! `mttrly-agent`: the library behind the agent that runs on each server.
//!
//! The agent connects *outbound* to central over the `mttrly.agent.v1` stream (it never
//! listens), says hello, sends heartbeats with real host metrics, answers tasks, and reconnects
//! with exponential backoff and jitter when the stream breaks. The server owner's local policy
//! ([`policy`]) is the last word on what it will do.

pub mod backoff;
pub mod capabilities;
pub mod commands;
pub mod credentials;
pub mod deploys;
pub mod detectors;
pub mod diagnostics;
pub mod enroll;
pub mod env;
pub mod exec;
pub mod executed;
pub mod files;
pub mod host;
pub mod install;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod playbooks;
pub mod policy;
pub mod session;
pub mod signal;
pub mod task;
pub mod update;

pub use credentials::Credentials;
pub use session::{RunOptions, Sampler, run};

/// The agent's version, reported in `Hello` and at enrollment.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The channel protocol revision this agent speaks.
pub const PROTOCOL_REVISION: u32 = 1;

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Central refused or could not be reached; carries the seed error. Transparent: the seed
    /// error is the whole story (its message already names the context), so it is shown once.
    #[error(transparent)]
    Central(mttrly_core::MttrlyError),
    /// Reading or writing the state directory failed.
    #[error("{what} {path}")]
    State {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file's JSON cannot be read or written.
    #[error("invalid {what} {path}")]
    Json {
        /// What file.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Central's CA certificate cannot be used for TLS.
    #[error("cannot use central's CA certificate for {url}")]
    Tls {
        /// The central URL being dialled.
        url: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// A file's content is invalid (a rule of ours, not an inner error: the reason is the message).
    #[error("invalid {what} {path}: {reason}")]
    Invalid {
        /// What file.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Already enrolled and not told to replace it.
    #[error("{state_dir} already holds credentials for server {server_id}; pass --force to replace them")]
    AlreadyEnrolled {
        /// The state directory.
        state_dir: String,
        /// The server it is enrolled as.
        server_id: String,
    },
    /// Central's CA certificate, as given on the command line, cannot be read.
    #[error("cannot read central's CA certificate from {origin}")]
    CaCertificate {
        /// Where it was given (`--ca-cert-b64` or the file's path).
        origin: String,
        /// Why: not base64, or not text.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The host's counters cannot be read at all (for example `/proc` is not mounted).
    #[error("cannot read this host's counters")]
    HostCounters(#[source] sysinfo::Error),
    /// SIGINT and SIGTERM cannot be listened for.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// Installing, uninstalling, checking or repairing the installation failed.
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    /// The central URL is not usable.
    #[error("invalid central URL `{0}`: expected http://HOST:PORT or https://HOST:PORT")]
    Url(String),
}
