//! Subscription plans: their limits and which tools each unlocks.
//!
//! Plans are ordered (`watchdog` < `deployment_bro` < `deployment_crew`) and every tool in the
//! catalog names the lowest plan that unlocks it, so the access matrix is *derived*, never kept
//! as a second table that could drift.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::{ToolId, ToolSpec};
use crate::error::{ErrorCode, MttrlyError};

/// A subscription plan, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Read-only monitoring of one server.
    Watchdog,
    /// Diagnostics, files and approval-gated fixes on up to three servers.
    DeploymentBro,
    /// Everything, for a team (the self-hosted default).
    DeploymentCrew,
}

/// A plan's numeric limits, as the seed's limits table gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// How many servers an account may register.
    pub servers: u32,
    /// The most log or output lines one call returns.
    pub log_lines: u32,
    /// How long alerts, audit rows and logs are kept, in days.
    pub log_retention_days: u32,
    /// How many scheduled checks may exist; `None` means unlimited.
    pub scheduled_checks: Option<u32>,
}

impl Plan {
    /// Every plan, lowest first.
    pub const ALL: [Plan; 3] = [Self::Watchdog, Self::DeploymentBro, Self::DeploymentCrew];

    /// The wire name, exactly as the seed spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Watchdog => "watchdog",
            Self::DeploymentBro => "deployment_bro",
            Self::DeploymentCrew => "deployment_crew",
        }
    }

    /// The name a person reads.
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::Watchdog => "Watchdog",
            Self::DeploymentBro => "Deployment Bro",
            Self::DeploymentCrew => "Deployment Crew",
        }
    }

    /// The seed's limits table.
    pub const fn limits(self) -> PlanLimits {
        match self {
            Self::Watchdog => {
                PlanLimits { servers: 1, log_lines: 50, log_retention_days: 7, scheduled_checks: Some(0) }
            }
            Self::DeploymentBro => {
                PlanLimits { servers: 3, log_lines: 500, log_retention_days: 30, scheduled_checks: Some(5) }
            }
            Self::DeploymentCrew => {
                PlanLimits { servers: 9, log_lines: 500, log_retention_days: 30, scheduled_checks: None }
            }
        }
    }

    /// Whether this plan unlocks the tool.
    pub fn allows(self, tool: ToolId) -> bool {
        self >= tool.spec().min_plan
    }

    /// Refuses a tool the plan does not include with `PLAN_REQUIRED`, naming the plan that unlocks it.
    pub fn check(self, tool: ToolId) -> Result<(), MttrlyError> {
        let spec: &ToolSpec = tool.spec();
        if self.allows(tool) {
            return Ok(());
        }
        Err(MttrlyError::new(
            ErrorCode::PlanRequired,
            format!(
                "{} requires the {} plan or higher; this account is on {}",
                spec.id,
                spec.min_plan.display_name(),
                self.display_name()
            ),
        )
        .with_detail("tool_id", spec.id.as_str())
        .with_detail("current_plan", self.as_str())
        .with_detail("required_plan", spec.min_plan.as_str()))
    }

    /// The tools this plan unlocks, in catalog order.
    pub fn tools(self) -> impl Iterator<Item = ToolId> {
        ToolId::ALL.iter().copied().filter(move |t| self.allows(*t))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the plans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan `{0}`: expected watchdog, deployment_bro or deployment_crew")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownPlan(s.to_owned()))
    }
}

/// Renders the access matrix as the seed's Markdown table, derived from the catalog.
pub fn access_matrix_table() -> String {
    let mut out = String::from("| Tool | Watchdog | Deployment Bro | Deployment Crew |\n|---|---|---|---|\n");
    for tool in ToolId::ALL {
        let cells: Vec<&str> = Plan::ALL.iter().map(|p| if p.allows(*tool) { "✓" } else { "—" }).collect();
        let _ = writeln!(out, "| {} | {} |", tool.as_str(), cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's access matrix, transcribed row by row (✓ = 1). The derived matrix must match it.
    const SEED_MATRIX: &str = "
mttrly_get_capabilities 1 1 1
mttrly_list_servers 1 1 1
mttrly_get_server_status 1 1 1
mttrly_get_alerts 1 1 1
mttrly_quick_triage 1 1 1
mttrly_run_diagnostic 0 1 1
mttrly_list_playbooks 1 1 1
mttrly_run_playbook 0 1 1
mttrly_execute_command 0 1 1
mttrly_get_pending_actions 0 1 1
mttrly_get_action_result 0 1 1
mttrly_approve_action 0 1 1
mttrly_cancel_action 0 1 1
mttrly_get_audit_log 0 1 1
mttrly_get_service_reality 0 1 1
mttrly_refresh_reality 0 1 1
mttrly_get_server_timeline 0 1 1
mttrly_run_deploy_verifier 0 1 1
mttrly_read_file 0 1 1
mttrly_read_privileged_file 0 1 1
mttrly_search_files 0 1 1
mttrly_diff_file 0 1 1
mttrly_compare_source_to_dist 0 1 1
mttrly_get_install_health 0 1 1
mttrly_write_file 0 1 1
mttrly_cleanup_file 0 1 1
mttrly_execute_script 0 1 1
mttrly_bootstrap_recover 0 1 1
mttrly_repair_install 0 1 1
mttrly_regenerate_install_token 1 1 1
mttrly_decommission_server 1 1 1
mttrly_update_agent 0 1 1
mttrly_start_investigation 0 1 1
mttrly_generate_retrospective 0 1 1
mttrly_search_knowledge 0 1 1
mttrly_get_morning_brief 0 1 1
mttrly_get_investigation_bypass 0 1 1
mttrly_acquire_investigation_bypass 0 1 1
mttrly_revoke_investigation_bypass 0 1 1
mttrly_acknowledge_proactive_event 0 1 1
";

    #[test]
    fn derived_matrix_matches_the_seed_for_all_40_tools_and_3_plans() {
        let rows: Vec<&str> = SEED_MATRIX.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(rows.len(), 40);
        let mut seen = std::collections::BTreeSet::new();
        for row in rows {
            let mut parts = row.split_whitespace();
            let id = parts.next().expect("tool id");
            let tool: ToolId = id.parse().unwrap_or_else(|e| panic!("{e}"));
            assert!(seen.insert(tool), "{id} listed twice");
            for plan in Plan::ALL {
                let want = parts.next().expect("cell") == "1";
                assert_eq!(plan.allows(tool), want, "{id} on {plan}");
            }
        }
        assert_eq!(seen.len(), ToolId::ALL.len());
    }

    #[test]
    fn limits_match_the_seed() {
        assert_eq!(Plan::Watchdog.limits().servers, 1);
        assert_eq!(Plan::Watchdog.limits().log_lines, 50);
        assert_eq!(Plan::Watchdog.limits().log_retention_days, 7);
        assert_eq!(Plan::Watchdog.limits().scheduled_checks, Some(0));
        assert_eq!(Plan::DeploymentBro.limits().servers, 3);
        assert_eq!(Plan::DeploymentBro.limits().scheduled_checks, Some(5));
        assert_eq!(Plan::DeploymentCrew.limits().servers, 9);
        assert_eq!(Plan::DeploymentCrew.limits().log_lines, 500);
        assert_eq!(Plan::DeploymentCrew.limits().log_retention_days, 30);
        assert_eq!(Plan::DeploymentCrew.limits().scheduled_checks, None);
    }

    #[test]
    fn plan_check_names_the_unlocking_plan() {
        let err = Plan::Watchdog.check(ToolId::ExecuteCommand).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PlanRequired);
        assert_eq!(err.details()["required_plan"], "deployment_bro");
        assert!(Plan::Watchdog.check(ToolId::ListServers).is_ok());
        assert_eq!(Plan::Watchdog.tools().count(), 8);
        assert_eq!(Plan::DeploymentCrew.tools().count(), 40);
    }

    #[test]
    fn access_matrix_snapshot() {
        insta::assert_snapshot!("access_matrix", access_matrix_table());
    }
}
