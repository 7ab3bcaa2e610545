//! The `commands` toolset: `mttrly_execute_command`, `mttrly_execute_script` (under an
//! investigation, linked to it, and run at once when its active bypass covers the call).

use std::sync::Arc;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{ClassifyParams, CommandClassify};
use mttrly_core::classifier::{Classification, CommandClass, classify};
use mttrly_core::ids::ServerId;
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::commands::ExecuteCommandInput;
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::investigations;
use crate::state::Central;

/// How long central waits for an agent's verdict on a command's files.
const CLASSIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The verdict that decides "run at once" or "pending". The pure classifier answers for most
/// commands; when its read-only verdict depends on files (`tail -n 50 /var/log/x`), only the agent
/// can check them, so it is asked (`command.classify`): an action created to run at once can never
/// go back to pending. Anything but a clear read-only answer from the agent means approval.
async fn verdict(central: &Central, server: &ServerId, command: &str, pure: Classification) -> Classification {
    if !pure.depends_on_files() {
        return pure;
    }
    let params = ClassifyParams { command: command.to_owned() };
    match central.agents.ask::<CommandClassify>(server, &params, CLASSIFY_DEADLINE).await {
        // The agent's verdict counts only for the command central classified itself.
        Ok(agent) if agent.class == CommandClass::ReadOnly && agent.argv == pure.argv => agent,
        Ok(agent) if agent.class == CommandClass::NeedsApproval => agent,
        Ok(_) => Classification::needs_approval("the agent's verdict does not match this command"),
        Err(e) => {
            tracing::warn!(server_id = %server, error = %e, "the agent could not check a command's files");
            Classification::needs_approval(format!(
                "the agent could not check the files this command reads: {}",
                e.message()
            ))
        }
    }
}

/// Read-only commands (as the classifier, and the agent for their files, understand them) run at
/// once; anything else becomes a pending action with the reason in its description.
pub(crate) async fn execute_command(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: ExecuteCommandInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let command = input.command.into_inner();
    let online = central.agents.status(&server.id, now_ms()).status == ConnectionStatus::Online;
    let provisional = classify(&command);
    if provisional.class == CommandClass::ReadOnly && !online {
        return Err(MttrlyError::new(ErrorCode::ServerOffline, "the server's agent is not connected")
            .with_detail("server_id", server.id.as_str()));
    }
    let class = verdict(central, &server.id, &command, provisional).await;
    let run_at_once = class.class == CommandClass::ReadOnly;
    let mut description = format!("Run `{command}` on {} ({})", server.name, server.environment);
    let call = investigations::ExecCall::Command(&command);
    let investigation = input.investigation_id.as_ref();
    let link =
        investigations::link_for(central, caller, &server, investigation, call, &description, run_at_once).await?;
    if !run_at_once {
        description.push_str(&format!(" — needs approval: {}", class.reason));
    }
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let content = ActionContent::Command { command, timeout_seconds: input.timeout_seconds.get() };
    let new = NewAction { server, content, description, reason, run_at_once, payload: None };
    actions::submit_linked(central, caller, source, new, link).await
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
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let args: Vec<String> = input.args.as_slice().iter().map(|a| a.as_str().to_owned()).collect();
    let shown_args = if args.is_empty() { String::new() } else { format!(" with arguments {args:?}") };
    let description = match &input.script {
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
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let call = investigations::ExecCall::Script(&input.script, &args);
    let investigation = input.investigation_id.as_ref();
    let link = investigations::link_for(central, caller, &server, investigation, call, &description, false).await?;
    let content = ActionContent::Script { script: input.script, args, timeout_seconds: input.timeout_seconds.get() };
    actions::submit_linked(
        central,
        caller,
        source,
        NewAction { server, content, description, reason, run_at_once: false, payload: None },
        link,
    )
    .await
}
