//! Who is acting, and through which channel.
//!
//! The non-negotiable "the assistant never approves its own action" is a property of these types:
//! a [`Principal`] is either a human or an assistant session, and only a human can ever be an
//! approver. Every audit row records a principal and a [`Source`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{AssistantSessionId, UserId};

/// The actor behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    /// A person, authenticated as themselves (CLI token, dashboard login, chat identity).
    Human {
        /// The user.
        user_id: UserId,
        /// Display name, for audit readers.
        name: String,
    },
    /// An assistant session (an MCP client) acting on behalf of a user. It can request actions but
    /// can never approve or reject them.
    Assistant {
        /// The session.
        session_id: AssistantSessionId,
        /// The client's self-reported name (for example `claude-code`).
        client_name: String,
        /// The human the session acts for.
        on_behalf_of: UserId,
    },
}

impl Principal {
    /// Whether this principal is a person. Approval is a human act; callers check this, and the
    /// action engine checks it again.
    pub const fn is_human(&self) -> bool {
        matches!(self, Self::Human { .. })
    }

    /// The user accountable for the request: the human, or the human the assistant acts for.
    pub fn accountable_user(&self) -> &UserId {
        match self {
            Self::Human { user_id, .. } => user_id,
            Self::Assistant { on_behalf_of, .. } => on_behalf_of,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Human { name, .. } => write!(f, "{name}"),
            Self::Assistant { client_name, .. } => write!(f, "assistant:{client_name}"),
        }
    }
}

/// The channel a request arrived through. Recorded on every audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An MCP client.
    Mcp,
    /// `mttrly-cli`.
    Cli,
    /// The web dashboard.
    Dashboard,
    /// A Telegram approval message.
    Telegram,
    /// A Slack approval message.
    Slack,
    /// The gRPC API, called by a third party.
    Api,
    /// The agent itself (events it reports, fixes it makes).
    Agent,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 7] =
        [Self::Mcp, Self::Cli, Self::Dashboard, Self::Telegram, Self::Slack, Self::Api, Self::Agent];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::Cli => "cli",
            Self::Dashboard => "dashboard",
            Self::Telegram => "telegram",
            Self::Slack => "slack",
            Self::Api => "api",
            Self::Agent => "agent",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chat service people link their account on, to be told about actions and decide them there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatProvider {
    /// Telegram, through a bot.
    Telegram,
    /// Slack, through an app.
    Slack,
}

impl ChatProvider {
    /// Every provider.
    pub const ALL: [ChatProvider; 2] = [Self::Telegram, Self::Slack];

    /// The wire name (also the source decisions through it are recorded under).
    pub const fn as_str(self) -> &'static str {
        self.source().as_str()
    }

    /// The channel decisions through this provider are recorded under.
    pub const fn source(self) -> Source {
        match self {
            Self::Telegram => Source::Telegram,
            Self::Slack => Source::Slack,
        }
    }

    /// The name people know it by.
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::Telegram => "Telegram",
            Self::Slack => "Slack",
        }
    }
}

impl fmt::Display for ChatProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChatProvider {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

/// A name that is not one of the sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source `{0}`")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|e| e.as_str() == s).ok_or_else(|| UnknownSource(s.to_owned()))
    }
}
