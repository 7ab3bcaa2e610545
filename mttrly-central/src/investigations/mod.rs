//! Investigations and their second-factor bypasses (issue 15) as app operations.
//!
//! An investigation is a server-minted handle bound to (human, client, server): the human is the
//! caller's accountable user, the client the credential the call came with (`oauth_…` for an OAuth
//! grant, stable across refreshes; `tok_…` for an API token). The 2026-07-28 MCP revision has no
//! sessions, so nothing here relies on one. A handle presented by another human or another client
//! answers `NOT_FOUND`, exactly like an unknown one. It closes by itself after
//! `investigation_idle_minutes` without activity (the sweep in `background/`), or when a person
//! closes it; closing revokes its bypass.
//!
//! A bypass is asked for by the assistant (`acquire`: pending, with the command and page where a
//! human grants it) and granted by a human with a fresh TOTP code (`grant`: the code is typed
//! into the CLI, the dashboard or the chat bot (`chat::bypass`, which asks the people who may
//! grant it), never a tool argument; the human may narrow the request, never widen it (chat
//! grants it as shown, or denies it: `deny`); the server environment's approval rule decides who may grant, and
//! `[approvals.ENV] bypass` whether anyone may). While active, exec calls under the
//! investigation that it covers run at once, each taking a slot in the transaction that creates
//! the action (`exec`).
//!
//! One module per job: `start`, `bypass` (the assistant's acquire, get, revoke and the state it
//! reads), `grant` (the human's decision), `manage` (people's list, show, close, revoke), `exec`
//! (what an exec call links and claims), `sweep` (idle investigations and lapsed bypasses).

mod bypass;
mod exec;
mod grant;
mod manage;
mod start;
mod sweep;

use mttrly_core::ids::InvestigationId;
use mttrly_core::{ErrorCode, MttrlyError};

use crate::db::accounts::TokenOwner;
use crate::db::investigations::InvestigationRow;
use crate::state::Central;

pub use bypass::{acquire, get_bypass, revoke, state_of};
pub use exec::{ExecCall, link_for};
pub use grant::{Denied, GrantRequest, check_grantable, deny, grant, may_grant};
pub use manage::{InvestigationView, close, list, of_bypass, ran_under, revoke_as_human, show};
pub use start::start;
pub use sweep::sweep;

/// How long a bypass request waits for a human before it lapses (ms): a grant is a decision
/// about an incident happening now, not a standing permission.
pub const PENDING_GRANT_MS: i64 = 15 * 60 * 1000;

/// The dashboard path of an investigation's page.
pub fn page_path(id: &InvestigationId) -> String {
    format!("/investigations/{id}")
}

/// `NOT_FOUND` for an investigation this caller cannot see: unknown, another account's, another
/// human's or another client's (all the same answer, so a handle leaks nothing).
fn not_found(id: &InvestigationId) -> MttrlyError {
    MttrlyError::new(ErrorCode::NotFound, format!("no investigation {id} for this caller"))
        .with_detail("investigation_id", id.as_str())
}

/// The client an investigation is bound to: the credential the call came with.
fn client_of(caller: &TokenOwner) -> &str {
    &caller.credential
}

/// The caller's own investigation: same account, same human, same client.
async fn own(central: &Central, caller: &TokenOwner, id: &InvestigationId) -> Result<InvestigationRow, MttrlyError> {
    let row = central.db.account(&caller.account_id).investigations().get(id).await?.ok_or_else(|| not_found(id))?;
    if &row.user_id != caller.principal.accountable_user() || row.client != client_of(caller) {
        return Err(not_found(id));
    }
    Ok(row)
}

/// `INVESTIGATION_CLOSED` for `row`, saying how to go on.
fn closed(row: &InvestigationRow) -> MttrlyError {
    MttrlyError::new(
        ErrorCode::InvestigationClosed,
        format!(
            "investigation {} is closed ({}); start a new one with mttrly_start_investigation",
            row.id,
            row.close_reason.as_deref().unwrap_or("closed")
        ),
    )
    .with_detail("investigation_id", row.id.as_str())
}

/// The configured idle lifetime (ms).
fn idle_ms(central: &Central) -> i64 {
    i64::from(central.config.investigation_idle_minutes).saturating_mul(60_000)
}
