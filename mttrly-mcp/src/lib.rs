//! `mttrly-mcp`: the MCP surface of mttrly.
//!
//! This is the only crate that knows rmcp. Tool definitions are generated from the core catalog
//! ([`tools::definition`]), so what a client sees in `tools/list` (titles, descriptions, schemas,
//! annotations) is the catalog and nothing else. Where the tools run is a [`Backend`]: central
//! runs them in-process behind `/mcp`; the standalone `mttrly-mcp` binary forwards them to a remote
//! central over gRPC. Either way this crate owns what is MCP-specific: the session, results and
//! errors on the wire, prompts and resources. Nothing here decides an action: MCP is not a
//! decision channel (a form a client answers proves nothing about a human), so
//! `mttrly_approve_action` runs like any tool and the backend answers how a human decides; a
//! client with URL-mode elicitation is then asked to open the action's dashboard page for its user,
//! and the call reports what the human decided there ([`page`]).

pub mod backend;
pub mod http;
mod page;
mod prompts;
pub mod remote;
mod resources;
mod result;
pub mod server;
mod sse;
pub mod tools;

pub use backend::{Backend, Session};
pub use page::WaitSlots;
pub use server::McpServer;
