//! Where a server sits in the delivery pipeline.
//!
//! The environment decides the approval rules (production wants four eyes and no MCP approvals by
//! default), so it is a closed enum rather than a free-form label.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A server's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Serves real users; the strictest approval rules apply.
    Production,
    /// Pre-production.
    Staging,
    /// Developers' machines and sandboxes.
    Development,
}

impl Environment {
    /// Every environment, strictest first.
    pub const ALL: [Environment; 3] = [Self::Production, Self::Staging, Self::Development];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Staging => "staging",
            Self::Development => "development",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the three environments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment `{0}`: expected production, staging or development")]
pub struct UnknownEnvironment(pub String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|e| e.as_str() == s).ok_or_else(|| UnknownEnvironment(s.to_owned()))
    }
}
