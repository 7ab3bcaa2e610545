//! The `actions` toolset (pending actions, results) and the registry tools that create actions.

use std::sync::Arc;

use mttrly_core::action::ActionContent;
use mttrly_core::tools::actions::{
    ActionSubmission, ActionView, GetActionResultInput, GetPendingActionsInput, PendingActionList,
};
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::tools::servers::{DecommissionServerInput, RegenerateInstallTokenInput};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::state::Central;

pub(crate) async fn pending(
    central: &Central,
    caller: &TokenOwner,
    input: GetPendingActionsInput,
) -> Result<PendingActionList, MttrlyError> {
    if let Some(server) = &input.server_id {
        crate::servers::find(central, caller, server).await?;
    }
    actions::pending(central, caller, input.server_id).await
}

pub(crate) async fn result(
    central: &Central,
    caller: &TokenOwner,
    input: GetActionResultInput,
) -> Result<ActionView, MttrlyError> {
    actions::view(central, caller, &input.action_id).await
}

/// Refuses early (before anyone is asked to approve) what would fail anyway: these operations are
/// for offline servers only.
fn require_offline(central: &Central, server: &mttrly_core::ids::ServerId) -> Result<(), MttrlyError> {
    if central.agents.status(server, now_ms()).status == ConnectionStatus::Online {
        return Err(MttrlyError::new(
            ErrorCode::ServerOnline,
            "the server's agent is connected; this operation is only for offline servers",
        )
        .with_detail("server_id", server.as_str()));
    }
    Ok(())
}

pub(crate) async fn regenerate_install_token(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: RegenerateInstallTokenInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    require_offline(central, &server.id)?;
    let description = format!(
        "Rotate the agent credentials of {} ({}) and issue a new reinstall command; the old credentials stop working",
        server.name, server.environment
    );
    let new = NewAction {
        server,
        content: ActionContent::InstallTokenRotation,
        description,
        reason: None,
        run_at_once: false,
        payload: None,
    };
    actions::submit(central, caller, source, new).await
}

pub(crate) async fn decommission(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: DecommissionServerInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    require_offline(central, &server.id)?;
    let description = format!(
        "Remove {} ({}) from the registry; the host itself is not touched and its audit history is kept",
        server.name, server.environment
    );
    let new = NewAction {
        server,
        content: ActionContent::Decommission,
        description,
        reason: None,
        run_at_once: false,
        payload: None,
    };
    actions::submit(central, caller, source, new).await
}
