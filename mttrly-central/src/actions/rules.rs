//! Which approval rule an action falls under, and which human channels can decide it here.

use mttrly_core::Source;
use mttrly_core::approval::ApprovalRule;

use crate::db::actions::ActionRow;
use crate::state::Central;

/// The approval rule for an action.
pub fn rule_for(central: &Central, action: &ActionRow) -> ApprovalRule {
    let mut rule = ApprovalRule::default_for(action.environment);
    rule.ttl = central.config.action_ttl();
    rule
}

/// The human channels this central offers for decisions. Today only the CLI (the gRPC
/// `ActionService` with a human's token); the dashboard and chat add themselves here when they
/// exist, so refusals and instructions never point to a channel nobody can use.
pub const DECISION_CHANNELS: &[Source] = &[Source::Cli];

/// The channels that can decide `action` on this central, in the rule's order (empty: nobody can).
pub fn usable_channels(central: &Central, action: &ActionRow) -> Vec<Source> {
    rule_for(central, action).usable_channels(DECISION_CHANNELS)
}
