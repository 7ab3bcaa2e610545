//! The `deploys` tool: `mttrly_run_deploy_verifier` (the work is in [`crate::deploys::verify`]).

use std::sync::Arc;

use mttrly_core::MttrlyError;
use mttrly_core::tools::deploys::{DeployVerification, RunDeployVerifierInput};

use crate::db::accounts::TokenOwner;
use crate::state::Central;

/// Runs the verifier for the caller's server.
pub(crate) async fn run_verifier(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: RunDeployVerifierInput,
) -> Result<DeployVerification, MttrlyError> {
    crate::deploys::verify::run(central, caller, input).await
}
