//! The access matrix: which plan unlocks which tool.
//!
//! Derived, never kept as a second table that could drift: every catalog row names the lowest
//! plan that unlocks its tool, and a plan unlocks a tool when it is at least that plan. It lives
//! above both [`crate::plan`] (the plans) and [`crate::catalog`] (the rows), so neither imports
//! the other.

use std::fmt::Write as _;

use crate::catalog::{ToolId, ToolSpec};
use crate::error::{ErrorCode, MttrlyError};
use crate::plan::Plan;

impl Plan {
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
mttrly_publish_notification 0 1 1
mttrly_list_channels 0 1 1
mttrly_create_channel 0 1 1
mttrly_get_thread 0 1 1
mttrly_get_notifications 0 1 1
mttrly_subscribe_channel 0 1 1
mttrly_unsubscribe_channel 0 1 1
mttrly_get_incident_summary 0 1 1
mttrly_get_incident_stats 0 1 1
";

    #[test]
    fn derived_matrix_matches_the_seed_for_every_tool_and_plan() {
        let rows: Vec<&str> = SEED_MATRIX.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(rows.len(), ToolId::ALL.len());
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
    fn plan_check_names_the_unlocking_plan() {
        let err = Plan::Watchdog.check(ToolId::ExecuteCommand).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PlanRequired);
        assert_eq!(err.details()["required_plan"], "deployment_bro");
        assert!(Plan::Watchdog.check(ToolId::ListServers).is_ok());
        assert_eq!(Plan::Watchdog.tools().count(), 8);
        assert_eq!(Plan::DeploymentCrew.tools().count(), ToolId::ALL.len());
    }

    #[test]
    fn access_matrix_snapshot() {
        insta::assert_snapshot!("access_matrix", access_matrix_table());
    }
}
