//! Approval rules as configuration: the `[approvals]` tables of central's config file, checked
//! once at start and resolved per action.
//!
//! ```toml
//! [approvals.production]                 # the rule for an environment
//! approvers = ["admin", "user:bob"]      # roles, and people by name (`user:NAME`)
//! quorum = 2
//! requester_may_approve = false
//! channels = ["cli", "dashboard"]
//! ttl_minutes = 30
//! second_factor = "totp"                 # none | totp
//! bypass = "forbidden"                   # allowed | forbidden: investigation bypasses here
//!
//! [approvals.production.action.file_write]      # that environment, one action type
//! quorum = 1
//!
//! [approvals.production.playbook.restart-nginx] # that environment, one playbook
//! ttl_minutes = 10
//! ```
//!
//! Every table is partial: a key it leaves out comes from the layer below (playbook → action type
//! → environment → the built-in rule of [`ApprovalRule::default_for`]). Overrides are scoped to
//! one environment on purpose, so a line written for staging can never loosen production.
//! `mttrly-cli policy approvals` prints the effective rule of every scope, so nothing is hidden
//! in the layering.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ApprovalRule, Approvers, HUMAN_CHANNELS, SecondFactor};
use crate::action::ActionType;
use crate::environment::Environment;
use crate::principal::Source;
use crate::role::Role;

/// Longest time-to-live a rule may set: a pending action older than a day is a stale request,
/// not an emergency fix.
pub const MAX_TTL_MINUTES: u64 = 24 * 60;
/// Largest quorum: beyond this, a rule is a typo.
pub const MAX_QUORUM: u32 = 10;

/// One `[approvals.…]` table as written: every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Roles (`admin`, `operator`) and people (`user:NAME`) who may approve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<String>>,
    /// Distinct humans needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Whether the requester's human may be one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_may_approve: Option<bool>,
    /// Channels a decision may come through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Minutes a pending action waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<u64>,
    /// `none` or `totp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<String>,
}

/// An `[approvals.ENV]` table: its own keys plus per-action-type and per-playbook overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The environment's own keys.
    #[serde(flatten)]
    pub rule: RuleConfig,
    /// `[approvals.ENV.action.TYPE]`.
    #[serde(default)]
    pub action: BTreeMap<String, RuleConfig>,
    /// `[approvals.ENV.playbook.NAME]`.
    #[serde(default)]
    pub playbook: BTreeMap<String, RuleConfig>,
    /// `allowed` or `forbidden`: whether a human may grant an investigation bypass (exec calls
    /// that skip per-command approval for a while) on this environment's servers. Environment
    /// scope only. Default: forbidden in production, allowed elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass: Option<String>,
}

/// The whole `[approvals]` table, keyed by environment name.
pub type ApprovalsConfig = BTreeMap<String, EnvironmentConfig>;

/// The configuration's problems, each naming its key, all at once (fixing one at a time through
/// restarts is a miserable way to learn a schema).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [approvals] configuration:\n  - {}", problems.join("\n  - "))]
pub struct ApprovalConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// An environment as a whole.
    Environment(Environment),
    /// One action type in an environment.
    ActionType(Environment, ActionType),
    /// One playbook in an environment.
    Playbook(Environment, String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment(e) => write!(f, "approvals.{e}"),
            Self::ActionType(e, t) => write!(f, "approvals.{e}.action.{}", t.as_str()),
            Self::Playbook(e, p) => write!(f, "approvals.{e}.playbook.{p}"),
        }
    }
}

/// The checked rules: the one place the engine asks which rule governs an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    environments: BTreeMap<Environment, ApprovalRule>,
    actions: BTreeMap<(Environment, ActionType), ApprovalRule>,
    playbooks: BTreeMap<(Environment, String), ApprovalRule>,
    bypasses: BTreeMap<Environment, bool>,
}

impl Default for ApprovalPolicy {
    /// The built-in rules, with no configuration.
    fn default() -> Self {
        Self::from_config(&ApprovalsConfig::new(), None)
            .unwrap_or_else(|_| unreachable!("the empty configuration is valid"))
    }
}

impl ApprovalPolicy {
    /// Checks and layers the configuration. `default_ttl` replaces the built-in 30 minutes where a
    /// rule sets none (central's older `action_ttl_minutes` setting).
    pub fn from_config(config: &ApprovalsConfig, default_ttl: Option<Duration>) -> Result<Self, ApprovalConfigError> {
        let mut problems = Vec::new();
        let mut policy = Self {
            environments: BTreeMap::new(),
            actions: BTreeMap::new(),
            playbooks: BTreeMap::new(),
            bypasses: BTreeMap::new(),
        };
        for name in config.keys() {
            if name.parse::<Environment>().is_err() {
                problems.push(format!(
                    "approvals.{name}: unknown environment; the environments are {}",
                    names(Environment::ALL.iter().map(|e| e.as_str()))
                ));
            }
        }
        for env in Environment::ALL {
            let mut base = ApprovalRule::default_for(env);
            if let Some(ttl) = default_ttl {
                base.ttl = ttl;
            }
            policy.bypasses.insert(env, default_bypass_allowed(env));
            let Some(table) = config.get(env.as_str()) else {
                policy.environments.insert(env, base);
                continue;
            };
            match table.bypass.as_deref() {
                None => {}
                Some("allowed") => {
                    policy.bypasses.insert(env, true);
                }
                Some("forbidden") => {
                    policy.bypasses.insert(env, false);
                }
                Some(other) => {
                    problems.push(format!("approvals.{env}.bypass: `{other}` is not one of allowed, forbidden"));
                }
            }
            let scope = Scope::Environment(env);
            let rule = layer(&base, &table.rule, &scope, &mut problems);
            check(&rule, env, &scope, &mut problems);
            for (type_name, over) in &table.action {
                let Some(action_type) = ActionType::ALL.into_iter().find(|t| t.as_str() == type_name) else {
                    problems.push(format!(
                        "approvals.{env}.action.{type_name}: unknown action type; the types are {}",
                        names(ActionType::ALL.iter().map(|t| t.as_str()))
                    ));
                    continue;
                };
                let scope = Scope::ActionType(env, action_type);
                let layered = layer(&rule, over, &scope, &mut problems);
                check(&layered, env, &scope, &mut problems);
                policy.actions.insert((env, action_type), layered);
            }
            for (playbook, over) in &table.playbook {
                let scope = Scope::Playbook(env, playbook.clone());
                if !valid_playbook_name(playbook) {
                    problems.push(format!("{scope}: a playbook name is lower-case letters, digits, '-' and '_'"));
                    continue;
                }
                // A playbook run is a `playbook` action: its type's override is the layer below.
                let below = policy.actions.get(&(env, ActionType::Playbook)).unwrap_or(&rule).clone();
                let layered = layer(&below, over, &scope, &mut problems);
                check(&layered, env, &scope, &mut problems);
                policy.playbooks.insert((env, playbook.clone()), layered);
            }
            policy.environments.insert(env, rule);
        }
        if problems.is_empty() { Ok(policy) } else { Err(ApprovalConfigError { problems }) }
    }

    /// The rule that governs an action of `action_type` in `environment` (and, for a playbook run,
    /// the playbook's name).
    pub fn rule_for(&self, environment: Environment, action_type: ActionType, playbook: Option<&str>) -> ApprovalRule {
        if let Some(rule) = playbook.and_then(|p| self.playbooks.get(&(environment, p.to_owned()))) {
            return rule.clone();
        }
        if let Some(rule) = self.actions.get(&(environment, action_type)) {
            return rule.clone();
        }
        self.environments.get(&environment).cloned().unwrap_or_else(|| ApprovalRule::default_for(environment))
    }

    /// Whether a human may grant an investigation bypass on a server of `environment`
    /// (`[approvals.ENV] bypass`; by default forbidden in production, allowed elsewhere).
    pub fn bypass_allowed(&self, environment: Environment) -> bool {
        self.bypasses.get(&environment).copied().unwrap_or_else(|| default_bypass_allowed(environment))
    }

    /// Every scope with its effective rule, environments first, for `policy approvals` and the
    /// start-up feasibility report.
    pub fn effective(&self) -> Vec<(Scope, ApprovalRule)> {
        let mut out: Vec<(Scope, ApprovalRule)> =
            self.environments.iter().map(|(e, r)| (Scope::Environment(*e), r.clone())).collect();
        out.extend(self.actions.iter().map(|((e, t), r)| (Scope::ActionType(*e, *t), r.clone())));
        out.extend(self.playbooks.iter().map(|((e, p), r)| (Scope::Playbook(*e, p.clone()), r.clone())));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The built-in answer: production never skips per-command approval unless its owner says so.
const fn default_bypass_allowed(environment: Environment) -> bool {
    !matches!(environment, Environment::Production)
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn valid_playbook_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `base` with the keys `over` sets replaced; a bad value is reported and leaves `base`'s.
fn layer(base: &ApprovalRule, over: &RuleConfig, scope: &Scope, problems: &mut Vec<String>) -> ApprovalRule {
    let mut rule = base.clone();
    if let Some(list) = &over.approvers {
        let mut approvers = Approvers { roles: Vec::new(), users: Vec::new() };
        for entry in list {
            if let Some(user) = entry.strip_prefix("user:") {
                if valid_user_name(user) {
                    if !approvers.users.iter().any(|u| u == user) {
                        approvers.users.push(user.to_owned());
                    }
                } else {
                    problems.push(format!("{scope}.approvers: `{entry}` does not name a user (user:NAME, NAME of letters, digits, '.', '-', '_')"));
                }
                continue;
            }
            match entry.parse::<Role>() {
                Ok(Role::Viewer) => {
                    problems.push(format!("{scope}.approvers: viewers never decide; use admin, operator or user:NAME"));
                }
                Ok(role) if !approvers.roles.contains(&role) => approvers.roles.push(role),
                Ok(_) => {}
                Err(_) => problems.push(format!(
                    "{scope}.approvers: `{entry}` is neither a role (admin, operator) nor a person (user:NAME)"
                )),
            }
        }
        if list.is_empty() {
            problems.push(format!("{scope}.approvers: the list is empty, so nobody could ever approve"));
        }
        rule.approvers = approvers;
    }
    if let Some(quorum) = over.quorum {
        if (1..=MAX_QUORUM).contains(&quorum) {
            rule.quorum = quorum;
        } else {
            problems.push(format!("{scope}.quorum: {quorum} is outside 1..={MAX_QUORUM}"));
        }
    }
    if let Some(may) = over.requester_may_approve {
        rule.requester_may_approve = may;
    }
    if let Some(list) = &over.channels {
        let mut channels = Vec::new();
        for name in list {
            match Source::ALL.into_iter().find(|s| s.as_str() == name) {
                Some(s) if HUMAN_CHANNELS.contains(&s) => {
                    if !channels.contains(&s) {
                        channels.push(s);
                    }
                }
                Some(s) => problems.push(format!(
                    "{scope}.channels: `{s}` cannot carry a human's decision (an MCP form or an API call proves no human); the human channels are {}",
                    names(HUMAN_CHANNELS.iter().map(|c| c.as_str()))
                )),
                None => problems.push(format!(
                    "{scope}.channels: unknown channel `{name}`; the human channels are {}",
                    names(HUMAN_CHANNELS.iter().map(|c| c.as_str()))
                )),
            }
        }
        if list.is_empty() {
            problems.push(format!("{scope}.channels: the list is empty, so no decision could ever arrive"));
        }
        rule.channels = channels;
    }
    if let Some(minutes) = over.ttl_minutes {
        if (1..=MAX_TTL_MINUTES).contains(&minutes) {
            rule.ttl = Duration::from_secs(minutes * 60);
        } else {
            problems.push(format!("{scope}.ttl_minutes: {minutes} is outside 1..={MAX_TTL_MINUTES}"));
        }
    }
    if let Some(factor) = &over.second_factor {
        match factor.as_str() {
            "none" => rule.second_factor = SecondFactor::None,
            "totp" => rule.second_factor = SecondFactor::Totp,
            other => problems.push(format!("{scope}.second_factor: `{other}` is not one of none, totp")),
        }
    }
    rule
}

/// User names as central stores them (see `users add`).
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// Rules about a rule as a whole, after layering.
fn check(rule: &ApprovalRule, env: Environment, scope: &Scope, problems: &mut Vec<String>) {
    // Solo approval of production is deliberate or not at all: it needs a fresh TOTP code.
    if env == Environment::Production && rule.requester_may_approve && rule.second_factor != SecondFactor::Totp {
        problems.push(format!(
            "{scope}: requester_may_approve = true in production needs second_factor = \"totp\" (solo mode: the requester approves with a fresh code); otherwise an assistant's human approves their own production change with nothing more"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ApprovalPolicy, ApprovalConfigError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            approvals: ApprovalsConfig,
        }
        let file: File = toml::from_str(text).map_err(|e| ApprovalConfigError { problems: vec![e.to_string()] })?;
        ApprovalPolicy::from_config(&file.approvals, None)
    }

    #[test]
    fn no_configuration_gives_the_built_in_rules() {
        let policy = ApprovalPolicy::default();
        for env in Environment::ALL {
            for t in ActionType::ALL {
                assert_eq!(policy.rule_for(env, t, None), ApprovalRule::default_for(env));
            }
        }
    }

    #[test]
    fn layers_apply_playbook_over_action_type_over_environment() {
        let policy = parse(
            r#"
            [approvals.production]
            approvers = ["admin", "user:bob"]
            quorum = 2
            second_factor = "totp"
            [approvals.production.action.playbook]
            ttl_minutes = 20
            [approvals.production.action.file_write]
            quorum = 1
            [approvals.production.playbook.restart-nginx]
            quorum = 1
            "#,
        )
        .unwrap();
        let prod = policy.rule_for(Environment::Production, ActionType::Command, None);
        assert_eq!(prod.quorum, 2);
        assert_eq!(prod.second_factor, SecondFactor::Totp);
        assert_eq!(prod.approvers.roles, vec![Role::Admin]);
        assert_eq!(prod.approvers.users, vec!["bob".to_owned()]);
        assert!(!prod.requester_may_approve, "inherited from the built-in production rule");
        let write = policy.rule_for(Environment::Production, ActionType::FileWrite, None);
        assert_eq!((write.quorum, write.second_factor), (1, SecondFactor::Totp));
        let nginx = policy.rule_for(Environment::Production, ActionType::Playbook, Some("restart-nginx"));
        assert_eq!((nginx.quorum, nginx.ttl), (1, Duration::from_secs(20 * 60)));
        let other = policy.rule_for(Environment::Production, ActionType::Playbook, Some("other"));
        assert_eq!((other.quorum, other.ttl), (2, Duration::from_secs(20 * 60)));
        assert_eq!(
            policy.rule_for(Environment::Staging, ActionType::Command, None),
            ApprovalRule::default_for(Environment::Staging)
        );
        let scopes: Vec<String> = policy.effective().iter().map(|(s, _)| s.to_string()).collect();
        assert!(scopes.contains(&"approvals.production.playbook.restart-nginx".to_owned()), "{scopes:?}");
    }

    #[test]
    fn a_staging_override_never_touches_production() {
        let policy =
            parse("[approvals.staging]\nquorum = 3\n[approvals.staging.action.command]\nrequester_may_approve = true")
                .unwrap();
        assert_eq!(
            policy.rule_for(Environment::Production, ActionType::Command, None),
            ApprovalRule::default_for(Environment::Production)
        );
    }

    #[test]
    fn solo_production_needs_totp() {
        let err = parse("[approvals.production]\nrequester_may_approve = true").unwrap_err();
        assert!(err.problems[0].contains("second_factor = \"totp\""), "{err}");
        let err = parse("[approvals.production.action.command]\nrequester_may_approve = true").unwrap_err();
        assert!(err.problems[0].starts_with("approvals.production.action.command"), "{err}");
        let solo = parse("[approvals.production]\nrequester_may_approve = true\nsecond_factor = \"totp\"").unwrap();
        assert!(solo.rule_for(Environment::Production, ActionType::Command, None).requester_may_approve);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key_at_once() {
        let err = parse(
            r#"
            [approvals.prod]
            quorum = 1
            [approvals.production]
            approvers = ["viewer", "owner", "user:", "user:../x"]
            quorum = 0
            channels = ["mcp", "api", "pigeon"]
            ttl_minutes = 100000
            second_factor = "sms"
            [approvals.production.action.reboot]
            quorum = 1
            [approvals.production.playbook."Bad Name"]
            quorum = 1
            "#,
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "approvals.prod: unknown environment",
            "viewers never decide",
            "`owner` is neither a role",
            "`user:` does not name a user",
            "`user:../x` does not name a user",
            "quorum: 0 is outside",
            "`mcp` cannot carry a human's decision",
            "`api` cannot carry",
            "unknown channel `pigeon`",
            "ttl_minutes: 100000 is outside",
            "`sms` is not one of none, totp",
            "approvals.production.action.reboot: unknown action type",
            "approvals.production.playbook.Bad Name: a playbook name",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn bypasses_are_forbidden_in_production_unless_its_table_allows_them() {
        let builtin = parse("").unwrap();
        assert!(!builtin.bypass_allowed(Environment::Production));
        assert!(builtin.bypass_allowed(Environment::Staging) && builtin.bypass_allowed(Environment::Development));
        let set =
            parse("[approvals.production]\nbypass = \"allowed\"\n[approvals.staging]\nbypass = \"forbidden\"").unwrap();
        assert!(set.bypass_allowed(Environment::Production) && !set.bypass_allowed(Environment::Staging));
        let err = parse("[approvals.staging]\nbypass = \"sometimes\"").unwrap_err();
        assert!(err.problems[0].contains("approvals.staging.bypass"), "{err}");
        assert!(parse("[approvals.staging.action.command]\nbypass = \"allowed\"").is_err(), "environment scope only");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = parse("[approvals.production]\nquorom = 2").unwrap_err();
        assert!(err.to_string().contains("quorom"), "{err}");
    }

    #[test]
    fn chat_services_are_decision_channels() {
        let policy = parse(
            "[approvals.production]\nchannels = [\"slack\"]\n[approvals.staging]\nchannels = [\"telegram\", \"cli\"]",
        )
        .unwrap();
        assert_eq!(policy.rule_for(Environment::Production, ActionType::Command, None).channels, [Source::Slack]);
        assert_eq!(
            policy.rule_for(Environment::Staging, ActionType::Command, None).channels,
            [Source::Telegram, Source::Cli]
        );
    }

    #[test]
    fn an_empty_approver_or_channel_list_is_refused() {
        let err = parse("[approvals.staging]\napprovers = []\nchannels = []").unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }
}
