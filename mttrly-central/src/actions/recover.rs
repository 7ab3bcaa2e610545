//! Crash recovery at start: actions a crash left approved or running are failed ("outcome
//! unknown") and never re-sent, so an execution can be lost but never repeated.

use mttrly_core::action::ActionState;
use mttrly_core::audit::AuditKind;
use mttrly_core::tools::actions::ExecutionResult;
use mttrly_core::{ErrorCode, MttrlyError};

use super::record::system_event;
use crate::db::{now_ms, timestamp};
use crate::events::{Payload, Recorded};
use crate::state::Central;

/// At start: actions a crash left approved or running are failed and never re-sent.
pub async fn recover(central: &Central) -> Result<usize, MttrlyError> {
    let now = now_ms();
    let result = ExecutionResult {
        exit_code: None,
        output: String::new(),
        truncated: false,
        duration_ms: 0,
        started_at: timestamp(now),
        finished_at: timestamp(now),
        error: Some(
            MttrlyError::new(
                ErrorCode::InternalError,
                "outcome unknown: central stopped while this action was running; it was not re-sent",
            )
            .body(),
        ),
        data: None,
    };
    let failed = central.db.maintenance().fail_interrupted_actions(now, result).await?;
    for a in &failed {
        central.audit(Recorded::new(
            system_event(
                a,
                AuditKind::ExecutionResult,
                serde_json::json!({ "recovered": "outcome unknown after restart" }),
                ErrorCode::InternalError,
            ),
            Payload::ActionExecuted { action: a.into(), status: ActionState::Failed, exit_code: None },
        ));
    }
    Ok(failed.len())
}
