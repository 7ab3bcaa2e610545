//! Shell commands and scripts.

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::{BoundedVec, bounded_int, bounded_text};
use crate::ids::{InvestigationId, ServerId};

bounded_text!(
    /// A shell command line (1 to 4096 characters).
    CommandLine, min 1, max 4096
);

bounded_int!(
    /// How long the command may run before it is killed, in seconds (1 to 300, default 30).
    TimeoutSeconds: u32, min 1, max 300, default 30
);

/// Arguments of `mttrly_execute_command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteCommandInput {
    /// The server to run on.
    pub server_id: ServerId,
    /// The command. Read-only commands (as the classifier understands them) run at once without a
    /// shell; anything else becomes a pending action for a human to approve.
    pub command: CommandLine,
    /// How long it may run, in seconds.
    #[serde(default)]
    pub timeout_seconds: TimeoutSeconds,
    /// Why it is needed, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Your investigation of this server (`mttrly_start_investigation`), if any: the action is
    /// linked to it, and runs at once when its bypass is active and covers the call (otherwise
    /// it waits for approval as usual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investigation_id: Option<InvestigationId>,
}

bounded_text!(
    /// The name of a script from the server's managed-scripts allowlist (1 to 128 characters).
    ScriptName, min 1, max 128
);

bounded_text!(
    /// An inline batch script (1 to 65536 characters). Always needs approval.
    InlineScript, min 1, max 65536
);

bounded_text!(
    /// One argument passed to the script (0 to 1024 characters).
    ScriptArg, min 0, max 1024
);

/// Which script to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScriptSource {
    /// A script from the server's managed-scripts allowlist.
    Managed {
        /// The script's name.
        name: ScriptName,
    },
    /// A script written in the request. Always needs approval.
    Inline {
        /// The script body, run by `/bin/sh`.
        content: InlineScript,
    },
}

/// Arguments of `mttrly_execute_script`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteScriptInput {
    /// The server to run on.
    pub server_id: ServerId,
    /// A managed script by name, or an inline script.
    pub script: ScriptSource,
    /// Arguments passed to the script, as separate argv entries (at most 32).
    #[serde(default, skip_serializing_if = "BoundedVec::is_empty")]
    pub args: BoundedVec<ScriptArg, 32>,
    /// How long it may run, in seconds.
    #[serde(default)]
    pub timeout_seconds: TimeoutSeconds,
    /// Why it is needed, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Your investigation of this server (`mttrly_start_investigation`), if any: the action is
    /// linked to it, and runs at once when its bypass is active and covers the call (otherwise
    /// it waits for approval as usual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investigation_id: Option<InvestigationId>,
}
