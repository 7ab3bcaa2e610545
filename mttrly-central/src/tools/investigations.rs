//! The investigation tools: `mttrly_start_investigation` and the bypass tools. Thin over
//! `crate::investigations`, which holds the rules.

use std::sync::Arc;

use mttrly_core::tools::investigations::{
    AcquireInvestigationBypassInput, BypassState, GetInvestigationBypassInput, Investigation,
    RevokeInvestigationBypassInput, StartInvestigationInput,
};
use mttrly_core::{MttrlyError, Source};

use crate::db::accounts::TokenOwner;
use crate::investigations;
use crate::state::Central;

/// `mttrly_start_investigation`.
pub(crate) async fn start(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: StartInvestigationInput,
) -> Result<Investigation, MttrlyError> {
    investigations::start(central, caller, source, input).await
}

/// `mttrly_get_investigation_bypass`: never consumes a slot.
pub(crate) async fn get_bypass(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: GetInvestigationBypassInput,
) -> Result<BypassState, MttrlyError> {
    investigations::get_bypass(central, caller, input).await
}

/// `mttrly_acquire_investigation_bypass`: a pending request a human grants with a TOTP code.
pub(crate) async fn acquire_bypass(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: AcquireInvestigationBypassInput,
) -> Result<BypassState, MttrlyError> {
    investigations::acquire(central, caller, input).await
}

/// `mttrly_revoke_investigation_bypass`: idempotent.
pub(crate) async fn revoke_bypass(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: RevokeInvestigationBypassInput,
) -> Result<BypassState, MttrlyError> {
    investigations::revoke(central, caller, input).await
}
