//! Which approval rule an action falls under, and which human channels can decide it here.
//!
//! The rule comes from the checked `[approvals]` configuration ([`Central::approvals`]): the
//! playbook's table, else the action type's, else the environment's, else the built-in rule with
//! `action_ttl_minutes`. Every place that needs a rule (submit's expiry and quorum, approve,
//! reject, cancel, `actions show`, the assistant's instructions) asks here, so no two of them can
//! disagree about which rule governs an action.

use mttrly_core::action::ActionContent;
use mttrly_core::approval::ApprovalRule;
use mttrly_core::approval::config::ApprovalPolicy;
use mttrly_core::{Environment, Source};

use crate::db::actions::ActionRow;
use crate::state::Central;

/// The approval rule for an action.
pub fn rule_for(central: &Central, action: &ActionRow) -> ApprovalRule {
    rule_with(&central.approvals, action)
}

/// The approval rule `policy` gives an action: for the chat router, which holds the policy
/// without the rest of central.
pub fn rule_with(policy: &ApprovalPolicy, action: &ActionRow) -> ApprovalRule {
    policy.rule_for(action.environment, action.content.action_type(), playbook_of(&action.content))
}

/// The approval rule for `content` on a server of `environment` (before the action exists).
pub(super) fn rule_for_content(central: &Central, environment: Environment, content: &ActionContent) -> ApprovalRule {
    central.approvals.rule_for(environment, content.action_type(), playbook_of(content))
}

/// The playbook a content runs, which selects an `[approvals.ENV.playbook.NAME]` table.
fn playbook_of(content: &ActionContent) -> Option<&str> {
    match content {
        ActionContent::Playbook { playbook_id, .. } => Some(playbook_id.as_str()),
        _ => None,
    }
}

/// The channels that can decide `action` on this central, in the rule's order (empty: nobody can).
/// The channels central offers are [`Central::decision_channels`]: the CLI (the gRPC
/// `ActionService` with a human's token) and each configured chat provider, so refusals and
/// instructions never point to a channel nobody can use.
pub fn usable_channels(central: &Central, action: &ActionRow) -> Vec<Source> {
    rule_for(central, action).usable_channels(&central.decision_channels)
}
