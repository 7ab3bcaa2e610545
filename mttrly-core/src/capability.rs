//! The central ↔ agent contract: one table of what an agent can be asked to do.
//!
//! Each row binds a capability's wire name to the type of its parameters and the type of its
//! answer, the way [`crate::catalog`] binds a tool's input to its output. Central asks through one
//! typed function (`agents.ask::<FileRead>(server, params, deadline)`), the agent dispatches on
//! [`CapabilityId`] with [`dispatch`], and both ends (the real agent and the simulated one in the
//! tests) implement the same [`Handler`] signature. So a capability name is never a string literal
//! outside this table, and a parameter or answer shape is never written twice.
//!
//! Capabilities travel as strings (`TaskRequest.capability`, `Hello.capabilities`); they are
//! parsed here at the boundary. An agent announces the ones it offers in its hello and central
//! refuses to dispatch any other ([`CapabilitySet`]).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::ActionContent;
use crate::classifier::Classification;
use crate::diagnose::Evidence;
use crate::error::{ErrorCode, MttrlyError};
use crate::ids::ServerId;
use crate::playbook::Rendered;
use crate::tools::common::{HostMetrics, ServerPath};
use crate::tools::deploys::{DeployProbe, DeployProbeParams};
use crate::tools::diagnostics::ProbeKind;
use crate::tools::files::{
    CompareParams, FileContent, FileDiff, PathGlob, ReadTarget, RedactionCount, SearchMatch, SearchQuery,
    SearchResults, TreeReport,
};
use crate::tools::playbooks::{ParamName, ParamValue, PlaybookId, PlaybookSummary};
use crate::tools::updates::{UpdateReport, UpdateStaged, UpdateStatusParams};

/// A capability: its id, what it takes, what it answers, and whether central redacts the answer
/// a second time (every answer that carries text read on the host does).
pub trait Capability: Send + Sync + 'static {
    /// Its row in the table.
    const ID: CapabilityId;
    /// Whether central runs its second redaction pass over the answer.
    const REDACT: bool;
    /// What central sends.
    type Params: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What the agent answers.
    type Answer: Serialize + DeserializeOwned + Send + 'static;
}

macro_rules! capabilities {
    ($(
        $(#[$doc:meta])*
        $name:ident => $wire:literal, params: $params:ty, answer: $answer:ty, redact: $redact:literal;
    )+) => {
        /// Every agent capability, generated from the table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CapabilityId {
            $( $(#[$doc])* $name, )+
        }

        impl CapabilityId {
            /// Every capability, in table order.
            pub const ALL: &'static [CapabilityId] = &[$( Self::$name, )+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$name => $wire, )+
                }
            }

            /// Whether central redacts this capability's answer a second time.
            pub const fn redacts(self) -> bool {
                match self {
                    $( Self::$name => $redact, )+
                }
            }

            /// Checks an answer's bytes against the row's answer type and returns it as JSON:
            /// for callers that only know the capability at run time (the action engine).
            ///
            /// # Errors
            /// `INTERNAL_ERROR` naming the capability when the bytes are not its answer.
            pub fn decode_answer(self, bytes: &[u8]) -> Result<Value, MttrlyError> {
                match self {
                    $( Self::$name => decode_as::<$name>(bytes).and_then(|a| encode_value(self, &a)), )+
                }
            }
        }

        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub struct $name;

            impl Capability for $name {
                const ID: CapabilityId = CapabilityId::$name;
                const REDACT: bool = $redact;
                type Params = $params;
                type Answer = $answer;
            }
        )+

        /// Runs the handler for `id` on `params` (the wire bytes): parses them as the row's
        /// parameter type (a mismatch is `VALIDATION_ERROR` naming the capability) and encodes the
        /// typed answer. The agent and the simulated agent both answer tasks through this.
        pub async fn dispatch<H, T>(handler: &H, task: &T, id: CapabilityId, params: &[u8]) -> Outcome<Vec<u8>>
        where
            T: ?Sized + Sync,
            H: Sync $( + Handler<$name, T> )+,
        {
            match id {
                $( CapabilityId::$name => run::<$name, H, T>(handler, task, params).await, )+
            }
        }
    };
}

capabilities! {
    /// Fresh host metrics, on demand.
    HostSample => "host.metrics", params: NoParams, answer: HostMetrics, redact: false;
    /// Run a command (an action: read-only ones run at once, others after a human's approval).
    CommandRun => "command.run", params: ActionContent, answer: ProcessRun, redact: false;
    /// The agent's final verdict on a command (its files checked on the host), without running it.
    CommandClassify => "command.classify", params: ClassifyParams, answer: Classification, redact: false;
    /// Run a managed or inline script (an approved action).
    ScriptRun => "script.run", params: ActionContent, answer: ProcessRun, redact: false;
    /// Tail a file, a managed env file, Docker logs, or list Docker images.
    FileRead => "file.read", params: FileReadParams, answer: FileTail, redact: true;
    /// Tail a file from the privileged allowlist.
    FileReadPrivileged => "file.read_privileged", params: PrivilegedReadParams, answer: FileTail, redact: true;
    /// Literal search over allowlisted files.
    FileSearch => "file.search", params: FileSearchParams, answer: FileMatches, redact: true;
    /// Unified diff of two allowlisted files.
    FileDiffRun => "file.diff", params: FileDiffParams, answer: FileDiffText, redact: true;
    /// Write a managed file (an approved action; the previous content is kept as a backup).
    FileWrite => "file.write", params: ActionContent, answer: FileWritten, redact: false;
    /// Delete a managed file (an approved action).
    FileCleanup => "file.cleanup", params: ActionContent, answer: FileRemoved, redact: false;
    /// The playbook catalog with each playbook's availability on the host.
    PlaybookList => "playbook.list", params: NoParams, answer: PlaybookOffers, redact: false;
    /// Validate and render a playbook run without running it.
    PlaybookPlan => "playbook.plan", params: PlaybookPlanParams, answer: PlaybookPlanned, redact: false;
    /// Run a playbook (an action).
    PlaybookRun => "playbook.run", params: ActionContent, answer: PlaybookRan, redact: false;
    /// Run diagnostic probes and return the evidence.
    DiagnosticRun => "diagnostic.run", params: DiagnosticParams, answer: Evidence, redact: true;
    /// Discover services, ports and runtimes and return the evidence.
    RealityDiscover => "reality.discover", params: NoParams, answer: Evidence, redact: true;
    /// The current content of the managed file a pending write would replace (read-only, under
    /// the write's own path rules), redacted on the host: the approver's diff.
    FileCurrent => "file.current", params: FileCurrentParams, answer: FileCurrentText, redact: true;
    /// The deploy verifier's host-side checks for one service of the owner's `[deploys.SERVICE]`
    /// policy: the configured healthcheck's samples, error lines in its log since the deploy, its
    /// unit's state (read-only; only URLs the policy lists are probed).
    DeployVerify => "deploy.verify", params: DeployProbeParams, answer: DeployProbe, redact: true;
    /// Verify a signed release against the agent's own roots, fetch and stage its binary, then
    /// restart into it under a health gate (an approved `agent_update` action).
    AgentUpdate => "agent.update", params: ActionContent, answer: UpdateStaged, redact: false;
    /// Where an update action stands on the agent: in progress, committed or rolled back.
    AgentUpdateStatus => "agent.update_status", params: UpdateStatusParams, answer: UpdateReport, redact: false;
    /// A bounded, read-only comparison of a source tree with its build output (both under the
    /// owner's file allowlist; symlinks compared by target, never followed; nothing read leaves
    /// but sizes, hashes, mtimes and names).
    FilesCompare => "files.compare", params: CompareParams, answer: TreeReport, redact: true;
    /// The installation compared with its root-owned receipt: findings and a plan (with its
    /// hash) per repair strategy (read-only).
    InstallHealth => "install.health", params: crate::tools::install::InstallHealthParams, answer: crate::tools::install::InstallReport, redact: false;
    /// Hand an approved repair plan to the host's root oneshot and report what it changed (an
    /// approved `install_repair` action; refused when the host's plan hash differs).
    InstallRepair => "install.repair", params: ActionContent, answer: crate::tools::install::RepairOutcome, redact: false;
}

impl fmt::Display for CapabilityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CapabilityId {
    /// The row with wire name `name`, without building an error (hellos carry many names).
    pub fn lookup(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }
}

impl FromStr for CapabilityId {
    type Err = MttrlyError;

    /// Parses a wire name; an unknown one is `NOT_FOUND` naming it (a newer peer's capability).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::lookup(s).ok_or_else(|| {
            let shown: String = s.chars().take(64).collect();
            MttrlyError::new(ErrorCode::NotFound, format!("unknown agent capability `{shown}`"))
                .with_detail("capability", shown)
        })
    }
}

/// The capabilities one agent announced, as a bit set over the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapabilitySet(u64);

const _: () = assert!(CapabilityId::ALL.len() <= 64, "CapabilitySet holds at most 64 capabilities");

impl CapabilitySet {
    /// Every capability in the table (what this build's agent announces).
    pub fn all() -> Self {
        CapabilityId::ALL.iter().copied().collect()
    }

    /// Reads a hello's list: unknown names (from a newer agent) are ignored, not an error, since
    /// central could never ask for them anyway.
    /// Only the first [`Self::MAX_WIRE_NAMES`] names are read: a hello listing more is not one
    /// this table could match anyway.
    pub fn from_wire<S: AsRef<str>>(names: &[S]) -> Self {
        names.iter().take(Self::MAX_WIRE_NAMES).filter_map(|n| CapabilityId::lookup(n.as_ref())).collect()
    }

    /// How many announced names are read, at most.
    pub const MAX_WIRE_NAMES: usize = 256;

    /// Whether `id` was announced.
    pub const fn contains(self, id: CapabilityId) -> bool {
        self.0 & (1 << id as u32) != 0
    }

    /// The announced ones, in table order.
    pub fn iter(self) -> impl Iterator<Item = CapabilityId> {
        CapabilityId::ALL.iter().copied().filter(move |c| self.contains(*c))
    }

    /// The wire names, for a hello.
    pub fn to_wire(self) -> Vec<String> {
        self.iter().map(|c| c.as_str().to_owned()).collect()
    }
}

impl FromIterator<CapabilityId> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = CapabilityId>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, c| bits | (1 << c as u32)))
    }
}

/// How a task ended on the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It did what was asked.
    Succeeded,
    /// It failed (refused, or a process exited non-zero).
    Failed,
    /// It hit its deadline and was killed.
    TimedOut,
}

/// What a handler returns: how the task ended, the typed answer (a failed run may still answer,
/// a playbook's steps so far), the process exit code, whether output was cut, and why it failed.
#[derive(Debug)]
pub struct Outcome<A> {
    /// How it ended.
    pub end: End,
    /// The exit code, for processes.
    pub exit_code: Option<i32>,
    /// The answer.
    pub answer: Option<A>,
    /// Whether output was cut at a cap.
    pub truncated: bool,
    /// Why it failed.
    pub error: Option<MttrlyError>,
}

impl<A> Outcome<A> {
    /// Succeeded with `answer`.
    pub fn ok(answer: A) -> Self {
        Self { end: End::Succeeded, exit_code: None, answer: Some(answer), truncated: false, error: None }
    }

    /// Failed with `error`, no answer.
    pub fn failed(error: MttrlyError) -> Self {
        Self { end: End::Failed, exit_code: None, answer: None, truncated: false, error: Some(error) }
    }
}

impl<A> From<Result<A, MttrlyError>> for Outcome<A> {
    fn from(result: Result<A, MttrlyError>) -> Self {
        match result {
            Ok(answer) => Self::ok(answer),
            Err(e) => Self::failed(e),
        }
    }
}

/// One capability's handler. `T` is the task's context on the answering side (the real agent's
/// output channel and approval flags, or the simulated agent's), so both implement exactly this.
pub trait Handler<C: Capability, T: ?Sized + Sync>: Sync {
    /// Answers one task.
    fn handle(&self, task: &T, params: C::Params) -> impl Future<Output = Outcome<C::Answer>> + Send;
}

async fn run<C, H, T>(handler: &H, task: &T, params: &[u8]) -> Outcome<Vec<u8>>
where
    C: Capability,
    T: ?Sized + Sync,
    H: Handler<C, T> + Sync,
{
    let params = match serde_json::from_slice::<C::Params>(params) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::failed(
                MttrlyError::new(ErrorCode::ValidationError, format!("malformed {} parameters: {e}", C::ID))
                    .with_detail("capability", C::ID.as_str()),
            );
        }
    };
    let Outcome { end, exit_code, answer, truncated, error } = handler.handle(task, params).await;
    match answer.as_ref().map(serde_json::to_vec).transpose() {
        Ok(answer) => Outcome { end, exit_code, answer, truncated, error },
        Err(e) => Outcome::failed(MttrlyError::new(
            ErrorCode::InternalError,
            format!("cannot encode the {} answer: {e}", C::ID),
        )),
    }
}

/// Decodes an answer's bytes as `C::Answer`.
///
/// # Errors
/// `INTERNAL_ERROR` naming the capability (central's bug, or an incompatible agent).
pub fn decode_as<C: Capability>(bytes: &[u8]) -> Result<C::Answer, MttrlyError> {
    serde_json::from_slice(bytes).map_err(|e| malformed(C::ID, &e))
}

/// Decodes an answer already read as JSON (after central's second redaction pass).
///
/// # Errors
/// `INTERNAL_ERROR` naming the capability.
pub fn decode_value<C: Capability>(value: Value) -> Result<C::Answer, MttrlyError> {
    serde_json::from_value(value).map_err(|e| malformed(C::ID, &e))
}

fn malformed(id: CapabilityId, e: &serde_json::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("the agent's {id} answer is malformed: {e}"))
        .with_detail("capability", id.as_str())
}

fn encode_value<A: Serialize>(id: CapabilityId, answer: &A) -> Result<Value, MttrlyError> {
    serde_json::to_value(answer)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the {id} answer: {e}")))
}

/// No parameters. Whatever a peer sends is ignored, as it always was (`null` today, `{}` from
/// older tests): there is nothing in it to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoParams;

impl Serialize for NoParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

/// `command.classify`: the command as the assistant wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifyParams {
    /// The command line.
    pub command: String,
}

/// `file.read`: what to tail, and how many lines (the plan's limit already applied; the agent
/// clamps again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReadParams {
    /// The file, env file or Docker source.
    pub target: ReadTarget,
    /// Lines from the end.
    pub lines: u32,
}

/// `file.read_privileged`: a path on the privileged allowlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivilegedReadParams {
    /// The path.
    pub path: ServerPath,
    /// Lines from the end.
    pub lines: u32,
}

/// `file.search`: a literal query over allowlisted files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSearchParams {
    /// The literal text.
    pub query: SearchQuery,
    /// Limits the files searched.
    pub glob: Option<PathGlob>,
    /// Case-insensitive matching.
    #[serde(default)]
    pub ignore_case: bool,
    /// The match cap (the plan's limit already applied).
    pub max_matches: u32,
}

/// `file.diff`: two allowlisted files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDiffParams {
    /// The left side.
    pub left_path: ServerPath,
    /// The right side.
    pub right_path: ServerPath,
    /// Lines of context around each change.
    pub context_lines: u32,
}

/// `playbook.plan`: a playbook and the parameters to validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookPlanParams {
    /// The playbook.
    pub playbook_id: PlaybookId,
    /// Its parameters, validated against the agent's definition.
    #[serde(default)]
    pub parameters: BTreeMap<ParamName, ParamValue>,
}

/// `diagnostic.run`: which probes, and the systemd unit some of them look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticParams {
    /// The probes.
    pub probes: Vec<ProbeKind>,
    /// The unit, checked by central with `diagnose::valid_unit`.
    pub unit: Option<String>,
}

/// A process that ran to its end (its output went out as stream chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRun {
    /// How long it ran.
    pub duration_ms: u64,
}

/// The tail of a file or log, redacted on the host. Central adds the server ([`Self::on`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTail {
    /// What was read (the path, `env_file:NAME`, `docker_logs:NAME`, ...).
    pub source: String,
    /// The content, redacted.
    pub content: String,
    /// How many lines `content` holds.
    pub line_count: u32,
    /// Whether earlier lines were left out.
    pub truncated: bool,
    /// The file's size, when it is a file.
    pub size_bytes: Option<u64>,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

impl FileTail {
    /// The tool output for `server`.
    pub fn on(self, server: ServerId) -> FileContent {
        FileContent {
            server_id: server,
            source: self.source,
            content: self.content,
            line_count: self.line_count,
            truncated: self.truncated,
            size_bytes: self.size_bytes,
            redactions: self.redactions,
        }
    }
}

/// Search hits, redacted on the host (never from managed env files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMatches {
    /// The matches, by file then line.
    pub matches: Vec<SearchMatch>,
    /// How many files were searched.
    pub files_searched: u32,
    /// How many files were skipped (binary, too big, unreadable).
    #[serde(default)]
    pub files_skipped: u32,
    /// Whether the match cap was reached.
    pub truncated: bool,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

impl FileMatches {
    /// The tool output for `server`.
    pub fn on(self, server: ServerId) -> SearchResults {
        SearchResults {
            server_id: server,
            matches: self.matches,
            files_searched: self.files_searched,
            truncated: self.truncated,
            redactions: self.redactions,
        }
    }
}

/// A unified diff, redacted on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDiffText {
    /// The diff; empty when the files are identical.
    pub diff: String,
    /// Whether the files are identical.
    pub identical: bool,
    /// Whether the diff was cut at the size cap.
    pub truncated: bool,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

impl FileDiffText {
    /// The tool output for `server`.
    pub fn on(self, server: ServerId) -> FileDiff {
        FileDiff {
            server_id: server,
            diff: self.diff,
            identical: self.identical,
            truncated: self.truncated,
            redactions: self.redactions,
        }
    }
}

/// A managed file written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWritten {
    /// The file.
    pub path: String,
    /// How many bytes.
    pub bytes_written: u64,
    /// Where the previous content was kept, when there was one.
    pub backup: Option<String>,
}

/// `file.current`: the managed path a pending write names, exactly as the write will be given it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCurrentParams {
    /// The path.
    pub path: ServerPath,
}

/// What a managed file holds now, for the diff an approver reads before a write replaces it.
/// The agent answers only for a path its write would accept (the same checks, the same symlink
/// and `..` resolution), so this reveals nothing beyond files an assistant may already write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(clippy::struct_excessive_bools, reason = "independent wire facts the approver's page reads one by one")]
pub struct FileCurrentText {
    /// The resolved path the write would replace.
    pub path: String,
    /// Whether a file is there (a write may create it).
    pub exists: bool,
    /// Its size in bytes (0 when absent).
    pub size_bytes: u64,
    /// SHA-256 of its raw bytes (before redaction), lowercase hex; absent when it was not read
    /// whole (absent file, or larger than [`FileCurrentText::MAX_BYTES`]).
    pub sha256: Option<String>,
    /// Its text, redacted on the host; absent when missing, binary, or too large.
    pub content: Option<String>,
    /// Whether it is not text ([`FileCurrentText::text_of`] refused it).
    pub binary: bool,
    /// Whether it is larger than [`FileCurrentText::MAX_BYTES`], so it was not read whole.
    pub truncated: bool,
    /// Whether it is one of the owner's managed env files, so `content` also went through the
    /// key-based pass ([`crate::redactor::env_values`]); central masks the new content the same.
    pub env_file: bool,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

impl FileCurrentText {
    /// The most a read takes: the write's own cap (a write can never be larger), so the read adds
    /// no volume a write could not.
    pub const MAX_BYTES: usize = crate::tools::files::Base64Content::MAX_DECODED_BYTES;

    /// The one rule both ends use to call bytes text: valid UTF-8 without a NUL byte. Anything
    /// else is shown by size and hash only.
    pub fn text_of(bytes: &[u8]) -> Option<&str> {
        std::str::from_utf8(bytes).ok().filter(|t| !t.contains('\0'))
    }
}

/// A managed file removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRemoved {
    /// The file.
    pub path: String,
    /// Its size.
    pub bytes_freed: u64,
}

/// One playbook as the host sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookOffer {
    /// The definition's summary.
    pub summary: PlaybookSummary,
    /// Whether it can run here.
    pub available: bool,
    /// Why not, as an error code.
    pub code: Option<ErrorCode>,
    /// Why not, in a sentence.
    pub reason: Option<String>,
}

/// `playbook.list`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookOffers {
    /// Every playbook the agent knows.
    pub playbooks: Vec<PlaybookOffer>,
}

/// What a playbook run would execute, rendered by the agent from its own definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookPlanned {
    /// The playbook.
    pub playbook_id: PlaybookId,
    /// Its name.
    pub name: String,
    /// Whether a human must approve a run.
    pub requires_approval: bool,
    /// What a run can affect.
    pub blast_radius: String,
    /// The run's deadline.
    pub timeout_seconds: u32,
    /// The validated parameters (defaults filled in).
    pub parameters: BTreeMap<ParamName, ParamValue>,
    /// The exact commands.
    pub rendered: Rendered,
}

/// A playbook phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A check before anything changes.
    Precheck,
    /// A step that changes something.
    Step,
    /// The verification after the steps.
    Verify,
}

/// One command a playbook run executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRan {
    /// Its phase.
    pub phase: Phase,
    /// The argv.
    pub argv: Vec<String>,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Whether the exit code was one the step accepts.
    pub ok: bool,
}

/// `playbook.run`'s answer: the commands run so far, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookRan {
    /// The commands.
    pub steps: Vec<StepRan>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for id in CapabilityId::ALL {
            assert!(seen.insert(id.as_str()), "{id} twice");
            assert_eq!(id.as_str().parse::<CapabilityId>().unwrap(), *id);
        }
        let err = "agent.teleport".parse::<CapabilityId>().unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert!(err.message().contains("agent.teleport"), "{err}");
    }

    #[test]
    fn an_announced_set_ignores_unknown_names_and_keeps_the_known() {
        let set = CapabilitySet::from_wire(&["file.read", "agent.teleport", "host.metrics"]);
        assert!(set.contains(CapabilityId::FileRead) && set.contains(CapabilityId::HostSample));
        assert!(!set.contains(CapabilityId::FileDiffRun));
        assert_eq!(set.to_wire(), ["host.metrics", "file.read"]);
        assert_eq!(CapabilitySet::all().iter().count(), CapabilityId::ALL.len());
    }

    struct Echo;

    impl Handler<ClassifyCommandProbe, ()> for Echo {
        async fn handle(&self, (): &(), params: ClassifyParams) -> Outcome<Classification> {
            Outcome::ok(Classification::needs_approval(params.command))
        }
    }

    /// A private row used only to check [`run`]: params parsed, answers encoded.
    struct ClassifyCommandProbe;

    impl Capability for ClassifyCommandProbe {
        const ID: CapabilityId = CapabilityId::CommandClassify;
        const REDACT: bool = false;
        type Params = ClassifyParams;
        type Answer = Classification;
    }

    #[test]
    fn run_parses_params_and_encodes_the_answer_or_names_the_capability() {
        let block = |f| futures_lite_block_on(f);
        let done = block(run::<ClassifyCommandProbe, _, _>(&Echo, &(), br#"{"command":"rm -rf /"}"#));
        assert_eq!(done.end, End::Succeeded);
        let answer = decode_as::<CommandClassify>(&done.answer.unwrap()).unwrap();
        assert_eq!(answer.reason, "rm -rf /");
        let bad = block(run::<ClassifyCommandProbe, _, _>(&Echo, &(), br#"{"cmd":1}"#));
        let err = bad.error.unwrap();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.message().contains("command.classify"), "{err}");
        assert!(CapabilityId::CommandClassify.decode_answer(b"{\"nope\":1}").is_err());
    }

    /// Polls a future that never waits (the handlers here are synchronous).
    fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
