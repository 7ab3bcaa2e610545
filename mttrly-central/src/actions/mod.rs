//! The action engine: create, decide, execute at most once, expire, recover.
//!
//! An action moves through the core state machine, one conditional database transaction per move.
//! `approved → running` is committed *before* anything is sent, so a crash can only lose an
//! outcome, never repeat an execution: on restart, actions left `running` become `failed`
//! ("outcome unknown") and are never re-sent. Humans decide; an assistant never can.
//!
//! One module per job: [`submit`](submit()) creates, `read` answers, `decide` gathers what every
//! decision checks, `approve` and `stop` (reject, cancel) decide, `execute` runs, `expire` and
//! `recover` are the sweeps, `introduced` says who brought an approver in, `record` builds the audit events the engine writes on its own, and
//! `rules` says which rule and channels apply.

mod approve;
mod decide;
pub mod execute;
mod expire;
pub(crate) mod introduced;
mod read;
mod record;
mod recover;
mod rules;
mod stop;
mod submit;

use mttrly_core::ids::ActionId;
use mttrly_core::{ErrorCode, MttrlyError};

pub use approve::approve;
pub use decide::{approval_check, approval_check_counted, approval_check_via};
pub use expire::expire;
pub use read::{load, pending, view};
pub use recover::recover;
pub use rules::{rule_for, rule_with, usable_channels};
pub use stop::{cancel, reject};
pub use submit::{NewAction, submit, submit_linked};

/// `ACTION_NOT_FOUND`, also for another account's action (no leak that it exists).
fn not_found(id: &ActionId) -> MttrlyError {
    MttrlyError::new(ErrorCode::ActionNotFound, format!("no action {id} in this account"))
        .with_detail("action_id", id.as_str())
}
