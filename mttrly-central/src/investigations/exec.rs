//! What an exec call under an investigation links to and claims.
//!
//! The investigation must be the caller's own and of the call's server (else `NOT_FOUND` /
//! `VALIDATION_ERROR`, nothing created). A call its active bypass covers (tool, argv patterns;
//! time and slots are checked again by the create transaction) carries a claim; anything else is
//! only linked and waits for approval as usual: a bypass that is gone is never an error.

use mttrly_core::classifier;
use mttrly_core::ids::InvestigationId;
use mttrly_core::tools::commands::ScriptSource;
use mttrly_core::tools::investigations::{BypassCall, BypassStatus, InvestigationStatus};
use mttrly_core::{ErrorCode, MttrlyError};

use super::own;
use crate::db::accounts::TokenOwner;
use crate::db::actions::{ActionLink, BypassClaim};
use crate::db::now_ms;
use crate::db::servers::ServerRow;
use crate::state::Central;

/// An exec call as the bypass judges it.
#[derive(Debug, Clone, Copy)]
pub enum ExecCall<'a> {
    /// `mttrly_execute_command` with its command line.
    Command(&'a str),
    /// `mttrly_execute_script` with its script and arguments.
    Script(&'a ScriptSource, &'a [String]),
}

impl ExecCall<'_> {
    fn judged(&self) -> BypassCall {
        match self {
            Self::Command(line) => BypassCall::Command { argv: classifier::argv(line) },
            Self::Script(ScriptSource::Managed { name }, args) => BypassCall::ManagedScript {
                argv: std::iter::once(name.as_str().to_owned()).chain(args.iter().cloned()).collect(),
            },
            Self::Script(ScriptSource::Inline { .. }, _) => BypassCall::InlineScript,
        }
    }
}

/// The link for an exec call on `server` under `investigation` (none without one). `described`
/// is central's description of the call; a bypassed run's description adds the bypass and who
/// granted it. `run_at_once` calls (read-only) are linked but never take a slot.
pub async fn link_for(
    central: &Central,
    caller: &TokenOwner,
    server: &ServerRow,
    investigation: Option<&InvestigationId>,
    call: ExecCall<'_>,
    described: &str,
    run_at_once: bool,
) -> Result<ActionLink, MttrlyError> {
    let Some(id) = investigation else {
        return Ok(ActionLink::default());
    };
    let row = own(central, caller, id).await?;
    if row.server_id != server.id {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "investigation {id} is about another server; start one for {} with mttrly_start_investigation",
                server.name
            ),
        )
        .with_detail("investigation_id", id.as_str())
        .with_detail("server_id", server.id.as_str()));
    }
    let mut link = ActionLink { investigation_id: Some(row.id.clone()), bypass: None };
    if run_at_once || row.status == InvestigationStatus::Closed || !central.approvals.bypass_allowed(server.environment)
    {
        return Ok(link);
    }
    let Some(bypass) = central.db.account(&caller.account_id).investigations().latest_bypass(&row.id).await? else {
        return Ok(link);
    };
    if bypass.status_at(now_ms()) == BypassStatus::Active && bypass.scope.covers(&call.judged()) {
        let granter = bypass.granted_by_name.as_deref().unwrap_or("a human");
        link.bypass = Some(BypassClaim {
            description: format!(
                "{described} — ran under bypass {} granted by {} (investigation {})",
                bypass.id,
                mttrly_core::display::text(granter),
                row.id
            ),
            granted_by: bypass.granter(),
            granted_at: bypass.granted_at,
            bypass_id: bypass.id,
        });
    }
    Ok(link)
}
