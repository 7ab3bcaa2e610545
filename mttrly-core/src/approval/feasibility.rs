//! Whether anyone can satisfy a rule, given the people an account has: a production rule that
//! needs a second human, in an account of one, would let every production fix expire unapproved.
//! Central reports it at start, when a server is added to the environment, and in `actions show`,
//! always with the fix.

use super::{ApprovalRule, SecondFactor, channels_sentence};
use crate::principal::Source;
use crate::role::Role;

/// A person as the check sees them.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    /// Their user name.
    pub name: &'a str,
    /// Their role.
    pub role: Role,
    /// Whether they have a second factor enrolled.
    pub has_totp: bool,
}

/// Why a rule cannot be satisfied, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Infeasible {
    /// No channel the rule accepts exists on this central.
    #[error("{sentence}; fix: list an existing channel in the rule's `channels`")]
    NoChannel {
        /// Where decisions could be made, in words.
        sentence: String,
    },
    /// Too few eligible people.
    #[error("{problem}; fix: {fix}")]
    TooFewApprovers {
        /// What is missing, in words.
        problem: String,
        /// What to do.
        fix: String,
        /// Approvals the rule needs.
        quorum: u32,
        /// People who could approve an action somebody else requested (the worst case).
        eligible: usize,
    },
}

/// Checks `rule` against `people` (the account's users) and the channels this central offers.
/// The worst case counts: under four eyes, an eligible requester cannot approve their own request.
pub fn check(rule: &ApprovalRule, people: &[Person<'_>], existing_channels: &[Source]) -> Result<(), Infeasible> {
    let usable = rule.usable_channels(existing_channels);
    if usable.is_empty() {
        return Err(Infeasible::NoChannel { sentence: channels_sentence(&usable) });
    }
    let needs_totp = rule.second_factor == SecondFactor::Totp;
    let eligible: Vec<&Person<'_>> =
        people.iter().filter(|p| rule.approvers.admits(p.name, p.role) && (!needs_totp || p.has_totp)).collect();
    let some_requester_is_eligible =
        people.iter().any(|p| p.role.may_decide() && eligible.iter().any(|e| e.name == p.name));
    let worst =
        if rule.requester_may_approve || !some_requester_is_eligible { eligible.len() } else { eligible.len() - 1 };
    let quorum = usize::try_from(rule.quorum.max(1)).unwrap_or(usize::MAX);
    if worst >= quorum {
        return Ok(());
    }
    let who =
        format!("{}{}", rule.approvers.describe(), if needs_totp { " with a second factor enrolled" } else { "" });
    let names: Vec<&str> = eligible.iter().map(|p| p.name).collect();
    let have = if names.is_empty() { "nobody".to_owned() } else { names.join(", ") };
    let problem = if rule.requester_may_approve {
        format!("the rule needs {quorum} approver(s) among {who}; this account has {} ({have})", eligible.len())
    } else {
        format!(
            "the rule needs {quorum} approver(s) other than the requester among {who}; this account has {} ({have}), so a request by one of them can never be approved",
            eligible.len()
        )
    };
    let mut fixes = vec![format!(
        "add {} teammate(s) (`mttrly-cli users add NAME --role operator`{})",
        quorum - worst,
        if needs_totp { ", then enroll their second factor" } else { "" }
    )];
    if needs_totp && people.iter().any(|p| rule.approvers.admits(p.name, p.role) && !p.has_totp) {
        fixes.push("have eligible people enroll a second factor".to_owned());
    }
    if !rule.requester_may_approve && quorum == 1 {
        fixes.push(
            "or allow solo approval deliberately: requester_may_approve = true with second_factor = \"totp\""
                .to_owned(),
        );
    }
    Err(Infeasible::TooFewApprovers { problem, fix: fixes.join(", "), quorum: rule.quorum, eligible: worst })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{Approvers, HUMAN_CHANNELS};
    use crate::environment::Environment;

    fn person(name: &str, role: Role, has_totp: bool) -> Person<'_> {
        Person { name, role, has_totp }
    }

    #[test]
    fn a_one_person_account_cannot_satisfy_four_eyes_and_is_told_the_fix() {
        let rule = ApprovalRule::default_for(Environment::Production);
        let err = check(&rule, &[person("admin", Role::Admin, false)], HUMAN_CHANNELS).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("other than the requester"), "{text}");
        assert!(text.contains("mttrly-cli users add NAME --role operator"), "{text}");
        assert!(text.contains("requester_may_approve = true with second_factor"), "{text}");
        assert!(
            check(&rule, &[person("admin", Role::Admin, false), person("bob", Role::Operator, false)], HUMAN_CHANNELS)
                .is_ok()
        );
    }

    #[test]
    fn viewers_and_people_without_a_second_factor_do_not_count_when_totp_is_required() {
        let rule =
            ApprovalRule { second_factor: SecondFactor::Totp, ..ApprovalRule::default_for(Environment::Production) };
        let people = [
            person("admin", Role::Admin, true),
            person("bob", Role::Operator, false),
            person("eve", Role::Viewer, true),
        ];
        let err = check(&rule, &people, HUMAN_CHANNELS).unwrap_err();
        assert!(err.to_string().contains("enroll"), "{err}");
        let people = [person("admin", Role::Admin, true), person("bob", Role::Operator, true)];
        assert!(check(&rule, &people, HUMAN_CHANNELS).is_ok());
    }

    #[test]
    fn solo_mode_is_satisfiable_by_one_person_with_a_second_factor() {
        let rule = ApprovalRule {
            requester_may_approve: true,
            second_factor: SecondFactor::Totp,
            ..ApprovalRule::default_for(Environment::Production)
        };
        assert!(check(&rule, &[person("admin", Role::Admin, true)], HUMAN_CHANNELS).is_ok());
        assert!(check(&rule, &[person("admin", Role::Admin, false)], HUMAN_CHANNELS).is_err());
    }

    #[test]
    fn named_approvers_and_quorum_count_distinct_eligible_people() {
        let rule = ApprovalRule {
            approvers: Approvers { roles: vec![Role::Admin], users: vec!["carol".into()] },
            quorum: 2,
            ..ApprovalRule::default_for(Environment::Production)
        };
        let people = [
            person("admin", Role::Admin, false),
            person("bob", Role::Operator, false),
            person("carol", Role::Operator, false),
        ];
        // Eligible: admin, carol. A request by admin leaves only carol: one short.
        let err = check(&rule, &people, HUMAN_CHANNELS).unwrap_err();
        assert!(matches!(err, Infeasible::TooFewApprovers { eligible: 1, quorum: 2, .. }), "{err:?}");
        let more = [people[0], people[1], people[2], person("dan", Role::Admin, false)];
        assert!(check(&rule, &more, HUMAN_CHANNELS).is_ok());
    }

    #[test]
    fn a_rule_whose_channels_do_not_exist_is_reported() {
        let rule = ApprovalRule { channels: vec![Source::Telegram], ..ApprovalRule::default_for(Environment::Staging) };
        let err = check(&rule, &[person("a", Role::Admin, false)], &[Source::Cli]).unwrap_err();
        assert!(matches!(err, Infeasible::NoChannel { .. }), "{err:?}");
    }
}
