//! The `commands` toolset: `mttrly_execute_command`.

use std::sync::Arc;

use mttrly_core::action::ActionContent;
use mttrly_core::classifier::{CommandClass, classify};
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::commands::ExecuteCommandInput;
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::state::Central;

/// Read-only commands (as the classifier understands them) run at once; anything else becomes a
/// pending action with the classifier's reason in its description.
pub(crate) async fn execute_command(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: ExecuteCommandInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = super::servers::find(central, caller, &input.server_id).await?;
    let command = input.command.into_inner();
    let class = classify(&command);
    let run_at_once = class.class == CommandClass::ReadOnly;
    if run_at_once && central.agents.status(&server.id, now_ms()).status != ConnectionStatus::Online {
        return Err(MttrlyError::new(ErrorCode::ServerOffline, "the server's agent is not connected")
            .with_detail("server_id", server.id.as_str()));
    }
    let mut description = format!("Run `{command}` on {} ({})", server.name, server.environment);
    if !run_at_once {
        description.push_str(&format!(" — needs approval: {}", class.reason));
    }
    if let Some(reason) = &input.reason {
        description.push_str(&format!(" — requested because: {reason}"));
    }
    let content = ActionContent::Command { command, timeout_seconds: input.timeout_seconds.get() };
    actions::submit(central, caller, source, NewAction { server, content, description, run_at_once, payload: None })
        .await
}

/// Scripts always wait for a human: a managed script by name (the agent resolves the name against
/// its owner's list), or an inline script shown in full to the approver.
pub(crate) async fn execute_script(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: mttrly_core::tools::commands::ExecuteScriptInput,
) -> Result<ActionSubmission, MttrlyError> {
    use mttrly_core::tools::commands::ScriptSource;
    let server = super::servers::find(central, caller, &input.server_id).await?;
    let args: Vec<String> = input.args.as_slice().iter().map(|a| a.as_str().to_owned()).collect();
    let shown_args = if args.is_empty() { String::new() } else { format!(" with arguments {args:?}") };
    let mut description = match &input.script {
        ScriptSource::Managed { name } => {
            format!("Run managed script `{name}`{shown_args} on {} ({})", server.name, server.environment)
        }
        ScriptSource::Inline { content } => format!(
            "Run an inline script ({} lines){shown_args} on {} ({}):\n{}",
            content.as_str().lines().count(),
            server.name,
            server.environment,
            content.as_str()
        ),
    };
    if let Some(reason) = &input.reason {
        description.push_str(&format!("\n— requested because: {reason}"));
    }
    let content = ActionContent::Script { script: input.script, args, timeout_seconds: input.timeout_seconds.get() };
    actions::submit(
        central,
        caller,
        source,
        NewAction { server, content, description, run_at_once: false, payload: None },
    )
    .await
}
