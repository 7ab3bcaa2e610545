//! Subscription plans and their limits.
//!
//! Plans are ordered (`watchdog` < `deployment_bro` < `deployment_crew`). Which tools a plan
//! unlocks is not here: every catalog row names its lowest plan, and [`crate::access`] derives the
//! matrix from the rows (so this vocabulary sits below the catalog, which names plans).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
