//! Approval rules as data, and the one function that decides whether a decision counts.
//!
//! A rule says, per environment (and, where a playbook asks for it, per playbook): which role may
//! approve, how many distinct humans must approve, whether the human the request came from may be
//! one of them (four eyes), which channels may carry a decision, and how long a pending action
//! lives. [`check_decision`] is pure, so every rule is testable without a database, and the action
//! engine calls nothing else to judge a decision.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::{ErrorCode, MttrlyError};
use crate::ids::UserId;
use crate::principal::{Principal, Source};

/// The least role that may approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApproverRole {
    /// Operators and admins.
    Operator,
    /// Admins only.
    Admin,
}

/// An approval rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// The least role that may approve.
    pub approver_role: ApproverRole,
    /// How many distinct humans must approve.
    pub quorum: u32,
    /// Whether the human who asked (or on whose behalf the assistant asked) may approve.
    pub requester_may_approve: bool,
    /// The channels a decision may come through. `mcp` means a human confirmed in the MCP client
    /// through a server-authored elicitation; the assistant itself never decides.
    pub channels: Vec<Source>,
    /// How long a pending action waits for a decision.
    #[serde(with = "seconds")]
    pub ttl: Duration,
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// The default time-to-live of a pending action (the seed's 30 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

impl ApprovalRule {
    /// The built-in rule for an environment: production needs a second human and refuses MCP
    /// approvals; staging and development accept the requester's own approval, also through MCP.
    pub fn default_for(environment: Environment) -> Self {
        match environment {
            Environment::Production => Self {
                approver_role: ApproverRole::Operator,
                quorum: 1,
                requester_may_approve: false,
                channels: vec![Source::Cli, Source::Dashboard, Source::Telegram],
                ttl: DEFAULT_TTL,
            },
            Environment::Staging | Environment::Development => Self {
                approver_role: ApproverRole::Operator,
                quorum: 1,
                requester_may_approve: true,
                channels: vec![Source::Cli, Source::Dashboard, Source::Telegram, Source::Mcp],
                ttl: DEFAULT_TTL,
            },
        }
    }
}

/// A recorded decision, as the rule check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorApproval {
    /// Who approved.
    pub user_id: UserId,
}

/// Who is deciding, as the engine knows them.
#[derive(Debug, Clone)]
pub struct Decider<'a> {
    /// The principal making the decision.
    pub principal: &'a Principal,
    /// Whether their role is admin (true) or operator (false); viewers never reach this point.
    pub is_admin: bool,
    /// Whether they may decide at all (operator or admin).
    pub may_decide: bool,
    /// The channel the decision came through.
    pub channel: Source,
}

/// What an approval achieves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalEffect {
    /// Recorded; more approvals are needed.
    Recorded {
        /// Approvals still needed.
        remaining: u32,
    },
    /// The quorum is reached: the action may run.
    QuorumReached,
}

fn forbidden(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::Forbidden, message)
}

/// Checks that `decider` may decide on an action under `rule`.
/// Applies to approvals and rejections alike (a rejection needs no quorum, but the same person).
pub fn check_decider(rule: &ApprovalRule, decider: &Decider<'_>) -> Result<UserId, MttrlyError> {
    let Principal::Human { user_id, .. } = decider.principal else {
        return Err(forbidden(
            "an assistant can never approve or reject an action; a human must decide, for example with `mttrly-cli actions approve ID`",
        )
        .with_detail("hint", "mttrly-cli actions approve ID"));
    };
    if !decider.may_decide {
        return Err(forbidden("deciding on actions needs the operator or admin role"));
    }
    if rule.approver_role == ApproverRole::Admin && !decider.is_admin {
        return Err(forbidden("this action's rule needs an admin to decide"));
    }
    if !rule.channels.contains(&decider.channel) {
        let allowed: Vec<&str> = rule.channels.iter().map(|c| c.as_str()).collect();
        return Err(forbidden(format!(
            "decisions on this action are not accepted through {}; use one of: {}",
            decider.channel,
            allowed.join(", ")
        ))
        .with_detail("channel", decider.channel.as_str())
        .with_detail("allowed_channels", allowed));
    }
    Ok(user_id.clone())
}

/// Judges an approval: the decider must pass [`check_decider`], must not have approved already,
/// and (under four eyes) must not be the requester's human. Returns what the approval achieves.
pub fn check_approval(
    rule: &ApprovalRule,
    requester: &Principal,
    decider: &Decider<'_>,
    prior: &[PriorApproval],
) -> Result<ApprovalEffect, MttrlyError> {
    let user = check_decider(rule, decider)?;
    if !rule.requester_may_approve && &user == requester.accountable_user() {
        return Err(forbidden(
            "four-eyes rule: the person who requested this action (or whose assistant did) cannot approve it; another human must",
        ));
    }
    if prior.iter().any(|p| p.user_id == user) {
        return Err(MttrlyError::new(ErrorCode::ValidationError, "you have already approved this action"));
    }
    let have = u32::try_from(prior.len()).unwrap_or(u32::MAX).saturating_add(1);
    if have >= rule.quorum.max(1) {
        Ok(ApprovalEffect::QuorumReached)
    } else {
        Ok(ApprovalEffect::Recorded { remaining: rule.quorum - have })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AssistantSessionId;

    fn human(id: &UserId) -> Principal {
        Principal::Human { user_id: id.clone(), name: "h".into() }
    }

    fn decider(p: &Principal, channel: Source) -> Decider<'_> {
        Decider { principal: p, is_admin: false, may_decide: true, channel }
    }

    #[test]
    fn an_assistant_never_decides_whatever_the_channel() {
        let alice = UserId::generate();
        let bot = Principal::Assistant {
            session_id: AssistantSessionId::generate(),
            client_name: "claude-code".into(),
            on_behalf_of: alice.clone(),
        };
        for env in Environment::ALL {
            let rule = ApprovalRule::default_for(env);
            for channel in Source::ALL {
                let err = check_approval(&rule, &human(&alice), &decider(&bot, channel), &[]).unwrap_err();
                assert_eq!(err.code(), ErrorCode::Forbidden);
                assert!(check_decider(&rule, &decider(&bot, channel)).is_err());
            }
        }
    }

    #[test]
    fn production_needs_four_eyes_and_refuses_mcp() {
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let rule = ApprovalRule::default_for(Environment::Production);
        let requester = Principal::Assistant {
            session_id: AssistantSessionId::generate(),
            client_name: "c".into(),
            on_behalf_of: alice.clone(),
        };
        let a = human(&alice);
        let err = check_approval(&rule, &requester, &decider(&a, Source::Cli), &[]).unwrap_err();
        assert!(err.message().contains("four-eyes"), "{err}");
        let b = human(&bob);
        assert_eq!(
            check_approval(&rule, &requester, &decider(&b, Source::Cli), &[]).ok(),
            Some(ApprovalEffect::QuorumReached)
        );
        let err = check_approval(&rule, &requester, &decider(&b, Source::Mcp), &[]).unwrap_err();
        assert_eq!(err.details()["channel"], "mcp");
    }

    #[test]
    fn quorum_counts_distinct_humans() {
        let (a, b, c) = (UserId::generate(), UserId::generate(), UserId::generate());
        let rule = ApprovalRule { quorum: 2, ..ApprovalRule::default_for(Environment::Staging) };
        let requester = human(&a);
        let pb = human(&b);
        assert_eq!(
            check_approval(&rule, &requester, &decider(&pb, Source::Cli), &[]).ok(),
            Some(ApprovalEffect::Recorded { remaining: 1 })
        );
        let prior = [PriorApproval { user_id: b.clone() }];
        assert!(check_approval(&rule, &requester, &decider(&pb, Source::Cli), &prior).is_err(), "same human twice");
        let pc = human(&c);
        assert_eq!(
            check_approval(&rule, &requester, &decider(&pc, Source::Cli), &prior).ok(),
            Some(ApprovalEffect::QuorumReached)
        );
    }

    #[test]
    fn roles_gate_decisions() {
        let a = UserId::generate();
        let p = human(&a);
        let rule =
            ApprovalRule { approver_role: ApproverRole::Admin, ..ApprovalRule::default_for(Environment::Staging) };
        assert!(check_approval(&rule, &p, &decider(&p, Source::Cli), &[]).is_err());
        let admin = Decider { is_admin: true, ..decider(&p, Source::Cli) };
        assert!(check_approval(&rule, &p, &admin, &[]).is_ok());
        let viewer = Decider { may_decide: false, ..decider(&p, Source::Cli) };
        assert!(check_decider(&ApprovalRule::default_for(Environment::Staging), &viewer).is_err());
    }
}
