//! Toolsets: the groups of tools an operator switches on or off together.
//!
//! The vocabulary sits here, below the catalog, so the tool types that name a toolset (the
//! capabilities answer) and the catalog rows that assign one share it without importing each
//! other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, MttrlyError};

/// A group of tools that can be switched on or off together (`--toolsets servers,files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Toolset {
    /// Plan capabilities, the server registry, health and alerts.
    Servers,
    /// Diagnostics and service discovery.
    Diagnostics,
    /// Remediation playbooks.
    Playbooks,
    /// Shell commands and scripts.
    Commands,
    /// Allowlisted files: read, search, diff, write, clean up.
    Files,
    /// Pending actions, approvals and the audit log.
    Actions,
    /// Agent installation health, repair and updates.
    Install,
    /// Investigations, bypasses, timelines, deploy verification and retrospectives.
    Investigations,
    /// Knowledge search, the morning brief and proactive events.
    Knowledge,
    /// The war room: channels, notifications, threads, incident summaries and statistics
    /// (beyond the seed's catalog).
    Notify,
}

impl Toolset {
    /// Every toolset.
    pub const ALL: [Toolset; 10] = [
        Self::Servers,
        Self::Diagnostics,
        Self::Playbooks,
        Self::Commands,
        Self::Files,
        Self::Actions,
        Self::Install,
        Self::Investigations,
        Self::Knowledge,
        Self::Notify,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Servers => "servers",
            Self::Diagnostics => "diagnostics",
            Self::Playbooks => "playbooks",
            Self::Commands => "commands",
            Self::Files => "files",
            Self::Actions => "actions",
            Self::Install => "install",
            Self::Investigations => "investigations",
            Self::Knowledge => "knowledge",
            Self::Notify => "notify",
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Toolset {
    type Err = MttrlyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
            MttrlyError::new(
                ErrorCode::ValidationError,
                format!("unknown toolset `{s}`: expected one of {}", names.join(", ")),
            )
            .with_detail("toolset", s)
        })
    }
}
