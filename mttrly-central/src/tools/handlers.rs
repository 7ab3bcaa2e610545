//! The handler table: one row per tool central serves, generating both the dispatch and
//! [`AVAILABLE`].
//!
//! A row names the tool and its handler with the context arguments it takes (the typed input is
//! always passed last). The generated `match` is exhaustive over the catalog: every other tool
//! is named in the `not_built` list, so a catalog row added without a decision here, or a row
//! listed in both, is a compile error instead of a silent fallback. The handler's input type must
//! be the tool's own (`ToolInput::TOOL`): a row pointing at another tool's handler fails to build.

use std::sync::Arc;

use mttrly_core::catalog::{ToolId, ToolInput};
use mttrly_core::input::parse_input;
use mttrly_core::{ErrorCode, MttrlyError, Source};
use serde::Serialize;
use serde_json::Value;

use super::{
    actions, audit, commands, compare, decisions, deploys, diagnostics, files, install, investigations, knowledge,
    playbooks, proactive, servers, timeline, updates, warroom,
};
use crate::db::accounts::TokenOwner;
use crate::state::Central;

fn to_json<T: Serialize>(value: &T) -> Result<Value, MttrlyError> {
    serde_json::to_value(value)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the tool result: {e}")))
}

/// Parses the arguments into the handler's input, runs it, and encodes its typed output.
async fn typed<I, F, Fut>(arguments: Value, handler: F) -> Result<Value, MttrlyError>
where
    I: ToolInput,
    F: FnOnce(I) -> Fut,
    Fut: Future<Output = Result<I::Output, MttrlyError>>,
{
    let input = parse_input::<I>(arguments)?;
    to_json(&handler(input).await?)
}

macro_rules! handlers {
    (
        ($central:ident, $caller:ident, $source:ident) =>
        $( $tool:ident => $family:ident :: $handler:ident ( $($arg:ident),* ) ),+ $(,)?
        ; not_built: $( $missing:ident ),* $(,)?
    ) => {
        /// Tools that work end to end on this central: only these are advertised and callable.
        pub const AVAILABLE: &[ToolId] = &[$(ToolId::$tool),+];

        /// Runs `tool`'s handler on the raw arguments (admission already done by the caller).
        pub(super) async fn dispatch(
            $central: &Arc<Central>,
            $caller: &TokenOwner,
            $source: Source,
            tool: ToolId,
            arguments: Value,
        ) -> Result<Value, MttrlyError> {
            // Not every handler takes every context argument.
            let _ = (&$central, &$caller, &$source);
            match tool {
                $(ToolId::$tool => {
                    // Boxed, so this future is the size of one pointer and not of the largest of
                    // the handlers' futures (`the_dispatch_future_stays_small` says why).
                    Box::pin(typed(arguments, |input| {
                        // The handler's input type belongs to this row's tool, checked at build
                        // time (a const evaluated for the input type the handler takes).
                        fn bound<I: ToolInput>(_: &I) {
                            const { assert!(I::TOOL as usize == ToolId::$tool as usize, "a handler row names another tool's handler") }
                        }
                        bound(&input);
                        $family::$handler($($arg,)* input)
                    }))
                    .await
                })+
                $(ToolId::$missing => Err(MttrlyError::new(
                    ErrorCode::NotFound,
                    format!("{tool} is not available on this central"),
                )
                .with_detail("tool_id", tool.as_str())),)*
            }
        }
    };
}

handlers! { (central, caller, source) =>
    GetCapabilities => servers::capabilities(central, caller),
    ListServers => servers::list(central, caller),
    GetServerStatus => servers::status(central, caller),
    GetAlerts => servers::alerts(central, caller),
    QuickTriage => servers::triage(central, caller),
    GetAuditLog => audit::audit_log(central, caller),
    GetPendingActions => actions::pending(central, caller),
    GetActionResult => actions::result(central, caller),
    RegenerateInstallToken => actions::regenerate_install_token(central, caller, source),
    DecommissionServer => actions::decommission(central, caller, source),
    ExecuteCommand => commands::execute_command(central, caller, source),
    ExecuteScript => commands::execute_script(central, caller, source),
    ReadFile => files::read_file(central, caller),
    ReadPrivilegedFile => files::read_privileged_file(central, caller),
    SearchFiles => files::search_files(central, caller),
    DiffFile => files::diff_file(central, caller),
    CompareSourceToDist => compare::compare_source_to_dist(central, caller),
    WriteFile => files::write_file(central, caller, source),
    CleanupFile => files::cleanup_file(central, caller, source),
    ListPlaybooks => playbooks::list(central, caller),
    RunPlaybook => playbooks::run(central, caller, source),
    RunDiagnostic => diagnostics::run_diagnostic(central, caller),
    GetServiceReality => diagnostics::get_reality(central, caller),
    RefreshReality => diagnostics::refresh_reality(central, caller),
    RunDeployVerifier => deploys::run_verifier(central, caller),
    GetMorningBrief => proactive::morning_brief(central, caller),
    AcknowledgeProactiveEvent => proactive::acknowledge(central, caller, source),
    // Never a decision: they answer how a human decides (see `decisions`); the requester may
    // withdraw its own pending request.
    ApproveAction => decisions::approve(central, caller),
    CancelAction => decisions::cancel(central, caller, source),
    GetServerTimeline => timeline::timeline(central, caller),
    GenerateRetrospective => timeline::retrospective(central, caller, source),
    SearchKnowledge => knowledge::search(central, caller),
    StartInvestigation => investigations::start(central, caller, source),
    GetInvestigationBypass => investigations::get_bypass(central, caller),
    AcquireInvestigationBypass => investigations::acquire_bypass(central, caller),
    RevokeInvestigationBypass => investigations::revoke_bypass(central, caller),
    UpdateAgent => updates::update_agent(central, caller, source),
    GetInstallHealth => install::health(central, caller),
    RepairInstall => install::repair(central, caller, source),
    BootstrapRecover => install::bootstrap_recover(central, caller, source),
    PublishNotification => warroom::publish(central, caller, source),
    ListChannels => warroom::list_channels(central, caller),
    CreateChannel => warroom::create_channel(central, caller, source),
    GetThread => warroom::thread(central, caller),
    GetNotifications => warroom::notifications(central, caller),
    SubscribeChannel => warroom::subscribe(central, caller),
    UnsubscribeChannel => warroom::unsubscribe(central, caller),
    GetIncidentSummary => warroom::incident_summary(central, caller),
    GetIncidentStats => warroom::incident_stats(central, caller);
    not_built:
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mttrly_core::Source;
    use mttrly_core::catalog::{ToolId, specs};
    use serde_json::Value;

    use super::AVAILABLE;
    use crate::db::accounts::TokenOwner;
    use crate::state::Central;

    /// The future of a tool call stays small. Why it matters: a tool call's future is moved by
    /// value through every layer above it (central's audit wrapper, the MCP server, rmcp's
    /// request handler, `tokio::spawn`), and with every handler's future inline it was the
    /// largest handler's size, ~8.5 KB, at every call: `memmove` was ~6 % of central's CPU on
    /// the MCP call path. Each handler's future is boxed at its own size instead.
    #[test]
    fn the_dispatch_future_stays_small() {
        fn future_size<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(&'a Arc<Central>, &'a TokenOwner, Source, ToolId, Value) -> Fut,
        {
            std::mem::size_of::<Fut>()
        }
        for (layer, size) in [
            ("dispatch", future_size(super::dispatch)),
            ("tools::call", future_size(crate::tools::call)),
            ("tools::call_audited", future_size(crate::tools::call_audited)),
        ] {
            assert!(size <= 1_024, "the future of {layer} is {size} bytes");
        }
    }

    #[test]
    fn the_table_lists_each_tool_once() {
        let mut ids: Vec<_> = AVAILABLE.to_vec();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), AVAILABLE.len());
        assert!(ids.len() <= specs().len());
    }
}
