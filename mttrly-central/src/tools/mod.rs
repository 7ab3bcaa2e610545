//! Central's handlers for catalog tools.
//!
//! [`AVAILABLE`] lists the tools that work end to end on this central; only those are advertised
//! and callable. Every call checks the plan, validates the arguments into the typed input, and
//! runs the handler with the caller's account, which scopes every query.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod commands;
pub(crate) mod decisions;
pub(crate) mod diagnostics;
pub(crate) mod files;
pub(crate) mod playbooks;
pub(crate) mod servers;

use mttrly_core::catalog::{ToolId, ToolInput};
use mttrly_core::input::parse_input;
use std::sync::Arc;

use mttrly_core::{ErrorCode, MttrlyError, Source};
use serde::Serialize;
use serde_json::Value;

use crate::db::accounts::TokenOwner;
use crate::state::Central;

/// Tools that work end to end on this central.
pub const AVAILABLE: &[ToolId] = &[
    ToolId::GetCapabilities,
    ToolId::ListServers,
    ToolId::GetServerStatus,
    ToolId::GetAlerts,
    ToolId::QuickTriage,
    ToolId::GetAuditLog,
    ToolId::GetPendingActions,
    ToolId::GetActionResult,
    ToolId::RegenerateInstallToken,
    ToolId::DecommissionServer,
    ToolId::ExecuteCommand,
    ToolId::ExecuteScript,
    ToolId::ReadFile,
    ToolId::ReadPrivilegedFile,
    ToolId::SearchFiles,
    ToolId::DiffFile,
    ToolId::WriteFile,
    ToolId::CleanupFile,
    ToolId::ListPlaybooks,
    ToolId::RunPlaybook,
    ToolId::RunDiagnostic,
    ToolId::GetServiceReality,
    ToolId::RefreshReality,
    // Never a decision: they answer how a human decides (see `decisions`); the requester may
    // withdraw its own pending request.
    ToolId::ApproveAction,
    ToolId::CancelAction,
];

/// Whether `tool` works on this central.
pub fn is_available(tool: ToolId) -> bool {
    AVAILABLE.contains(&tool)
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, MttrlyError> {
    serde_json::to_value(value)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the tool result: {e}")))
}

async fn typed<I, F, Fut>(arguments: Value, handler: F) -> Result<Value, MttrlyError>
where
    I: ToolInput,
    F: FnOnce(I) -> Fut,
    Fut: std::future::Future<Output = Result<I::Output, MttrlyError>>,
{
    let input = parse_input::<I>(arguments)?;
    to_json(&handler(input).await?)
}

/// The tools `caller` may reach: the deployment's surface narrowed by the token's scope.
pub fn surface(central: &Central, caller: &TokenOwner) -> mttrly_core::ToolSurface {
    central.config.tools.narrowed(&caller.scope)
}

/// Asks a server's agent for a capability that is not an action (a read, a plan, probes) and
/// returns its structured answer, or the error the agent reported.
pub(crate) async fn ask_agent(
    central: &Central,
    server: &mttrly_core::ids::ServerId,
    capability: &str,
    params: &Value,
    deadline: std::time::Duration,
) -> Result<Value, MttrlyError> {
    let reply = central.agents.request(server, capability, params, deadline, None).await?;
    if reply.status != mttrly_proto::agent::v1::TaskStatus::Succeeded || reply.error.is_some() {
        return Err(reply.error.unwrap_or_else(|| {
            MttrlyError::new(ErrorCode::UnknownError, format!("the agent could not complete {capability}"))
        }));
    }
    Ok(reply.result)
}

/// Shapes an agent's answer as `T`; a mismatch is central's bug or an incompatible agent.
pub(crate) fn decode_answer<T: serde::de::DeserializeOwned>(value: Value, capability: &str) -> Result<T, MttrlyError> {
    serde_json::from_value(value).map_err(|e| {
        MttrlyError::new(ErrorCode::InternalError, format!("the agent's {capability} answer is malformed: {e}"))
    })
}

/// Central's second redaction pass over every text an agent returns (defense in depth: a secret
/// an old agent missed still never reaches the assistant). Strings are redacted with their keys as
/// context (a `"password"` field whole); `redactions` counts are kept as sent.
pub(crate) fn scrub(value: &mut Value) {
    let counts = value.as_object_mut().and_then(|m| m.remove("redactions"));
    mttrly_core::redactor::redact_json(value);
    if let (Some(counts), Some(map)) = (counts, value.as_object_mut()) {
        map.insert("redactions".to_owned(), counts);
    }
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

/// The checks before any tool runs: available here, within the caller's surface, in the plan,
/// and within the rate limits.
pub fn admit(central: &Central, caller: &TokenOwner, tool: ToolId) -> Result<(), MttrlyError> {
    if !is_available(tool) {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("{tool} is not available on this central"))
            .with_detail("tool_id", tool.as_str()));
    }
    if let Err(refusal) = surface(central, caller).check(tool.spec()) {
        return Err(MttrlyError::new(ErrorCode::Forbidden, format!("{tool} is switched off here: {refusal}"))
            .with_detail("tool_id", tool.as_str()));
    }
    caller.plan.check(tool)?;
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
    match tool {
        ToolId::GetCapabilities => typed(arguments, |i| servers::capabilities(central, caller, i)).await,
        ToolId::ListServers => typed(arguments, |i| servers::list(central, caller, i)).await,
        ToolId::GetServerStatus => typed(arguments, |i| servers::status(central, caller, i)).await,
        ToolId::GetAlerts => typed(arguments, |i| servers::alerts(central, caller, i)).await,
        ToolId::QuickTriage => typed(arguments, |i| servers::triage(central, caller, i)).await,
        ToolId::GetAuditLog => typed(arguments, |i| audit::audit_log(central, caller, i)).await,
        ToolId::GetPendingActions => typed(arguments, |i| actions::pending(central, caller, i)).await,
        ToolId::GetActionResult => typed(arguments, |i| actions::result(central, caller, i)).await,
        ToolId::RegenerateInstallToken => {
            typed(arguments, |i| actions::regenerate_install_token(central, caller, source, i)).await
        }
        ToolId::DecommissionServer => typed(arguments, |i| actions::decommission(central, caller, source, i)).await,
        ToolId::ExecuteCommand => typed(arguments, |i| commands::execute_command(central, caller, source, i)).await,
        ToolId::ExecuteScript => typed(arguments, |i| commands::execute_script(central, caller, source, i)).await,
        ToolId::ReadFile => typed(arguments, |i| files::read_file(central, caller, i)).await,
        ToolId::ReadPrivilegedFile => typed(arguments, |i| files::read_privileged_file(central, caller, i)).await,
        ToolId::SearchFiles => typed(arguments, |i| files::search_files(central, caller, i)).await,
        ToolId::DiffFile => typed(arguments, |i| files::diff_file(central, caller, i)).await,
        ToolId::RunDiagnostic => typed(arguments, |i| diagnostics::run_diagnostic(central, caller, i)).await,
        ToolId::GetServiceReality => typed(arguments, |i| diagnostics::get_reality(central, caller, i)).await,
        ToolId::RefreshReality => typed(arguments, |i| diagnostics::refresh_reality(central, caller, i)).await,
        ToolId::ListPlaybooks => typed(arguments, |i| playbooks::list(central, caller, i)).await,
        ToolId::RunPlaybook => typed(arguments, |i| playbooks::run(central, caller, source, i)).await,
        ToolId::WriteFile => typed(arguments, |i| files::write_file(central, caller, source, i)).await,
        ToolId::CleanupFile => typed(arguments, |i| files::cleanup_file(central, caller, source, i)).await,
        ToolId::ApproveAction => typed(arguments, |i| decisions::approve(central, caller, i)).await,
        ToolId::CancelAction => typed(arguments, |i| decisions::cancel(central, caller, source, i)).await,
        other => Err(MttrlyError::new(ErrorCode::NotFound, format!("{other} is not available on this central"))),
    }
}
