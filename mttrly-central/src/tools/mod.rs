//! Central's handlers for catalog tools.
//!
//! The handler table ([`handlers`]) generates both the dispatch and [`AVAILABLE`], the tools that
//! work end to end on this central. [`reach`] decides, once for every entry point, which tools a
//! caller can see and call. Every call checks that reach, validates the arguments into the typed
//! input, and runs the handler with the caller's account, which scopes every query.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod commands;
pub(crate) mod compare;
pub(crate) mod decisions;
pub(crate) mod deploys;
pub(crate) mod diagnostics;
pub(crate) mod files;
mod handlers;
pub(crate) mod install;
pub(crate) mod investigations;
pub(crate) mod knowledge;
pub(crate) mod playbooks;
pub(crate) mod proactive;
mod reach;
pub(crate) mod servers;
mod thread_window;
pub(crate) mod timeline;
pub(crate) mod updates;
pub(crate) mod warroom;

use mttrly_core::catalog::ToolId;
use std::sync::Arc;

use mttrly_core::{MttrlyError, Source};
use serde_json::Value;

use crate::db::accounts::TokenOwner;
use crate::state::Central;

pub use handlers::AVAILABLE;
pub use reach::{Reach, reach, reach_of, surface};

/// Whether `tool` works on this central.
pub fn is_available(tool: ToolId) -> bool {
    AVAILABLE.contains(&tool)
}

/// Calls a tool and records the call in the audit log (what every entry point does).
pub async fn call_audited(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    tool: ToolId,
    arguments: Value,
) -> Result<Value, MttrlyError> {
    let started = std::time::Instant::now();
    let outcome = call(central, caller, source, tool, arguments.clone()).await;
    central.audit(crate::audit::events::tool_call(
        caller,
        source,
        tool.as_str(),
        &arguments,
        &outcome,
        started.elapsed(),
    ));
    outcome
}

/// The checks before any tool runs: within the caller's reach (available here, within the
/// caller's surface, in the plan), then within the rate limits.
pub fn admit(central: &Central, caller: &TokenOwner, tool: ToolId) -> Result<(), MttrlyError> {
    if let Some(refusal) = reach_of(central, caller, tool).refusal(tool, caller.plan) {
        return Err(refusal);
    }
    // Per token, not per principal: every MCP session of one token is its own principal.
    central.limits.admit(caller.account_id.as_str(), &caller.credential, crate::db::now_ms())
}

/// Calls a tool for `caller`, who came through `source`, and returns its structured result.
pub async fn call(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    tool: ToolId,
    arguments: Value,
) -> Result<Value, MttrlyError> {
    admit(central, caller, tool)?;
    handlers::dispatch(central, caller, source, tool, arguments).await
}
