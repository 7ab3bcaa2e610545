//! `mttrly_update_agent`: always a pending action. Central picks the signed release
//! (`crate::releases::pick`), refuses early what the agent could not take, and the approver sees
//! from → to, the binary's hash and size, the manifest's expiry and whether it is a downgrade.

use std::sync::Arc;

use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::updates::UpdateAgentInput;
use mttrly_core::{MttrlyError, Source};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::state::Central;

pub(crate) async fn update_agent(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: UpdateAgentInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let picked = crate::releases::pick::pick(central, caller, source, &server, &input).await?;
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let new = NewAction {
        server,
        content: picked.content,
        description: picked.description,
        reason,
        run_at_once: false,
        payload: None,
    };
    actions::submit(central, caller, source, new).await
}
