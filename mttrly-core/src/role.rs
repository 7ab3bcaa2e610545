//! A person's role within an account: what they may see and do. One definition, shared by
//! central's storage, the approval rules and the CLI, so a role name means the same everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role within an account, from most to least power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including managing users, tokens and rules.
    Admin,
    /// Servers and actions: requests and decisions.
    Operator,
    /// Reads only; never decides.
    Viewer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Self::Admin, Self::Operator, Self::Viewer];

    /// The stored and printed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    /// Whether this role may approve or reject actions at all (approval rules narrow it further).
    pub const fn may_decide(self) -> bool {
        !matches!(self, Self::Viewer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; the roles are admin, operator and viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }
}
