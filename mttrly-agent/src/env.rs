//! Every environment variable the agent reads, declared once with what it means (central keeps
//! its own list in `mttrly-central/src/env.rs`). The clap attributes and the log filter name these
//! constants, so a variable is renamed in one place and documented where it is declared.

/// Central's gRPC URL for `enroll` (`--central`), as printed by `mttrly-cli servers add`.
pub const CENTRAL: &str = "MTTRLY_CENTRAL";
/// The single-use install token for `enroll` (`--token`). Its value is never shown in `--help`.
pub const INSTALL_TOKEN: &str = "MTTRLY_INSTALL_TOKEN";
/// Where the agent keeps its credentials and its executed-action ledger (`--state-dir`).
pub const STATE_DIR: &str = "MTTRLY_AGENT_STATE_DIR";
/// The server owner's policy file for `run` (`--policy`).
pub const POLICY: &str = "MTTRLY_AGENT_POLICY";
/// `tracing` filter for the agent's logs, e.g. `info` or `mttrly_agent=debug`.
pub const LOG: &str = "MTTRLY_LOG";
