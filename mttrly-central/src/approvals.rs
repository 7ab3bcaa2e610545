//! Approval rules as an app operation: the effective rule of every scope, and whether an
//! account's people can ever satisfy each one.
//!
//! The rules themselves are data, checked at start (`Config::approval_policy`, held in
//! [`Central::approvals`]); what only a running central knows is *who* is there. A rule that
//! needs a second human, in an account of one, lets every production fix expire unapproved, and
//! nobody would notice until an incident. So the same check
//! (`mttrly_core::approval::feasibility`) runs at start (a WARN line per rule and account, with
//! the fix), when a server joins an environment (`servers add` prints it), on a pending action
//! (`actions show`, and the assistant's `next_step`), and in `policy approvals`.

use mttrly_core::action::ActionState;
use mttrly_core::approval::config::Scope;
use mttrly_core::approval::feasibility::{self, Infeasible, Person};
use mttrly_core::approval::{ApprovalRule, SecondFactor};
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{Environment, ErrorCode, MttrlyError, Role, Source};

use crate::actions::rule_for;
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::state::Central;

/// A living user of an account, as the feasibility check sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Their id (a requester is matched by it).
    pub id: UserId,
    /// Their name (`user:NAME` approvers are matched by it).
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Whether they have a confirmed TOTP enrolment.
    pub has_totp: bool,
}

/// One scope's effective rule, with what this central and the caller's account make of it.
#[derive(Debug, Clone)]
pub struct EffectiveRule {
    /// What the rule applies to.
    pub scope: Scope,
    /// The rule after layering.
    pub rule: ApprovalRule,
    /// The rule's channels that exist on this central (what a refusal names).
    pub usable_channels: Vec<Source>,
    /// Why the account's people can never satisfy it, with the fix; `None` when they can.
    pub infeasible: Option<Infeasible>,
}

/// The account's living users, each with whether they have a second factor enrolled. That takes
/// one lookup per person, so it is made only when a rule being judged asks for TOTP
/// (`with_totp`); otherwise `has_totp` is false and no rule reads it.
pub async fn members(central: &Central, account: &AccountId, with_totp: bool) -> Result<Vec<Member>, MttrlyError> {
    let users = central.db.account(account).users().list().await?;
    let enrolled = if with_totp {
        central.db.account(account).people().enrolled_users().await?
    } else {
        std::collections::HashSet::new()
    };
    Ok(users
        .into_iter()
        .map(|user| Member { has_totp: enrolled.contains(&user.id), id: user.id, name: user.name, role: user.role })
        .collect())
}

/// Whether any of `rules` asks for a second factor.
fn any_totp<'a>(mut rules: impl Iterator<Item = &'a ApprovalRule>) -> bool {
    rules.any(|r| r.second_factor == SecondFactor::Totp)
}

/// Whether `members` can ever satisfy `rule` through the channels this central offers: the
/// worst case, a request by one of the eligible people themselves.
pub fn check(rule: &ApprovalRule, members: &[Member], channels: &[Source]) -> Result<(), Infeasible> {
    let people: Vec<Person<'_>> =
        members.iter().map(|m| Person { name: &m.name, role: m.role, has_totp: m.has_totp }).collect();
    feasibility::check(rule, &people, channels)
}

/// Whether `members` can satisfy `rule` for a request by `requester` in particular (an action
/// that exists): exact rather than the worst case, so a request by someone who could not have
/// approved it anyway (a viewer's assistant) is not reported for the four-eyes subtraction.
pub fn check_for_requester(
    rule: &ApprovalRule,
    members: &[Member],
    requester: &UserId,
    channels: &[Source],
) -> Result<(), Infeasible> {
    let requester_counts = !rule.requester_may_approve
        && members.iter().any(|m| {
            &m.id == requester
                && rule.approvers.admits(&m.name, m.role)
                && (rule.second_factor != SecondFactor::Totp || m.has_totp)
        });
    if requester_counts || rule.requester_may_approve {
        return check(rule, members, channels);
    }
    // The requester is not among the eligible: every eligible person is "another human".
    let others = ApprovalRule { requester_may_approve: true, ..rule.clone() };
    check(&others, members, channels)
}

/// Whether a rule lets the requester's own human approve without a second factor: no four eyes.
/// Production never allows this (the configuration check refuses it); elsewhere it is the
/// built-in rule, and `policy approvals` says so in as many words.
pub fn no_four_eyes(rule: &ApprovalRule) -> bool {
    rule.requester_may_approve && rule.second_factor != SecondFactor::Totp
}

/// Whether a rule is solo mode: the requester approves their own action with a fresh TOTP code.
pub fn solo_mode(rule: &ApprovalRule) -> bool {
    rule.requester_may_approve && rule.second_factor == SecondFactor::Totp
}

/// The effective rule of every scope, each with its feasibility for the caller's account: what
/// `policy approvals` prints. Any human of the account may read it (viewers too: knowing who can
/// approve is how a team finds out it cannot); assistant tokens are refused.
pub async fn effective(central: &Central, caller: &TokenOwner) -> Result<Vec<EffectiveRule>, MttrlyError> {
    if !caller.principal.is_human() {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "the approval rules are for humans to read, with a human token (`mttrly-cli policy approvals`)",
        ));
    }
    let effective = central.approvals.effective();
    let members = members(central, &caller.account_id, any_totp(effective.iter().map(|(_, r)| r))).await?;
    Ok(effective
        .into_iter()
        .map(|(scope, rule)| EffectiveRule {
            usable_channels: rule.usable_channels(&central.decision_channels),
            infeasible: check(&rule, &members, &central.decision_channels).err(),
            scope,
            rule,
        })
        .collect())
}

/// One line per scope of `environment` the account's people cannot satisfy, each naming its
/// scope and the fix; `None` when every rule there can be satisfied. `servers add --env`
/// prints it, so the moment a team puts a server into production it learns whether anyone can
/// approve a fix there.
pub async fn environment_warning(
    central: &Central,
    account: &AccountId,
    environment: Environment,
) -> Result<Option<String>, MttrlyError> {
    let scopes: Vec<(Scope, ApprovalRule)> = central
        .approvals
        .effective()
        .into_iter()
        .filter(|(scope, _)| scope_environment(scope) == environment)
        .collect();
    let members = members(central, account, any_totp(scopes.iter().map(|(_, r)| r))).await?;
    let lines: Vec<String> = scopes
        .into_iter()
        .filter_map(|(scope, rule)| {
            check(&rule, &members, &central.decision_channels).err().map(|why| describe(&scope, &why))
        })
        .collect();
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

/// Why nobody can approve this pending action, with the fix; `None` when someone can (or when it
/// is not pending any more). `actions show` and the assistant's `next_step` carry it.
pub async fn action_warning(central: &Central, action: &ActionRow) -> Result<Option<String>, MttrlyError> {
    if action.status != ActionState::PendingApproval {
        return Ok(None);
    }
    let rule = rule_for(central, action);
    let members = members(central, &action.account_id, rule.second_factor == SecondFactor::Totp).await?;
    Ok(check_for_requester(&rule, &members, action.requested_by.accountable_user(), &central.decision_channels)
        .err()
        .map(|why| {
            format!("nobody can approve this action under its rule ({} environment): {why}", action.environment)
        }))
}

/// A scope's problem in one line: `approvals.production: …; fix: …`.
pub fn describe(scope: &Scope, why: &Infeasible) -> String {
    format!("{scope}: {why}")
}

/// The environment a scope belongs to.
pub fn scope_environment(scope: &Scope) -> Environment {
    match scope {
        Scope::Environment(e) | Scope::ActionType(e, _) | Scope::Playbook(e, _) => *e,
    }
}

/// At start: a WARN line for every rule some account's people cannot satisfy (with the fix), and
/// an INFO line for each scope in solo mode, so an operator reading the log learns both before
/// an incident does. Failing to read an account is logged, never fatal: the report is advice.
pub async fn report_at_start(central: &Central) {
    let effective = central.approvals.effective();
    for (scope, rule) in &effective {
        if solo_mode(rule) {
            tracing::info!(
                scope = %scope,
                "solo mode: the requester may approve their own actions here, each time with a fresh TOTP code (audited as solo)"
            );
        } else if no_four_eyes(rule) && scope_environment(scope) == Environment::Production {
            tracing::warn!(scope = %scope, "no four eyes: the requester may approve their own production actions");
        }
    }
    let with_totp = any_totp(effective.iter().map(|(_, r)| r));
    let accounts = match central.db.tenants().list().await {
        Ok(rows) => rows.into_iter().map(|row| row.id),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list accounts to check the approval rules");
            return;
        }
    };
    for account in accounts {
        let members = match members(central, &account, with_totp).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(account = %account, error = %e, "cannot read an account's people to check the approval rules");
                continue;
            }
        };
        for (scope, rule) in &effective {
            if let Err(why) = check(rule, &members, &central.decision_channels) {
                tracing::warn!(
                    account = %account,
                    scope = %scope,
                    "approval rule cannot be satisfied: {why}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::approval::config::{ApprovalPolicy, ApprovalsConfig, EnvironmentConfig, RuleConfig};

    use super::*;

    /// A central whose only decision channel is the CLI.
    const CLI: &[Source] = &[Source::Cli];

    fn member(name: &str, role: Role, has_totp: bool) -> Member {
        Member { id: UserId::generate(), name: name.to_owned(), role, has_totp }
    }

    #[test]
    fn a_one_person_account_cannot_satisfy_production_and_a_teammate_fixes_it() {
        let rule = ApprovalRule::default_for(Environment::Production);
        let admin = member("admin", Role::Admin, false);
        let err = check(&rule, std::slice::from_ref(&admin), CLI).unwrap_err();
        assert!(err.to_string().contains("mttrly-cli users add NAME --role operator"), "{err}");
        assert!(check(&rule, &[admin, member("bob", Role::Operator, false)], CLI).is_ok());
    }

    #[test]
    fn an_action_is_judged_for_its_own_requester() {
        // quorum 1, four eyes; the account: an admin and a viewer. A request on the admin's
        // behalf can never be approved; the same rule for a request by the viewer's assistant can
        // (the admin is another human).
        let rule = ApprovalRule::default_for(Environment::Production);
        let admin = member("admin", Role::Admin, false);
        let viewer = member("vic", Role::Viewer, false);
        let people = [admin.clone(), viewer.clone()];
        assert!(check_for_requester(&rule, &people, &admin.id, CLI).is_err());
        assert!(check_for_requester(&rule, &people, &viewer.id, CLI).is_ok());
        // Solo mode is satisfiable by the requester alone, with a second factor.
        let solo = ApprovalRule { requester_may_approve: true, second_factor: SecondFactor::Totp, ..rule };
        assert!(check_for_requester(&solo, &people, &admin.id, CLI).is_err(), "no TOTP enrolled");
        let enrolled = [Member { has_totp: true, ..admin.clone() }, viewer];
        assert!(check_for_requester(&solo, &enrolled, &admin.id, CLI).is_ok());
    }

    #[test]
    fn only_a_rule_without_a_second_factor_is_no_four_eyes() {
        let staging = ApprovalRule::default_for(Environment::Staging);
        assert!(no_four_eyes(&staging) && !solo_mode(&staging));
        let solo = ApprovalRule { second_factor: SecondFactor::Totp, ..staging };
        assert!(!no_four_eyes(&solo) && solo_mode(&solo));
        assert!(!no_four_eyes(&ApprovalRule::default_for(Environment::Production)));
    }

    #[test]
    fn scopes_belong_to_their_environment() {
        let mut config = ApprovalsConfig::new();
        config.insert(
            "production".into(),
            EnvironmentConfig {
                rule: RuleConfig::default(),
                action: [("command".to_owned(), RuleConfig { quorum: Some(2), ..RuleConfig::default() })].into(),
                playbook: [("restart-nginx".to_owned(), RuleConfig::default())].into(),
                bypass: None,
            },
        );
        let policy = ApprovalPolicy::from_config(&config, None).unwrap();
        let production: Vec<String> = policy
            .effective()
            .into_iter()
            .filter(|(s, _)| scope_environment(s) == Environment::Production)
            .map(|(s, _)| s.to_string())
            .collect();
        assert_eq!(
            production,
            [
                "approvals.production",
                "approvals.production.action.command",
                "approvals.production.playbook.restart-nginx"
            ]
        );
    }
}
