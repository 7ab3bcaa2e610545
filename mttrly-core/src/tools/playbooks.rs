//! Remediation playbooks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::checked_name;
use crate::ids::ServerId;

/// Checks a slug: a lowercase letter or digit, then up to 63 of `[a-z0-9_.-]`.
fn is_slug(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
}

const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9_.-]{0,63}$";

macro_rules! slug {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        checked_name!(
            $(#[$doc])* $name, $what,
            valid is_slug,
            rule "use 1 to 64 of a-z, 0-9, `_`, `.`, `-`, starting with a letter or digit",
            pattern SLUG_PATTERN
        );
    };
}

slug!(
    /// A playbook's id, for example `restart-systemd-unit`.
    PlaybookId, "playbook id"
);
slug!(
    /// A playbook parameter's name, for example `unit`.
    ParamName, "parameter name"
);

/// What a playbook is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookCategory {
    /// systemd services.
    Services,
    /// Web servers and proxies.
    Web,
    /// Disk space.
    Disk,
    /// Docker containers and images.
    Docker,
    /// Package caches and updates.
    Packages,
    /// Log files and the journal.
    Logs,
    /// Application releases and rollbacks.
    Releases,
    /// The operating system.
    System,
}

/// The type of a playbook parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// Text (checked against the parameter's pattern, if any).
    String,
    /// A whole number.
    Integer,
    /// True or false.
    Boolean,
    /// One of `allowed_values`.
    Enum,
}

/// A value passed to a playbook parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    /// true or false.
    Boolean(bool),
    /// A whole number.
    Integer(i64),
    /// Text (at most 1024 characters once the playbook validates it).
    String(String),
}

/// A parameter a playbook accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlaybookParameter {
    /// The parameter's name.
    pub name: ParamName,
    /// What it means.
    pub description: String,
    /// Its type.
    pub kind: ParamKind,
    /// Whether it must be given.
    pub required: bool,
    /// The value used when it is not given.
    pub default: Option<ParamValue>,
    /// The accepted values, for `enum` parameters.
    pub allowed_values: Vec<String>,
    /// A regular expression string values must match, if any.
    pub pattern: Option<String>,
}

/// A playbook as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlaybookSummary {
    /// The playbook's id.
    pub playbook_id: PlaybookId,
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What it is for.
    pub category: PlaybookCategory,
    /// Whether running it needs a human's approval (anything that changes the server does).
    pub requires_approval: bool,
    /// The parameters it accepts.
    pub parameters: Vec<PlaybookParameter>,
}

/// Arguments of `mttrly_list_playbooks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListPlaybooksInput {
    /// Only playbooks available on this server (its agent's capabilities and local policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// Only playbooks of this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<PlaybookCategory>,
}

/// The playbooks that match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlaybookList {
    /// The playbooks, by category then id.
    pub playbooks: Vec<PlaybookSummary>,
}

/// Arguments of `mttrly_run_playbook`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunPlaybookInput {
    /// The server to run on.
    pub server_id: ServerId,
    /// The playbook, from `mttrly_list_playbooks`.
    pub playbook_id: PlaybookId,
    /// Values for the playbook's parameters, by name; each is checked against the playbook's
    /// definition.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<ParamName, ParamValue>,
    /// Why it is needed, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}
