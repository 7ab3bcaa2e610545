//! `mttrly-cli policy approvals [--config FILE]`: the effective approval rule of every scope.
//!
//! Without `--config`, from the running central (`ActionService.ListApprovalRules`), each rule
//! with whether the caller's account can satisfy it and the fix when not. With `--config`, a
//! central config file checked on this machine exactly as central checks it at start (the same
//! `mttrly_core::approval::config` code), so a bad edit is caught before a restart.

use std::path::Path;

use mttrly_core::approval::config::{ApprovalPolicy, ApprovalsConfig, Scope};
use mttrly_core::approval::{ApprovalRule, SecondFactor};
use mttrly_core::{ErrorCode, MttrlyError, display};
use mttrly_proto::central::v1::ListApprovalRulesRequest;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::convert::environment_from_wire;
use serde::{Deserialize, Serialize};

use crate::cli::OutputFormat;
use crate::client::{Authed, error};
use crate::output::Printer;

/// Central's own default and range for `action_ttl_minutes` (mttrly-central's `Config`), the ttl
/// of every rule that sets none.
const DEFAULT_ACTION_TTL_MINUTES: u64 = 30;
const ACTION_TTL_MINUTES: std::ops::RangeInclusive<u64> = 1..=1440;

/// One rule in `policy approvals --output json`. Field names are a contract with scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct RuleOut {
    /// The config table, e.g. `approvals.production.action.file_write`.
    scope: String,
    environment: String,
    action_type: Option<String>,
    playbook: Option<String>,
    /// Roles and `user:NAME`s.
    approvers: Vec<String>,
    quorum: u32,
    requester_may_approve: bool,
    /// The requester may approve alone, with nothing more.
    no_four_eyes: bool,
    /// The requester may approve alone with a fresh TOTP code.
    solo_mode: bool,
    channels: Vec<String>,
    /// The channels the central offers among them (`None` offline: no central to ask).
    usable_channels: Option<Vec<String>>,
    ttl_minutes: u64,
    second_factor: String,
    /// Whether the caller's account can satisfy it (`None` offline).
    feasible: Option<bool>,
    /// Why not, with the fix.
    infeasible: Option<String>,
}

fn from_wire(rule: &mttrly_proto::central::v1::ApprovalRule) -> RuleOut {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    RuleOut {
        scope: rule.scope.clone(),
        environment: environment_from_wire(rule.environment).map_or("-", mttrly_core::Environment::as_str).to_owned(),
        action_type: non_empty(&rule.action_type),
        playbook: non_empty(&rule.playbook),
        approvers: rule.approvers.clone(),
        quorum: rule.quorum,
        requester_may_approve: rule.requester_may_approve,
        no_four_eyes: rule.no_four_eyes,
        solo_mode: rule.solo_mode,
        channels: rule.channels.clone(),
        usable_channels: Some(rule.usable_channels.clone()),
        ttl_minutes: u64::from(rule.ttl_minutes),
        second_factor: rule.second_factor.clone(),
        feasible: Some(rule.infeasible.is_empty()),
        infeasible: non_empty(&rule.infeasible),
    }
}

fn from_policy(scope: &Scope, rule: &ApprovalRule) -> RuleOut {
    let (environment, action_type, playbook) = match scope {
        Scope::Environment(e) => (*e, None, None),
        Scope::ActionType(e, t) => (*e, Some(t.as_str().to_owned()), None),
        Scope::Playbook(e, p) => (*e, None, Some(p.clone())),
    };
    let mut approvers: Vec<String> = rule.approvers.roles.iter().map(|r| r.as_str().to_owned()).collect();
    approvers.extend(rule.approvers.users.iter().map(|u| format!("user:{u}")));
    let totp = rule.second_factor == SecondFactor::Totp;
    RuleOut {
        scope: scope.to_string(),
        environment: environment.as_str().to_owned(),
        action_type,
        playbook,
        approvers,
        quorum: rule.quorum,
        requester_may_approve: rule.requester_may_approve,
        no_four_eyes: rule.requester_may_approve && !totp,
        solo_mode: rule.requester_may_approve && totp,
        channels: rule.channels.iter().map(|c| c.as_str().to_owned()).collect(),
        usable_channels: None,
        ttl_minutes: rule.ttl.as_secs() / 60,
        second_factor: rule.second_factor.as_str().to_owned(),
        feasible: None,
        infeasible: None,
    }
}

/// The requester column: four eyes, solo mode, or none.
fn requester(rule: &RuleOut) -> &'static str {
    if !rule.requester_may_approve {
        "four eyes"
    } else if rule.solo_mode {
        "solo (totp)"
    } else {
        "may approve: no four eyes"
    }
}

/// The human form: one row per scope, then one `warning:` line per rule the account cannot
/// satisfy. Every string is escaped (names come from a config file and from central).
fn render(rules: &[RuleOut]) -> String {
    let header = ["SCOPE", "APPROVERS", "QUORUM", "REQUESTER", "CHANNELS", "TTL", "SECOND FACTOR", "SATISFIABLE"];
    let online = rules.iter().any(|r| r.feasible.is_some());
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            let channels = r.usable_channels.as_ref().unwrap_or(&r.channels);
            let mut row = vec![
                display::exact(&r.scope).into_owned(),
                display::exact(&r.approvers.join(",")).into_owned(),
                r.quorum.to_string(),
                requester(r).to_owned(),
                if channels.is_empty() { "none here".to_owned() } else { channels.join(",") },
                format!("{}m", r.ttl_minutes),
                r.second_factor.clone(),
            ];
            if online {
                row.push(if r.feasible == Some(false) { "NO" } else { "yes" }.to_owned());
            }
            row
        })
        .collect();
    let header = if online { &header[..] } else { &header[..header.len() - 1] };
    let mut out = crate::output::render_table(header, &rows);
    for r in rules {
        if let Some(why) = &r.infeasible {
            out.push_str(&format!("\nwarning: {}: {}", display::exact(&r.scope), display::text(why)));
        }
    }
    for r in rules.iter().filter(|r| r.no_four_eyes && r.environment == "production") {
        out.push_str(&format!(
            "\nwarning: {}: no four eyes: the requester may approve their own production actions",
            display::exact(&r.scope)
        ));
    }
    out
}

/// `policy approvals`: the running central's rules, with their feasibility for this account.
pub(super) async fn remote(channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let rules = ActionServiceClient::new(channel)
        .list_approval_rules(ListApprovalRulesRequest {})
        .await
        .map_err(|s| error(&s))?
        .into_inner()
        .rules;
    let rules: Vec<RuleOut> = rules.iter().map(from_wire).collect();
    match printer.format() {
        OutputFormat::Json => printer.json(&serde_json::json!({ "rules": rules })),
        OutputFormat::Table => {
            printer.text(&render(&rules));
            Ok(())
        }
    }
}

/// The keys of a central config file this check reads; every other key is central's business
/// (and checked when it starts).
#[derive(Debug, Deserialize)]
struct CentralFile {
    #[serde(default)]
    approvals: Option<toml::Value>,
    #[serde(default)]
    action_ttl_minutes: Option<u64>,
}

/// The effective rules a central started with this file would use, or every problem in it.
fn check_file(text: &str) -> Result<ApprovalPolicy, Vec<String>> {
    let file: CentralFile = toml::from_str(text).map_err(|e| vec![format!("not a TOML config file: {e}")])?;
    let mut problems = Vec::new();
    let ttl = file.action_ttl_minutes.unwrap_or(DEFAULT_ACTION_TTL_MINUTES);
    if !ACTION_TTL_MINUTES.contains(&ttl) {
        problems.push(format!("action_ttl_minutes must be between 1 and 1440 (got {ttl})"));
    }
    let approvals: ApprovalsConfig = match file.approvals {
        None => ApprovalsConfig::new(),
        Some(value) => value.try_into().map_err(|e: toml::de::Error| {
            let mut all = problems.clone();
            all.push(format!("approvals: {}", e.message()));
            all
        })?,
    };
    let ttl = std::time::Duration::from_secs(ttl.clamp(*ACTION_TTL_MINUTES.start(), *ACTION_TTL_MINUTES.end()) * 60);
    match ApprovalPolicy::from_config(&approvals, Some(ttl)) {
        Ok(policy) if problems.is_empty() => Ok(policy),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.extend(e.problems);
            Err(problems)
        }
    }
}

/// `policy approvals --config FILE`: the file checked here; exit 1 listing every problem.
pub(super) fn offline(path: &Path, printer: &Printer) -> Result<(), MttrlyError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        MttrlyError::new(ErrorCode::ValidationError, format!("cannot read config file {shown}: {e}"))
            .with_detail("config", shown.as_str())
    })?;
    let policy = check_file(&text).map_err(|problems| {
        MttrlyError::new(
            ErrorCode::ValidationError,
            // One line (the error printer shows a newline as an escape): the problems numbered.
            format!(
                "{shown}: central would refuse to start with these approval rules: {}",
                problems.iter().enumerate().map(|(i, p)| format!("({}) {p}", i + 1)).collect::<Vec<_>>().join("; ")
            ),
        )
        .with_detail("config", shown.as_str())
        .with_detail("problems", problems)
    })?;
    let rules: Vec<RuleOut> = policy.effective().iter().map(|(scope, rule)| from_policy(scope, rule)).collect();
    match printer.format() {
        OutputFormat::Json => printer.json(&serde_json::json!({ "config": shown, "valid": true, "rules": rules })),
        OutputFormat::Table => {
            printer.text(&format!(
                "{}: valid; the effective rules (whether your people can satisfy them: `mttrly-cli policy approvals` against the running central)\n\n{}",
                display::exact(&shown),
                render(&rules)
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_file_layers_over_the_built_in_rules_with_central_s_ttl() {
        let policy = check_file(
            r#"
            grpc_listen = "127.0.0.1:1"
            action_ttl_minutes = 45
            [approvals.production]
            requester_may_approve = true
            second_factor = "totp"
            [approvals.production.playbook.restart-nginx]
            ttl_minutes = 10
            "#,
        )
        .expect("valid");
        let rules: Vec<RuleOut> = policy.effective().iter().map(|(s, r)| from_policy(s, r)).collect();
        let prod = rules.iter().find(|r| r.scope == "approvals.production").expect("production");
        assert!(prod.solo_mode && !prod.no_four_eyes && prod.requester_may_approve, "{prod:?}");
        assert_eq!(prod.ttl_minutes, 45, "action_ttl_minutes is the default ttl");
        let nginx = rules.iter().find(|r| r.playbook.as_deref() == Some("restart-nginx")).expect("playbook");
        assert_eq!((nginx.ttl_minutes, nginx.second_factor.as_str()), (10, "totp"));
        let staging = rules.iter().find(|r| r.scope == "approvals.staging").expect("staging");
        assert!(staging.no_four_eyes, "the built-in staging rule lets the requester approve: {staging:?}");
        let text = render(&rules);
        assert!(text.contains("solo (totp)") && text.contains("may approve: no four eyes"), "{text}");
        assert!(!text.contains("warning:"), "{text}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let problems = check_file(
            "action_ttl_minutes = 0\n[approvals.production]\nrequester_may_approve = true\nquorum = 0\n[approvals.prod]\nquorum = 1",
        )
        .expect_err("invalid");
        let text = problems.join("\n");
        for expected in
            ["action_ttl_minutes", "approvals.prod: unknown environment", "quorum: 0", "second_factor = \"totp\""]
        {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
        let problems = check_file("[approvals.production]\nquorom = 2").expect_err("unknown key");
        assert!(problems[0].contains("quorom"), "{problems:?}");
        assert!(check_file("not toml [").is_err());
    }
}
