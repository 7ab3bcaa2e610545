//! `mttrly_compare_source_to_dist`: central's half of the read-only tree comparison.
//!
//! Central checks tenancy (the server must be the caller's) and sends the typed request with the
//! default ignores applied; the agent decides everything else on its host (both roots under its
//! owner's file allowlist, its `[compare]` caps) and walks. The task's deadline is the walk's
//! own deadline plus a margin for the round trip, so a walk stopped at its deadline still
//! answers with `partial: true` instead of timing out.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::MttrlyError;
use mttrly_core::capability::FilesCompare;
use mttrly_core::tools::files::{CompareSourceToDistInput, TreeComparison};

use crate::db::accounts::TokenOwner;
use crate::state::Central;

/// What the round trip and the answer's encoding may add to the walk's own deadline.
const MARGIN: Duration = Duration::from_secs(10);

pub(crate) async fn compare_source_to_dist(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: CompareSourceToDistInput,
) -> Result<TreeComparison, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let params = input.params();
    let deadline = Duration::from_millis(u64::from(params.limits.deadline_ms)) + MARGIN;
    Ok(central.agents.ask::<FilesCompare>(&server.id, &params, deadline).await?.on(server.id))
}
