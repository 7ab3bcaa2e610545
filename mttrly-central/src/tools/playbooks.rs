//! The `playbooks` toolset: `mttrly_list_playbooks` and `mttrly_run_playbook`.
//!
//! The agent owns the definitions it runs (built-ins plus the owner's directory) and decides
//! availability on its host. For a run, central asks the agent to validate and render it first,
//! so the approver sees the exact commands; the agent renders the same definition again when it
//! runs the approved action.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{NoParams, PlaybookList as ListOnAgent, PlaybookPlan, PlaybookPlanParams};
use mttrly_core::playbook::Catalog;
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::playbooks::{ListPlaybooksInput, PlaybookList, PlaybookSummary, RunPlaybookInput};
use mttrly_core::{MttrlyError, Source};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::state::Central;

const ASK_DEADLINE: Duration = Duration::from_secs(15);

/// Without a server: the built-in catalog. With one: what its agent offers and can run.
pub(crate) async fn list(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: ListPlaybooksInput,
) -> Result<PlaybookList, MttrlyError> {
    let mut playbooks: Vec<PlaybookSummary> = match &input.server_id {
        None => Catalog::built_in().all().into_iter().map(mttrly_core::playbook::Playbook::summary).collect(),
        Some(id) => {
            let server = crate::servers::find(central, caller, id).await?;
            let answer = central.agents.ask::<ListOnAgent>(&server.id, &NoParams, ASK_DEADLINE).await?;
            answer.playbooks.into_iter().filter(|e| e.available).map(|e| e.summary).collect()
        }
    };
    if let Some(category) = input.category {
        playbooks.retain(|p| p.category == category);
    }
    Ok(PlaybookList { playbooks })
}

fn line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\;&|<>*?()[]{}".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read-only playbooks run at once; the others become pending actions showing every command.
pub(crate) async fn run(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: RunPlaybookInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let params = PlaybookPlanParams { playbook_id: input.playbook_id.clone(), parameters: input.parameters };
    let plan = central.agents.ask::<PlaybookPlan>(&server.id, &params, ASK_DEADLINE).await?;
    let mut description =
        format!("Run playbook `{}` ({}) on {} ({})", input.playbook_id, plan.name, server.name, server.environment);
    let commands: Vec<String> = plan
        .rendered
        .prechecks
        .iter()
        .map(|s| format!("check: {}", line(&s.argv)))
        .chain(plan.rendered.steps.iter().map(|s| format!("run: {}", line(&s.argv))))
        .chain(plan.rendered.verify.iter().map(|s| format!("verify: {}", line(&s.argv))))
        .collect();
    description.push_str(&format!(" — {}; blast radius: {}", commands.join("; "), plan.blast_radius));
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let content = ActionContent::Playbook { playbook_id: input.playbook_id, parameters: plan.parameters };
    actions::submit(
        central,
        caller,
        source,
        NewAction { server, content, description, reason, run_at_once: !plan.requires_approval, payload: None },
    )
    .await
}
