//! Approval rules as data, and the one function that decides whether a decision counts.
//!
//! A rule says, per environment (and, where a playbook asks for it, per playbook): which role may
//! approve, how many distinct humans must approve, whether the human the request came from may be
//! one of them (four eyes), which channels may carry a decision, and how long a pending action
//! lives. [`check_decision`] is pure, so every rule is testable without a database, and the action
//! engine calls nothing else to judge a decision.

pub mod config;
pub mod feasibility;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::{ErrorCode, MttrlyError};
use crate::ids::UserId;
use crate::principal::{Principal, Source};
use crate::role::Role;

/// Who may approve under a rule: people holding one of `roles`, and the people named in `users`.
/// Viewers never decide, whatever a rule lists (a configuration naming them is refused at start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// Roles whose holders may approve.
    pub roles: Vec<Role>,
    /// People who may approve whatever their role (by user name), as long as it is not viewer.
    pub users: Vec<String>,
}

impl Approvers {
    /// Operators and admins: the built-in set.
    pub fn operators_and_admins() -> Self {
        Self { roles: vec![Role::Operator, Role::Admin], users: Vec::new() }
    }

    /// Whether a person named `name` with `role` is eligible.
    pub fn admits(&self, name: &str, role: Role) -> bool {
        role.may_decide() && (self.roles.contains(&role) || self.users.iter().any(|u| u == name))
    }

    /// The set in words, for refusals and `policy approvals`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.roles.iter().map(|r| format!("{r}s")).collect();
        parts.extend(self.users.iter().map(|u| format!("user {u}")));
        if parts.is_empty() { "nobody".to_owned() } else { parts.join(", ") }
    }
}

/// Whether a decision needs a fresh second-factor code from the person deciding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// The channel's own sign-in is enough.
    #[default]
    None,
    /// A TOTP code typed at decision time (never through an assistant).
    Totp,
}

impl SecondFactor {
    /// The configuration name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Totp => "totp",
        }
    }
}

/// An approval rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Who may approve.
    pub approvers: Approvers,
    /// How many distinct humans must approve.
    pub quorum: u32,
    /// Whether the human who asked (or on whose behalf the assistant asked) may approve.
    pub requester_may_approve: bool,
    /// The channels a decision may come through. Only [`HUMAN_CHANNELS`] ever count: a rule that
    /// lists another source (`mcp`, `api`) cannot make it one.
    pub channels: Vec<Source>,
    /// How long a pending action waits for a decision.
    #[serde(with = "seconds")]
    pub ttl: Duration,
    /// Whether each approval needs a fresh second-factor code.
    pub second_factor: SecondFactor,
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

/// The channels through which a *human* can decide: each authenticates the person and shows them
/// the action itself. MCP is not one of them: a form answered by an MCP client proves only that a
/// client answered, and the assistant drives that client. Neither is the raw API (`api`).
pub const HUMAN_CHANNELS: &[Source] = &[Source::Cli, Source::Dashboard, Source::Telegram, Source::Slack];

/// The default time-to-live of a pending action (the seed's 30 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

impl ApprovalRule {
    /// The built-in rule for an environment: production needs a second human; staging and
    /// development accept the requester's own approval. Decisions come only through the human
    /// channels, never through MCP.
    pub fn default_for(environment: Environment) -> Self {
        match environment {
            Environment::Production => Self {
                approvers: Approvers::operators_and_admins(),
                quorum: 1,
                requester_may_approve: false,
                channels: HUMAN_CHANNELS.to_vec(),
                ttl: DEFAULT_TTL,
                second_factor: SecondFactor::None,
            },
            Environment::Staging | Environment::Development => Self {
                approvers: Approvers::operators_and_admins(),
                quorum: 1,
                requester_may_approve: true,
                channels: HUMAN_CHANNELS.to_vec(),
                ttl: DEFAULT_TTL,
                second_factor: SecondFactor::None,
            },
        }
    }

    /// The channels that can carry a decision under this rule *and* exist on this deployment
    /// (`existing`), in the rule's order. Empty means nobody can decide here: say so first.
    pub fn usable_channels(&self, existing: &[Source]) -> Vec<Source> {
        self.channels.iter().copied().filter(|c| HUMAN_CHANNELS.contains(c) && existing.contains(c)).collect()
    }
}

/// The sentence naming where a decision can be made, from the channels that exist.
pub fn channels_sentence(usable: &[Source]) -> String {
    if usable.is_empty() {
        return "no decision channel this central offers is accepted for this environment, so nobody can decide it here"
            .to_owned();
    }
    let names: Vec<&str> = usable.iter().map(|c| c.as_str()).collect();
    format!("decisions are accepted through: {}", names.join(", "))
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
    /// Whether the token they hold may decide: a read-only token, or one scoped to toolsets
    /// without `actions`, sees actions but decides nothing.
    pub token_may_decide: bool,
    /// The channel the decision came through.
    pub channel: Source,
    /// The human channels this deployment offers (named in refusals, so a refusal never points
    /// to a channel that does not exist).
    pub existing_channels: &'a [Source],
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
    let Principal::Human { user_id, name } = decider.principal else {
        return Err(forbidden(
            "an assistant can never approve or reject an action; a human must decide, for example with `mttrly-cli actions approve ID`",
        )
        .with_detail("hint", "mttrly-cli actions approve ID"));
    };
    let usable = rule.usable_channels(decider.existing_channels);
    if !usable.contains(&decider.channel) {
        let allowed: Vec<&str> = usable.iter().map(|c| c.as_str()).collect();
        return Err(forbidden(format!(
            "decisions on this action are not accepted through {}; {}",
            decider.channel,
            channels_sentence(&usable)
        ))
        .with_detail("channel", decider.channel.as_str())
        .with_detail("allowed_channels", allowed));
    }
    if !decider.token_may_decide {
        return Err(forbidden(
            "this token is read-only or scoped without the `actions` toolset: it can look at actions but decides nothing; use an unscoped human token",
        ));
    }
    if !decider.may_decide {
        return Err(forbidden("deciding on actions needs the operator or admin role"));
    }
    let role = if decider.is_admin { Role::Admin } else { Role::Operator };
    if !rule.approvers.admits(name, role) {
        return Err(forbidden(format!("under this action's rule only {} may decide", rule.approvers.describe())));
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
        Decider {
            principal: p,
            is_admin: false,
            may_decide: true,
            token_may_decide: true,
            channel,
            existing_channels: HUMAN_CHANNELS,
        }
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
    fn no_rule_accepts_mcp_or_api_even_when_it_lists_them() {
        let alice = UserId::generate();
        let a = human(&alice);
        for env in Environment::ALL {
            let mut rule = ApprovalRule::default_for(env);
            rule.channels = Source::ALL.to_vec();
            for channel in [Source::Mcp, Source::Api, Source::Agent] {
                let err = check_approval(&rule, &a, &decider(&a, channel), &[]).unwrap_err();
                assert_eq!(err.code(), ErrorCode::Forbidden);
                assert_eq!(err.details()["channel"], channel.as_str());
            }
        }
    }

    #[test]
    fn refusals_name_only_channels_that_exist() {
        let alice = UserId::generate();
        let a = human(&alice);
        let rule = ApprovalRule::default_for(Environment::Staging);
        let d = Decider { existing_channels: &[Source::Cli], ..decider(&a, Source::Mcp) };
        let err = check_decider(&rule, &d).unwrap_err();
        assert_eq!(err.details()["allowed_channels"], serde_json::json!(["cli"]));
        assert!(!err.message().contains("telegram") && !err.message().contains("dashboard"), "{err}");
        let only_dashboard = ApprovalRule { channels: vec![Source::Dashboard], ..rule };
        let err = check_decider(&only_dashboard, &Decider { channel: Source::Cli, ..d }).unwrap_err();
        assert!(err.message().contains("nobody can decide"), "{err}");
    }

    #[test]
    fn a_scoped_token_decides_nothing() {
        let alice = UserId::generate();
        let a = human(&alice);
        let rule = ApprovalRule::default_for(Environment::Development);
        let d = Decider { token_may_decide: false, ..decider(&a, Source::Cli) };
        let err = check_approval(&rule, &a, &d, &[]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert!(err.message().contains("read-only"), "{err}");
        assert!(check_decider(&rule, &d).is_err());
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
        let rule = ApprovalRule {
            approvers: Approvers { roles: vec![Role::Admin], users: Vec::new() },
            ..ApprovalRule::default_for(Environment::Staging)
        };
        assert!(check_approval(&rule, &p, &decider(&p, Source::Cli), &[]).is_err());
        let admin = Decider { is_admin: true, ..decider(&p, Source::Cli) };
        assert!(check_approval(&rule, &p, &admin, &[]).is_ok());
        let viewer = Decider { may_decide: false, ..decider(&p, Source::Cli) };
        assert!(check_decider(&ApprovalRule::default_for(Environment::Staging), &viewer).is_err());
    }
}
