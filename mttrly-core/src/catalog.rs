//! The catalog of the MCP tools: one table, one row per tool.
//!
//! The MCP server, the CLI, the gRPC `ListTools` call and the docs are all generated from this
//! table. A row names the tool's wire id, whether it reads or executes, the lowest plan that
//! unlocks it, its toolset, its MCP hints, its typed input and output, and the seed's title and
//! description. The JSON Schemas come from the input and output types; nobody writes one by hand.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorCode, MttrlyError};
use crate::input::parse_input;
use crate::plan::Plan;
use crate::schema::schema_for;
pub use crate::tools::Toolset;
use crate::tools::{
    actions, commands, deploys, diagnostics, files, install, investigations, knowledge, notify, playbooks, proactive,
    servers, timeline, updates,
};

/// Whether a tool only looks, or changes something (possibly after approval). This is the seed's
/// split (21 read, 19 execute); some execute tools, such as reading the audit log, live in the
/// execute family because they belong to the action workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// A read tool.
    Read,
    /// An execute tool.
    Execute,
}

impl ToolKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Execute => "execute",
        }
    }
}

/// The MCP tool annotations. They are hints for clients; every rule is enforced server-side
/// regardless of what they say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToolHints(u8);

/// The tool does not change anything (`readOnlyHint`).
pub const READ_ONLY: ToolHints = ToolHints(1);
/// The tool may destroy or overwrite state (`destructiveHint`).
pub const DESTRUCTIVE: ToolHints = ToolHints(2);
/// Repeating the call with the same arguments has no further effect (`idempotentHint`).
pub const IDEMPOTENT: ToolHints = ToolHints(4);
/// The tool reaches beyond central, onto a live server (`openWorldHint`).
pub const OPEN_WORLD: ToolHints = ToolHints(8);
/// No hint set.
pub const NO_HINTS: ToolHints = ToolHints(0);

impl ToolHints {
    /// All of `hints` together.
    pub const fn union(hints: &[ToolHints]) -> ToolHints {
        let mut bits = 0;
        let mut i = 0;
        while i < hints.len() {
            bits |= hints[i].0;
            i += 1;
        }
        ToolHints(bits)
    }

    /// `readOnlyHint`.
    pub const fn read_only(self) -> bool {
        self.0 & READ_ONLY.0 != 0
    }
    /// `destructiveHint`.
    pub const fn destructive(self) -> bool {
        self.0 & DESTRUCTIVE.0 != 0
    }
    /// `idempotentHint`.
    pub const fn idempotent(self) -> bool {
        self.0 & IDEMPOTENT.0 != 0
    }
    /// `openWorldHint`.
    pub const fn open_world(self) -> bool {
        self.0 & OPEN_WORLD.0 != 0
    }
}

/// One row of the catalog.
#[derive(Debug)]
pub struct ToolSpec {
    /// The tool.
    pub id: ToolId,
    /// The seed's title.
    pub title: &'static str,
    /// The seed's description, shown to the model.
    pub description: &'static str,
    /// Read or execute.
    pub kind: ToolKind,
    /// The lowest plan that unlocks the tool.
    pub min_plan: Plan,
    /// The toolset it belongs to.
    pub toolset: Toolset,
    /// MCP annotations.
    pub hints: ToolHints,
    input_schema: fn() -> Value,
    output_schema: fn() -> Value,
    check_arguments: fn(Value) -> Result<(), MttrlyError>,
}

impl ToolSpec {
    /// The JSON Schema of the tool's arguments (always `"type": "object"`).
    pub fn input_schema(&self) -> Value {
        (self.input_schema)()
    }

    /// The JSON Schema of the tool's structured result (always `"type": "object"`).
    pub fn output_schema(&self) -> Value {
        (self.output_schema)()
    }

    /// Validates call arguments against the tool's typed input without knowing the type
    /// statically (`VALIDATION_ERROR` naming the failing field).
    pub fn check_arguments(&self, arguments: Value) -> Result<(), MttrlyError> {
        (self.check_arguments)(arguments)
    }
}

fn check<T: DeserializeOwned>(arguments: Value) -> Result<(), MttrlyError> {
    parse_input::<T>(arguments).map(drop)
}

/// Ties a tool's typed input to its id and output, so a handler written as
/// `fn(I) -> I::Output` cannot answer with the wrong shape.
pub trait ToolInput: DeserializeOwned + Serialize + schemars::JsonSchema {
    /// The tool this input belongs to.
    const TOOL: ToolId;
    /// The tool's structured result.
    type Output: Serialize + DeserializeOwned + schemars::JsonSchema;
}

macro_rules! catalog {
    ($(
        $variant:ident => $id:literal, $kind:ident, $plan:ident, $toolset:ident, $($hint:ident)|+,
            $input:ty => $output:ty,
            $title:literal,
            $description:literal;
    )+) => {
        /// A tool of the catalog. Serialised as its wire id (`mttrly_list_servers`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum ToolId {
            $(#[doc = $title] #[serde(rename = $id)] $variant,)+
        }

        static SPECS: &[ToolSpec] = &[$(
            ToolSpec {
                id: ToolId::$variant,
                title: $title,
                description: $description,
                kind: ToolKind::$kind,
                min_plan: Plan::$plan,
                toolset: Toolset::$toolset,
                hints: ToolHints::union(&[$($hint),+]),
                input_schema: schema_for::<$input>,
                output_schema: schema_for::<$output>,
                check_arguments: check::<$input>,
            },
        )+];

        impl ToolId {
            /// Every tool, in catalog order.
            pub const ALL: &'static [ToolId] = &[$(ToolId::$variant,)+];

            /// The wire id, exactly as the seed spells it.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $id,)+ }
            }
        }

        $(
            impl ToolInput for $input {
                const TOOL: ToolId = ToolId::$variant;
                type Output = $output;
            }
        )+
    };
}

impl ToolId {
    /// The tool's catalog row.
    pub fn spec(self) -> &'static ToolSpec {
        // SPECS is declared in the same order as the enum, which a test checks.
        &SPECS[self as usize]
    }
}

/// Every row of the catalog, in order.
pub fn specs() -> &'static [ToolSpec] {
    SPECS
}

impl fmt::Display for ToolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ToolId {
    type Err = MttrlyError;

    /// Parses a wire id; an unknown id is `NOT_FOUND` with the closest known id as a hint.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(tool) = Self::ALL.iter().copied().find(|t| t.as_str() == s) {
            return Ok(tool);
        }
        let closest = Self::ALL
            .iter()
            .map(|t| (strsim::levenshtein(t.as_str(), s), t.as_str()))
            .min()
            .filter(|(distance, _)| *distance <= 6)
            .map(|(_, id)| id);
        let mut message = format!("unknown tool id `{s}`");
        if let Some(id) = closest {
            message = format!("{message} (did you mean `{id}`?)");
        }
        let mut err = MttrlyError::new(ErrorCode::NotFound, message).with_detail("tool_id", s);
        if let Some(id) = closest {
            err = err.with_detail("did_you_mean", id);
        }
        Err(err)
    }
}

catalog! {
    // ---- Read tools (21) ----
    GetCapabilities => "mttrly_get_capabilities", Read, Watchdog, Servers, READ_ONLY | IDEMPOTENT,
        servers::GetCapabilitiesInput => servers::Capabilities,
        "Get Plan Capabilities",
        "Get current plan, available tools, restricted tools, and plan limits. Call this first before using any other tool.";
    ListServers => "mttrly_list_servers", Read, Watchdog, Servers, READ_ONLY | IDEMPOTENT,
        servers::ListServersInput => servers::ServerList,
        "List Servers",
        "List all connected servers with online/offline status, server IDs, names, last seen, and agent version. Use mttrly_get_server_status for per-server CPU, RAM, disk, and active alert counts.";
    GetServerStatus => "mttrly_get_server_status", Read, Watchdog, Servers, READ_ONLY | IDEMPOTENT,
        servers::GetServerStatusInput => servers::ServerStatus,
        "Get Server Status",
        "Get detailed server health including CPU, RAM, disk usage, and active alert count.";
    GetAlerts => "mttrly_get_alerts", Read, Watchdog, Servers, READ_ONLY | IDEMPOTENT,
        servers::GetAlertsInput => servers::AlertList,
        "Get Server Alerts",
        "Get alerts for a server with severity and status filtering. Plan-based retention limits apply.";
    QuickTriage => "mttrly_quick_triage", Read, Watchdog, Servers, READ_ONLY | IDEMPOTENT,
        servers::QuickTriageInput => servers::TriageSummary,
        "Quick Server Triage",
        "Get a shallow read-only diagnostic summary from safe Watchdog data: status, active alerts, and resource percentages.";
    RunDiagnostic => "mttrly_run_diagnostic", Read, DeploymentBro, Diagnostics, READ_ONLY | OPEN_WORLD,
        diagnostics::RunDiagnosticInput => diagnostics::DiagnosticReport,
        "Run Server Diagnostic",
        "Run a non-destructive diagnostic on a server. Describe the problem and the system will investigate. 30-second cooldown per server. Deployment Bro+ only — Watchdog has read-only inspect tools (status, alerts, list_playbooks).";
    ListPlaybooks => "mttrly_list_playbooks", Read, Watchdog, Playbooks, READ_ONLY | IDEMPOTENT,
        playbooks::ListPlaybooksInput => playbooks::PlaybookList,
        "List Playbooks",
        "List available remediation playbooks. Returns id, name, description, category, requires_approval flag, and optional parameters array. Filter by server_id or category.";
    GetServiceReality => "mttrly_get_service_reality", Read, DeploymentBro, Diagnostics, READ_ONLY | OPEN_WORLD,
        diagnostics::GetServiceRealityInput => diagnostics::ServiceReality,
        "Get Service Reality",
        "Get the latest cached or live-refreshed service reality snapshot for a server, including discovery findings, services, runtimes, and current health context.";
    RefreshReality => "mttrly_refresh_reality", Read, DeploymentBro, Diagnostics, READ_ONLY | OPEN_WORLD,
        diagnostics::RefreshRealityInput => diagnostics::ServiceReality,
        "Refresh Reality",
        "Run a live service reality refresh for a server and wait for the fresh snapshot, with a hard per-server cooldown window.";
    GetServerTimeline => "mttrly_get_server_timeline", Read, DeploymentBro, Investigations, READ_ONLY | IDEMPOTENT,
        timeline::GetServerTimelineInput => timeline::ServerTimeline,
        "Get Server Timeline",
        "Get a unified recent timeline for a server that merges incidents, deploys, and audit events into one ordered stream.";
    RunDeployVerifier => "mttrly_run_deploy_verifier", Read, DeploymentBro, Investigations, READ_ONLY | OPEN_WORLD,
        deploys::RunDeployVerifierInput => deploys::DeployVerification,
        "Run Deploy Verifier",
        "Run the generic deploy verifier for a server. Returns healthcheck outcome, active incident context, and latest deploy status.";
    ReadFile => "mttrly_read_file", Read, DeploymentBro, Files, READ_ONLY | IDEMPOTENT | OPEN_WORLD,
        files::ReadFileInput => files::FileContent,
        "Read File",
        "Read allowlisted logs, Docker logs, Docker images, or managed env files from a server with shared redaction.";
    ReadPrivilegedFile => "mttrly_read_privileged_file", Read, DeploymentBro, Files, READ_ONLY | IDEMPOTENT | OPEN_WORLD,
        files::ReadPrivilegedFileInput => files::FileContent,
        "Read Privileged File",
        "Read an extended-allowlist privileged file, such as sudoers overrides or root authorized_keys, with shared redaction.";
    SearchFiles => "mttrly_search_files", Read, DeploymentBro, Files, READ_ONLY | IDEMPOTENT | OPEN_WORLD,
        files::SearchFilesInput => files::SearchResults,
        "Search Files",
        "Search allowlisted files on a server for a literal query string, with optional glob filtering and shared redaction.";
    DiffFile => "mttrly_diff_file", Read, DeploymentBro, Files, READ_ONLY | IDEMPOTENT | OPEN_WORLD,
        files::DiffFileInput => files::FileDiff,
        "Diff Files",
        "Diff two allowlisted files on a server and return a unified diff with shared redaction.";
    CompareSourceToDist => "mttrly_compare_source_to_dist", Read, DeploymentBro, Files, READ_ONLY | IDEMPOTENT | OPEN_WORLD,
        files::CompareSourceToDistInput => files::TreeComparison,
        "Compare Source To Dist",
        "Compare a source tree with its build output on a server (both allowlisted directories), read-only and bounded: \
         when a deploy may have shipped a stale or partial build. Returns a verdict (up_to_date, stale_build, differs, \
         incomplete), counts per status, the newest mtime on each side, and the first differing paths with sizes, \
         SHA-256 and rpm -V-style flags; partial with the cap that stopped it.";
    GetInstallHealth => "mttrly_get_install_health", Read, DeploymentBro, Install, READ_ONLY | IDEMPOTENT | OPEN_WORLD,
        install::GetInstallHealthInput => install::InstallHealth,
        "Get Install Health",
        "Compare a server's agent install with its root-owned install receipt: binary version and hash, unit files, service state and restarts, state-dir and credential modes and owners, policy validity, plus central's view (connection, last heartbeat, clock skew). Returns findings (expected, actual, ok|drift|missing, severity, the strategies that repair each) and one repair plan per strategy with its plan_hash for mttrly_repair_install.";
    SearchKnowledge => "mttrly_search_knowledge", Read, DeploymentBro, Knowledge, READ_ONLY | IDEMPOTENT,
        knowledge::SearchKnowledgeInput => knowledge::KnowledgeResults,
        "Search Knowledge",
        "Search saved postmortems, recipes, and notes using full-text search. Optionally filter to a server.";
    GetMorningBrief => "mttrly_get_morning_brief", Read, DeploymentBro, Knowledge, READ_ONLY | IDEMPOTENT,
        proactive::GetMorningBriefInput => proactive::MorningBrief,
        "Get Morning Brief",
        "Get what is new since `since` (the previous brief's `next_since`; the last 24 hours without it): anomalies the agents' detectors raised (one line per server and metric), muted detectors with why and until when, open alerts, actions waiting or failed, deploys and new knowledge. Reading changes nothing; when `more` is true, call again with `since` set to `next_since` for the rest.";
    GetInvestigationBypass => "mttrly_get_investigation_bypass", Read, DeploymentBro, Investigations, READ_ONLY | IDEMPOTENT,
        investigations::GetInvestigationBypassInput => investigations::BypassState,
        "Get Investigation Bypass",
        "Read the current bypass state for an investigation. Use between exec calls to verify the bypass is still active without consuming an action slot.";
    AcknowledgeProactiveEvent => "mttrly_acknowledge_proactive_event", Read, DeploymentBro, Knowledge, IDEMPOTENT,
        proactive::AcknowledgeProactiveEventInput => proactive::ProactiveEventAck,
        "Acknowledge Proactive Event",
        "Suggest that a proactive event is real (accepted) or a false positive. From an assistant this is recorded as its suggestion, shown to people, and never mutes anything; a person's own verdict (their token, no assistant in between) counts once in the detector's false-positive budget: three in a row, or more than half of five or more recent verdicts, mute that detector for the server and metric for a day, doubling each time up to 30 days; muted events are still stored and shown in the brief.";

    // ---- Execute tools (19) ----
    RunPlaybook => "mttrly_run_playbook", Execute, DeploymentBro, Playbooks, DESTRUCTIVE | OPEN_WORLD,
        playbooks::RunPlaybookInput => actions::ActionSubmission,
        "Run Playbook",
        "Execute a playbook on a server. Read-only playbooks run immediately; approval-required playbooks return pending_approval.";
    ExecuteCommand => "mttrly_execute_command", Execute, DeploymentBro, Commands, DESTRUCTIVE | OPEN_WORLD,
        commands::ExecuteCommandInput => actions::ActionSubmission,
        "Execute Shell Command",
        "Request execution of an arbitrary shell command on a server. Read-only commands and active investigation bypasses can execute immediately; otherwise returns pending_approval.";
    GetPendingActions => "mttrly_get_pending_actions", Execute, DeploymentBro, Actions, READ_ONLY | IDEMPOTENT,
        actions::GetPendingActionsInput => actions::PendingActionList,
        "Get Pending Actions",
        "List actions awaiting approval, created by mttrly_run_playbook or mttrly_execute_command. Returns action_id, server, type, description, and expiry. Actions expire after 30 minutes. Use mttrly_approve_action to approve or mttrly_cancel_action to reject.";
    GetActionResult => "mttrly_get_action_result", Execute, DeploymentBro, Actions, READ_ONLY | IDEMPOTENT,
        actions::GetActionResultInput => actions::ActionView,
        "Get Action Result",
        "Retrieve the current or terminal result for an action created by mttrly_run_playbook or mttrly_execute_command.";
    ApproveAction => "mttrly_approve_action", Execute, DeploymentBro, Actions, DESTRUCTIVE | OPEN_WORLD,
        actions::ApproveActionInput => actions::ActionView,
        "Approve or Reject Action",
        "Approve or reject a pending action. Only call after explicit user confirmation; blocks until execution completes.";
    CancelAction => "mttrly_cancel_action", Execute, DeploymentBro, Actions, IDEMPOTENT,
        actions::CancelActionInput => actions::ActionView,
        "Cancel Action",
        "Cancel a pending action by rejecting it. Only call after explicit user confirmation.";
    GetAuditLog => "mttrly_get_audit_log", Execute, DeploymentBro, Actions, READ_ONLY | IDEMPOTENT,
        actions::GetAuditLogInput => actions::AuditLogPage,
        "Get Audit Log",
        "Get the chronological audit trail for a server. Includes command executions, playbook runs, alert triggers, and agent fixes with source attribution (mcp/telegram/dashboard/api) and outcome.";
    WriteFile => "mttrly_write_file", Execute, DeploymentBro, Files, DESTRUCTIVE | OPEN_WORLD,
        files::WriteFileInput => actions::ActionSubmission,
        "Write File",
        "Write base64-encoded content to a managed server file. Always returns a pending approval action.";
    CleanupFile => "mttrly_cleanup_file", Execute, DeploymentBro, Files, DESTRUCTIVE | OPEN_WORLD,
        files::CleanupFileInput => actions::ActionSubmission,
        "Cleanup File",
        "Delete an allowlisted managed server file. Always returns a pending approval action.";
    ExecuteScript => "mttrly_execute_script", Execute, DeploymentBro, Commands, DESTRUCTIVE | OPEN_WORLD,
        commands::ExecuteScriptInput => actions::ActionSubmission,
        "Execute Script",
        "Execute an allowlisted managed script or an inline batch script on a server through the canonical script capability. Active investigation bypasses can execute immediately; otherwise returns pending_approval.";
    BootstrapRecover => "mttrly_bootstrap_recover", Execute, DeploymentBro, Install, DESTRUCTIVE,
        install::BootstrapRecoverInput => actions::ActionSubmission,
        "Bootstrap Recover",
        "Re-install a gone or broken agent while keeping the server's id and history. Always returns a pending approval action; on approval central rotates the agent's credentials and shows the approver, once, a one-liner with a fresh single-use install token, the pinned binary SHA-256 and central's CA. Never send an install token: you never choose or see one.";
    RepairInstall => "mttrly_repair_install", Execute, DeploymentBro, Install, DESTRUCTIVE | OPEN_WORLD,
        install::RepairInstallInput => actions::ActionSubmission,
        "Repair Install",
        "Repair a server's agent install with one strategy: issue (the findings named), converge (everything back to the receipt, then restart), reprovision (rewrite units and the repair binary), uninstall. Always returns a pending approval action listing every change and the plan hash; the host performs it only if its own recomputed plan still has that hash, and the result lists what changed. Read mttrly_get_install_health first.";
    RegenerateInstallToken => "mttrly_regenerate_install_token", Execute, Watchdog, Servers, DESTRUCTIVE,
        servers::RegenerateInstallTokenInput => actions::ActionSubmission,
        "Regenerate Install Token",
        "Generate a new reinstall command for an existing offline server. Requires approval, rotates agent credentials, preserves server history, and does not clean the host.";
    DecommissionServer => "mttrly_decommission_server", Execute, Watchdog, Servers, DESTRUCTIVE,
        servers::DecommissionServerInput => actions::ActionSubmission,
        "Delete Offline Server",
        "Remove an offline/dead server from the Central registry only. Requires approval and does not clean files, users, or systemd on the host.";
    UpdateAgent => "mttrly_update_agent", Execute, DeploymentBro, Install, DESTRUCTIVE | OPEN_WORLD,
        updates::UpdateAgentInput => actions::ActionSubmission,
        "Update Agent",
        "Update the mttrly agent on a server through the canonical core update capability. Always returns a pending approval action.";
    StartInvestigation => "mttrly_start_investigation", Execute, DeploymentBro, Investigations, IDEMPOTENT,
        investigations::StartInvestigationInput => investigations::Investigation,
        "Start Investigation",
        "Start or resume a server investigation bound to you, your client and the server (a server-minted handle, not an MCP session; resumed when you already have one open there). Pass its investigation_id to execute_command/execute_script and the bypass tools. Short-lived: it closes after a short idle time. A new one is posted to the team's incident channel (opening an incident thread when the server has none open), your title shown as your words.";
    GenerateRetrospective => "mttrly_generate_retrospective", Execute, DeploymentBro, Investigations, NO_HINTS,
        timeline::GenerateRetrospectiveInput => timeline::Retrospective,
        "Generate Retrospective",
        "Generate a deterministic retrospective from the current server timeline, verifier state, and stored knowledge. Persists a postmortem entry. Give server_id (its latest investigation or incident, or investigation_id), or thread_id to write up an incident thread: from its first notification to its resolution (or now), on every server its notifications name (each record labelled with its server; server_id narrows it to one of them), with its posts on the timeline attributed to their senders as their words.";
    AcquireInvestigationBypass => "mttrly_acquire_investigation_bypass", Execute, DeploymentBro, Investigations, NO_HINTS,
        investigations::AcquireInvestigationBypassInput => investigations::BypassState,
        "Acquire Investigation Bypass",
        "Request an approval bypass on an open investigation: which of execute_command/execute_script, optional argv prefixes, minutes and max actions. Requires 2FA: a human grants it with a fresh TOTP code outside this conversation (the answer names the command and page; never ask anyone for a code). Once active, execute_command/execute_script calls with the investigation_id on its server that it covers skip per-command approval until expiry, max actions, or revoke.";
    RevokeInvestigationBypass => "mttrly_revoke_investigation_bypass", Execute, DeploymentBro, Investigations, IDEMPOTENT,
        investigations::RevokeInvestigationBypassInput => investigations::BypassState,
        "Revoke Investigation Bypass",
        "Immediately revoke an active investigation bypass. Subsequent exec returns to per-command approval. Idempotent: revoking an already-revoked bypass returns the current state instead of erroring.";

    // ---- The war room (issue 17; beyond the seed's 40, in the `notify` toolset) ----
    PublishNotification => "mttrly_publish_notification", Execute, DeploymentBro, Notify, NO_HINTS,
        notify::PublishNotificationInput => notify::Notification,
        "Publish Notification",
        "Post a notification to a team channel: title, markdown body, priority (critical|high|medium|low), theme (incident-alert, incident-update, incident-decision, incident-resolved, incident-postmortem, incident-escalation, security-incident, or your own), tags, thread_id (keep an incident's updates in one thread) and in_reply_to. The sender is you and your assistant, taken from your credentials: there is no sender argument. Title and body are the sender's own words, shown as such; secrets are redacted before it is stored.";
    ListChannels => "mttrly_list_channels", Read, DeploymentBro, Notify, READ_ONLY | IDEMPOTENT,
        notify::ListChannelsInput => notify::ChannelList,
        "List Channels",
        "List the account's notification channels with their description, notification count and latest post.";
    CreateChannel => "mttrly_create_channel", Execute, DeploymentBro, Notify, IDEMPOTENT,
        notify::CreateChannelInput => notify::ChannelCreated,
        "Create Channel",
        "Create a notification channel (lowercase name, description), for example `incidents`. Creating one that exists changes nothing and returns it.";
    GetThread => "mttrly_get_thread", Read, DeploymentBro, Notify, READ_ONLY | IDEMPOTENT,
        notify::GetThreadInput => notify::Thread,
        "Get Thread",
        "Get every notification of a thread, root first, in order, each with its sender (person, role and assistant).";
    GetNotifications => "mttrly_get_notifications", Read, DeploymentBro, Notify, READ_ONLY | IDEMPOTENT,
        notify::GetNotificationsInput => notify::NotificationPage,
        "Get Notifications",
        "Read a channel, oldest first: pass `since` (a previous answer's next_cursor) to get only what is new; filter by priority (one or a list), theme and tag.";
    SubscribeChannel => "mttrly_subscribe_channel", Execute, DeploymentBro, Notify, IDEMPOTENT,
        notify::SubscribeChannelInput => notify::Subscribed,
        "Subscribe Channel",
        "Subscribe yourself (the human behind this assistant) to a channel, optionally only some priorities (for example [\"critical\", \"high\"]), a theme or a tag. Matching notifications are pushed to your linked Telegram or Slack, and to MCP clients subscribed to the channel's resource (notification://{channel}/recent). Subscribing again replaces the filters.";
    UnsubscribeChannel => "mttrly_unsubscribe_channel", Execute, DeploymentBro, Notify, IDEMPOTENT,
        notify::UnsubscribeChannelInput => notify::Unsubscribed,
        "Unsubscribe Channel",
        "Stop pushes from a channel to you. Idempotent: unsubscribing when not subscribed changes nothing.";
    GetIncidentSummary => "mttrly_get_incident_summary", Read, DeploymentBro, Notify, READ_ONLY | IDEMPOTENT,
        notify::GetIncidentSummaryInput => notify::IncidentSummary,
        "Get Incident Summary",
        "Summarise one incident thread: status (open, acknowledged, resolved), owner, reporter, the moments (opened, acknowledged, resolved) with time to acknowledge and resolve, duration, the timeline, the decisions and the participants with their assistants. What a late engineer asks for.";
    GetIncidentStats => "mttrly_get_incident_stats", Read, DeploymentBro, Notify, READ_ONLY | IDEMPOTENT,
        notify::GetIncidentStatsInput => notify::IncidentStats,
        "Get Incident Stats",
        "Incident statistics over a period (default the last 30 days): incidents opened (threads started by incident-alert or security-incident) by priority, resolved, MTTA and MTTR with every incident's moments, fastest and slowest resolution, and the most common causes by tag.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_tools_twenty_one_read_nineteen_execute() {
        // The one place the seed's counts are written down: everything else derives from the table.
        // The war room's tools (issue 17) come on top, in their own toolset.
        let seed: Vec<_> = specs().iter().filter(|s| s.toolset != Toolset::Notify).collect();
        assert_eq!(seed.len(), 40);
        assert_eq!(specs().len(), ToolId::ALL.len());
        assert_eq!(ToolId::ALL.len(), 40 + 9);
        let read = seed.iter().filter(|s| s.kind == ToolKind::Read).count();
        assert_eq!((read, seed.len() - read), (21, 19));
    }

    #[test]
    fn spec_rows_line_up_with_the_enum() {
        for (i, tool) in ToolId::ALL.iter().enumerate() {
            assert_eq!(tool.spec().id, *tool);
            assert_eq!(specs()[i].id, *tool);
            assert_eq!(tool.as_str().parse::<ToolId>().ok(), Some(*tool));
            assert_eq!(serde_json::to_value(tool).ok(), Some(Value::String(tool.as_str().to_owned())));
            assert!(tool.as_str().starts_with("mttrly_"));
        }
    }

    #[test]
    fn unknown_ids_are_not_found_with_a_hint() {
        let err = "mttrly_list_server".parse::<ToolId>().unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert_eq!(err.details()["did_you_mean"], "mttrly_list_servers");
        let err = "rm -rf /".parse::<ToolId>().unwrap_err();
        assert!(err.details().get("did_you_mean").is_none());
    }

    #[test]
    fn read_only_hint_never_claims_destructive() {
        for spec in specs() {
            assert!(!(spec.hints.read_only() && spec.hints.destructive()), "{}", spec.id);
        }
    }
}
