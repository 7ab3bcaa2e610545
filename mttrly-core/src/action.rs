//! Actions and their state machine.
//!
//! An action is a request to change something on a server. Its life is a small state machine:
//!
//! ```text
//! pending_approval ─approve─▶ approved ─start─▶ running ─succeed─▶ succeeded
//!        │                       │                 └──────fail────▶ failed
//!        ├─reject──▶ rejected     └─fail (never dispatched)─▶ failed
//!        ├─expire──▶ expired
//!        ├─cancel──▶ cancelled
//!        └─fail_closed─▶ failed_closed   (the approval prompt could not be delivered)
//! ```
//!
//! [`ActionState::apply`] is the only way to move, and it refuses every other move, so "approved
//! twice" or "running again after a crash" is an error at the type level of the engine, not a
//! convention.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, MttrlyError};
use crate::tools::commands::ScriptSource;
use crate::tools::install::RepairStrategy;
use crate::tools::playbooks::{ParamName, ParamValue, PlaybookId};

/// Where an action is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Waiting for a human decision.
    PendingApproval,
    /// Approved (by enough humans, or auto-approved as read-only); not yet sent to the agent.
    Approved,
    /// Sent to the agent. Recorded before sending, so a crash can never cause a second run.
    Running,
    /// Ran and reported success.
    Succeeded,
    /// Ran and failed, was never dispatched after approval, or its outcome is unknown after a crash.
    Failed,
    /// A human said no.
    Rejected,
    /// Nobody decided within the time-to-live.
    Expired,
    /// Withdrawn before a decision.
    Cancelled,
    /// The approval prompt could not be delivered, so the action was refused (fail closed).
    FailedClosed,
}

/// What happens to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionEvent {
    /// The approval rule is satisfied.
    Approve,
    /// A human rejected it.
    Reject,
    /// The time-to-live passed.
    Expire,
    /// The requester or a human withdrew it.
    Cancel,
    /// No approval prompt could be delivered.
    FailClosed,
    /// It was handed to the agent.
    Start,
    /// The agent reported success.
    Succeed,
    /// The agent reported failure, dispatch failed, or the outcome was lost.
    Fail,
}

impl ActionState {
    /// Every state.
    pub const ALL: [ActionState; 9] = [
        Self::PendingApproval,
        Self::Approved,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Rejected,
        Self::Expired,
        Self::Cancelled,
        Self::FailedClosed,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::FailedClosed => "failed_closed",
        }
    }

    /// Whether nothing can happen to the action any more.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Rejected | Self::Expired | Self::Cancelled | Self::FailedClosed
        )
    }

    /// The state after `event`, or an error naming why the move is illegal.
    ///
    /// The error codes are the ones a caller should see: approving an expired action is
    /// `ACTION_EXPIRED`; any other illegal move is `VALIDATION_ERROR` naming both states.
    pub fn apply(self, event: ActionEvent) -> Result<ActionState, MttrlyError> {
        use ActionEvent as E;
        use ActionState as S;
        let next = match (self, event) {
            (S::PendingApproval, E::Approve) => S::Approved,
            (S::PendingApproval, E::Reject) => S::Rejected,
            (S::PendingApproval, E::Expire) => S::Expired,
            (S::PendingApproval, E::Cancel) => S::Cancelled,
            (S::PendingApproval, E::FailClosed) => S::FailedClosed,
            (S::Approved, E::Start) => S::Running,
            (S::Approved | S::Running, E::Fail) => S::Failed,
            (S::Running, E::Succeed) => S::Succeeded,
            (S::Expired, E::Approve | E::Reject) => {
                return Err(MttrlyError::new(
                    ErrorCode::ActionExpired,
                    "the action expired before a decision; it can no longer be approved or rejected",
                ));
            }
            (state, event) => {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("this action {}, so it cannot be {}", state.phrase(), event.past_tense()),
                )
                .with_detail("status", state.as_str()));
            }
        };
        Ok(next)
    }

    /// Where the action stands, as the end of a sentence that starts with "this action".
    pub const fn phrase(self) -> &'static str {
        match self {
            Self::PendingApproval => "is waiting for approval",
            Self::Approved => "is already approved",
            Self::Running => "is already running",
            Self::Succeeded => "has already succeeded",
            Self::Failed => "has already failed",
            Self::Rejected => "was rejected",
            Self::Expired => "has expired",
            Self::Cancelled => "was cancelled",
            Self::FailedClosed => "was failed closed (its approval prompt could not be delivered)",
        }
    }
}

impl ActionEvent {
    fn past_tense(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Expire => "expired",
            Self::Cancel => "cancelled",
            Self::FailClosed => "failed closed",
            Self::Start => "started",
            Self::Succeed => "marked succeeded",
            Self::Fail => "marked failed",
        }
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of change an action makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// A shell command.
    Command,
    /// A managed or inline script.
    Script,
    /// A playbook run.
    Playbook,
    /// Writing a managed file.
    FileWrite,
    /// Deleting an allowlisted managed file.
    FileCleanup,
    /// Updating the agent.
    AgentUpdate,
    /// Repairing the agent's installation.
    InstallRepair,
    /// Rotating the agent's credentials and issuing a reinstall command.
    InstallTokenRotation,
    /// Removing an offline server from the registry.
    Decommission,
}

impl ActionType {
    /// Every action type.
    pub const ALL: [ActionType; 9] = [
        Self::Command,
        Self::Script,
        Self::Playbook,
        Self::FileWrite,
        Self::FileCleanup,
        Self::AgentUpdate,
        Self::InstallRepair,
        Self::InstallTokenRotation,
        Self::Decommission,
    ];

    /// The wire name (what serde writes), for the places that need a string: the wire types, the
    /// database column, approval prompts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Script => "script",
            Self::Playbook => "playbook",
            Self::FileWrite => "file_write",
            Self::FileCleanup => "file_cleanup",
            Self::AgentUpdate => "agent_update",
            Self::InstallRepair => "install_repair",
            Self::InstallTokenRotation => "install_token_rotation",
            Self::Decommission => "decommission",
        }
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exactly what an action will do. An approval is bound to this content: if it changes, the
/// approval no longer applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionContent {
    /// A shell command.
    Command {
        /// The command line as requested.
        command: String,
        /// The kill deadline, in seconds.
        timeout_seconds: u32,
    },
    /// A managed or inline script.
    Script {
        /// Which script.
        script: ScriptSource,
        /// Its arguments.
        args: Vec<String>,
        /// The kill deadline, in seconds.
        timeout_seconds: u32,
    },
    /// A playbook run.
    Playbook {
        /// The playbook.
        playbook_id: PlaybookId,
        /// Its validated parameters.
        parameters: std::collections::BTreeMap<ParamName, ParamValue>,
    },
    /// Writing a managed file.
    FileWrite {
        /// The file.
        path: String,
        /// SHA-256 of the new content, hex.
        sha256: String,
        /// Size of the new content in bytes.
        size_bytes: u64,
    },
    /// Deleting a managed file.
    FileCleanup {
        /// The file.
        path: String,
    },
    /// Updating the agent to a signed release (issue 16): everything the approver saw, and the
    /// signatures the agent checks again against the roots it trusts.
    AgentUpdate {
        /// The version running when the update was requested.
        from_version: String,
        /// The release's version.
        to_version: String,
        /// The release's target (`x86_64-linux`).
        target: String,
        /// SHA-256 of the release's binary, hex.
        sha256: String,
        /// The binary's size in bytes.
        size_bytes: u64,
        /// When the release's manifest expires (RFC 3339): the agent refuses it after.
        manifest_expires_at: String,
        /// Whether the release is older than `from_version`.
        downgrade: bool,
        /// Whether the request explicitly allowed a downgrade.
        allow_downgrade: bool,
        /// The release bundle's JSON (`mttrly_core::release::ReleaseBundle`).
        bundle_json: String,
    },
    /// Repairing the installation (issue 16): the plan the approver saw, bound by its hash. The
    /// host's root oneshot recomputes the plan from the receipt and performs it only while its
    /// hash is still `plan_hash`.
    InstallRepair {
        /// How.
        strategy: RepairStrategy,
        /// For `issue`: the findings named (empty: every repairable one).
        finding_codes: Vec<String>,
        /// Every change the plan makes, in order.
        changes: Vec<crate::tools::install::PlannedChange>,
        /// The plan's hash.
        plan_hash: String,
    },
    /// Re-issuing the agent's install (issue 16, `mttrly_bootstrap_recover`): rotates the agent
    /// credentials and shows the approver, once, the one-liner with a fresh install token, the
    /// pinned binary hash and central's CA. Same risk, and so the same approval rules, as an
    /// install-token rotation (its action type).
    BootstrapRecovery,
    /// Rotating the agent's credentials and issuing a reinstall command.
    InstallTokenRotation,
    /// Removing the server from the registry.
    Decommission,
}

impl ActionContent {
    /// The agent capability that carries this action out, or `None` for what central does itself
    /// (install-token rotation, decommissioning) and for what no agent offers yet (install
    /// repairs: central refuses those with a clear error instead of sending an unknown
    /// name). Exhaustive on purpose: a new action type must say where it runs.
    pub const fn capability(&self) -> Option<crate::capability::CapabilityId> {
        use crate::capability::CapabilityId;
        match self {
            Self::Command { .. } => Some(CapabilityId::CommandRun),
            Self::Script { .. } => Some(CapabilityId::ScriptRun),
            Self::Playbook { .. } => Some(CapabilityId::PlaybookRun),
            Self::FileWrite { .. } => Some(CapabilityId::FileWrite),
            Self::FileCleanup { .. } => Some(CapabilityId::FileCleanup),
            Self::AgentUpdate { .. } => Some(CapabilityId::AgentUpdate),
            Self::InstallRepair { .. } => Some(CapabilityId::InstallRepair),
            Self::InstallTokenRotation | Self::BootstrapRecovery | Self::Decommission => None,
        }
    }

    /// The canonical bytes of the content: its JSON with fields in declaration order. These exact
    /// bytes travel to the agent, and their SHA-256 is what an approval is bound to.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of [`Self::canonical_bytes`], hex.
    pub fn content_sha256(&self) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(self.canonical_bytes()))
    }

    /// The kind of change.
    pub const fn action_type(&self) -> ActionType {
        match self {
            Self::Command { .. } => ActionType::Command,
            Self::Script { .. } => ActionType::Script,
            Self::Playbook { .. } => ActionType::Playbook,
            Self::FileWrite { .. } => ActionType::FileWrite,
            Self::FileCleanup { .. } => ActionType::FileCleanup,
            Self::AgentUpdate { .. } => ActionType::AgentUpdate,
            Self::InstallRepair { .. } => ActionType::InstallRepair,
            Self::InstallTokenRotation | Self::BootstrapRecovery => ActionType::InstallTokenRotation,
            Self::Decommission => ActionType::Decommission,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_type_names_are_what_serde_writes() {
        for kind in ActionType::ALL {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::String(kind.as_str().to_owned())));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    const EVENTS: [ActionEvent; 8] = [
        ActionEvent::Approve,
        ActionEvent::Reject,
        ActionEvent::Expire,
        ActionEvent::Cancel,
        ActionEvent::FailClosed,
        ActionEvent::Start,
        ActionEvent::Succeed,
        ActionEvent::Fail,
    ];

    #[test]
    fn the_happy_path() {
        let s = ActionState::PendingApproval;
        let s = s.apply(ActionEvent::Approve).expect("approve");
        let s = s.apply(ActionEvent::Start).expect("start");
        assert_eq!(s.apply(ActionEvent::Succeed).ok(), Some(ActionState::Succeeded));
        assert_eq!(s.apply(ActionEvent::Fail).ok(), Some(ActionState::Failed));
    }

    #[test]
    fn every_legal_move_and_nothing_else() {
        use ActionEvent as E;
        use ActionState as S;
        let legal = [
            (S::PendingApproval, E::Approve, S::Approved),
            (S::PendingApproval, E::Reject, S::Rejected),
            (S::PendingApproval, E::Expire, S::Expired),
            (S::PendingApproval, E::Cancel, S::Cancelled),
            (S::PendingApproval, E::FailClosed, S::FailedClosed),
            (S::Approved, E::Start, S::Running),
            (S::Approved, E::Fail, S::Failed),
            (S::Running, E::Succeed, S::Succeeded),
            (S::Running, E::Fail, S::Failed),
        ];
        for state in ActionState::ALL {
            for event in EVENTS {
                let want = legal.iter().find(|(s, e, _)| *s == state && *e == event).map(|(_, _, n)| *n);
                assert_eq!(state.apply(event).ok(), want, "{state} + {event:?}");
            }
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for state in ActionState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in EVENTS {
                assert!(state.apply(event).is_err(), "{state} + {event:?}");
            }
        }
    }

    #[test]
    fn approving_twice_or_after_expiry_is_a_clear_error() {
        let approved = ActionState::Approved;
        let err = approved.apply(ActionEvent::Approve).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.message().contains("is already approved, so it cannot be approved"), "{err}");
        let err = ActionState::Expired.apply(ActionEvent::Approve).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ActionExpired);
    }

    #[test]
    fn a_running_action_cannot_start_again() {
        assert!(ActionState::Running.apply(ActionEvent::Start).is_err());
        assert!(ActionState::Failed.apply(ActionEvent::Start).is_err());
    }
}
