//! A simulated agent (omicron's sim rule): it speaks the real agent protocol to a real central,
//! announces the capabilities it is told to (an older agent is one that announces fewer), and
//! answers tasks through the same `mttrly_core::capability::dispatch` and the same [`Handler`]
//! signatures as the real agent, over an in-memory host: files in a map, actions recorded instead
//! of run. Tests get a fleet member without processes, root, Docker or a real file system.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{
    self, CapabilityId, CapabilitySet, ClassifyParams, CommandClassify, CommandRun, DeployVerify, DiagnosticParams,
    DiagnosticRun, FileCleanup, FileCurrent, FileCurrentParams, FileCurrentText, FileDiffParams, FileDiffRun,
    FileDiffText, FileMatches, FileRead, FileReadParams, FileReadPrivileged, FileRemoved, FileSearch, FileSearchParams,
    FileTail, FileWrite, FileWritten, FilesCompare, Handler, HostSample, NoParams, Outcome, Phase, PlaybookList,
    PlaybookOffer, PlaybookOffers, PlaybookPlan, PlaybookPlanParams, PlaybookPlanned, PlaybookRan, PlaybookRun,
    PrivilegedReadParams, ProcessRun, RealityDiscover, ScriptRun, StepRan,
};
use mttrly_core::classifier::{Classification, classify};
use mttrly_core::diagnose::Evidence;
use mttrly_core::playbook::Catalog;
use mttrly_core::tools::common::HostMetrics;
use mttrly_core::tools::deploys::{DeployProbe, DeployProbeParams, HealthEvidence, LogEvidence, UnitEvidence};
use mttrly_core::tools::files::{
    CompareCap, CompareEntry, CompareParams, CompareRun, CompareStatus, CompareTally, EntryKind, EntrySide,
    MISSING_FLAGS, ReadTarget, RedactionCount, SearchMatch, TreeReport, flags as files_flags,
};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use mttrly_proto::agent::v1::{
    self as wire, AgentMessage, EnrollRequest, Heartbeat, Hello, TaskAck, TaskResult, agent_message, central_message,
};
use mttrly_proto::convert::{task_error_to_wire, task_status_to_wire};
use tokio::sync::{mpsc, oneshot};

/// The simulated host's state, shared with the test.
#[derive(Debug, Default)]
pub struct SimHost {
    /// Files by absolute path.
    pub files: Mutex<BTreeMap<String, String>>,
    /// Every action content it was asked to carry out, in order.
    pub actions: Mutex<Vec<ActionContent>>,
    /// What `deploy.verify` answers per service (the services its "policy" configures).
    pub deploys: Mutex<BTreeMap<String, DeployProbe>>,
    /// The used share of its one filesystem `/` its heartbeats report, in tenths of a percent
    /// (`880` is 88.0 %; no filesystem is reported when unset).
    pub disk_used_tenths: Mutex<Option<u64>>,
}

/// A simulated task's context: what the real agent's `Task` carries, minus the output stream.
#[derive(Debug)]
pub struct SimTask {
    /// The task carries an action id.
    pub action: bool,
    /// The bytes the approved content names by hash.
    pub payload: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn denied(message: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message)
}

fn metrics() -> HostMetrics {
    let sample = wire::HostMetrics { memory_total_bytes: 8 << 30, memory_used_bytes: 2 << 30, ..Default::default() };
    mttrly_proto::convert::metrics_from_wire(&sample, jiff::Timestamp::now())
}

/// Redacts as the real agent does (whole text), counting rules.
fn redacted(text: &str) -> (String, Vec<RedactionCount>) {
    let r = mttrly_core::redactor::redact(text);
    let counts = r.hits.iter().map(|h| RedactionCount { rule: h.rule.to_owned(), count: h.count }).collect();
    (r.text.into_owned(), counts)
}

impl SimHost {
    fn file(&self, path: &str) -> Result<String, MttrlyError> {
        lock(&self.files).get(path).cloned().ok_or_else(|| {
            MttrlyError::new(ErrorCode::NotFound, format!("`{path}` does not exist on the simulated host"))
        })
    }

    fn record(&self, task: &SimTask, content: ActionContent) -> Result<(), MttrlyError> {
        if !task.action {
            return Err(denied("changes run only as actions"));
        }
        lock(&self.actions).push(content);
        Ok(())
    }
}

impl Handler<HostSample, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: NoParams) -> Outcome<HostMetrics> {
        Outcome::ok(metrics())
    }
}

impl Handler<CommandRun, SimTask> for SimHost {
    async fn handle(&self, task: &SimTask, content: ActionContent) -> Outcome<ProcessRun> {
        self.record(task, content).map(|()| ProcessRun { duration_ms: 0 }).into()
    }
}

impl Handler<ScriptRun, SimTask> for SimHost {
    async fn handle(&self, task: &SimTask, content: ActionContent) -> Outcome<ProcessRun> {
        self.record(task, content).map(|()| ProcessRun { duration_ms: 0 }).into()
    }
}

impl Handler<CommandClassify, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: ClassifyParams) -> Outcome<Classification> {
        let verdict = classify(&p.command);
        if verdict.depends_on_files() {
            return Outcome::ok(Classification::needs_approval("the simulated host checks no files"));
        }
        Outcome::ok(verdict)
    }
}

impl Handler<FileRead, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: FileReadParams) -> Outcome<FileTail> {
        let path = match p.target {
            ReadTarget::File { path } => path.into_inner(),
            ReadTarget::EnvFile { .. } => return Outcome::failed(denied("the simulated host has no env files")),
            ReadTarget::DockerLogs { .. } | ReadTarget::DockerImages => {
                return Outcome::failed(MttrlyError::new(ErrorCode::DockerNotAvailable, "no Docker when simulated"));
            }
        };
        self.file(&path)
            .map(|text| {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(usize::try_from(p.lines.clamp(1, 500)).unwrap_or(500));
                let (content, redactions) = redacted(&lines[start..].join("\n"));
                FileTail {
                    source: path.clone(),
                    content,
                    line_count: u32::try_from(lines.len() - start).unwrap_or(u32::MAX),
                    truncated: start > 0,
                    size_bytes: Some(text.len() as u64),
                    redactions,
                }
            })
            .into()
    }
}

impl Handler<FileReadPrivileged, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: PrivilegedReadParams) -> Outcome<FileTail> {
        Outcome::failed(denied("the simulated host has no privileged files"))
    }
}

impl Handler<FileSearch, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: FileSearchParams) -> Outcome<FileMatches> {
        let files = lock(&self.files).clone();
        let cap = usize::try_from(p.max_matches.clamp(1, 500)).unwrap_or(500);
        let needle = if p.ignore_case { p.query.as_str().to_lowercase() } else { p.query.as_str().to_owned() };
        let mut matches = Vec::new();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for (path, text) in &files {
            for (i, line) in text.lines().enumerate() {
                let hay = if p.ignore_case { line.to_lowercase() } else { line.to_owned() };
                if hay.contains(&needle) && matches.len() < cap {
                    let (line, hits) = redacted(line);
                    for h in hits {
                        *counts.entry(h.rule).or_default() += h.count;
                    }
                    matches.push(SearchMatch { path: path.clone(), line_number: i as u64 + 1, line });
                }
            }
        }
        Outcome::ok(FileMatches {
            truncated: matches.len() >= cap,
            matches,
            files_searched: u32::try_from(files.len()).unwrap_or(u32::MAX),
            files_skipped: 0,
            redactions: counts.into_iter().map(|(rule, count)| RedactionCount { rule, count }).collect(),
        })
    }
}

impl Handler<FileDiffRun, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: FileDiffParams) -> Outcome<FileDiffText> {
        let (left, right) = match (self.file(p.left_path.as_str()), self.file(p.right_path.as_str())) {
            (Ok(l), Ok(r)) => (l, r),
            (Err(e), _) | (_, Err(e)) => return Outcome::failed(e),
        };
        let context = usize::try_from(p.context_lines.min(20)).unwrap_or(3);
        let (text, identical, truncated) =
            mttrly_core::files::diff::unified(p.left_path.as_str(), &left, p.right_path.as_str(), &right, context);
        let (diff, redactions) = redacted(&text);
        Outcome::ok(FileDiffText { diff, identical, truncated, redactions })
    }
}

impl Handler<FileWrite, SimTask> for SimHost {
    async fn handle(&self, task: &SimTask, content: ActionContent) -> Outcome<FileWritten> {
        let ActionContent::FileWrite { path, .. } = &content else {
            return Outcome::failed(MttrlyError::new(ErrorCode::ValidationError, "expects a file write"));
        };
        let path = path.clone();
        let text = String::from_utf8_lossy(&task.payload).into_owned();
        let bytes_written = task.payload.len() as u64;
        self.record(task, content)
            .map(|()| {
                let backup = lock(&self.files).insert(path.clone(), text).map(|_| format!("{path}.sim-backup"));
                FileWritten { path, bytes_written, backup }
            })
            .into()
    }
}

impl Handler<FileCleanup, SimTask> for SimHost {
    async fn handle(&self, task: &SimTask, content: ActionContent) -> Outcome<FileRemoved> {
        let ActionContent::FileCleanup { path } = &content else {
            return Outcome::failed(MttrlyError::new(ErrorCode::ValidationError, "expects a file cleanup"));
        };
        let path = path.clone();
        if let Err(e) = self.record(task, content) {
            return Outcome::failed(e);
        }
        match lock(&self.files).remove(&path) {
            Some(old) => Outcome::ok(FileRemoved { path, bytes_freed: old.len() as u64 }),
            None => Outcome::failed(MttrlyError::new(ErrorCode::NotFound, format!("`{path}` does not exist"))),
        }
    }
}

/// The simulated host's files are all managed: the current text of a path, redacted as the real
/// agent redacts it; a path it does not hold is a file a write would create.
impl Handler<FileCurrent, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: FileCurrentParams) -> Outcome<FileCurrentText> {
        use sha2::Digest as _;
        let path = p.path.into_inner();
        let held = lock(&self.files).get(&path).cloned();
        let (content, redactions) = held.as_deref().map(redacted).unzip();
        Outcome::ok(FileCurrentText {
            exists: held.is_some(),
            size_bytes: held.as_ref().map_or(0, |t| t.len() as u64),
            sha256: held.as_ref().map(|t| hex::encode(sha2::Sha256::digest(t.as_bytes()))),
            content,
            binary: false,
            truncated: false,
            env_file: false,
            redactions: redactions.unwrap_or_default(),
            path,
        })
    }
}

impl Handler<PlaybookList, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: NoParams) -> Outcome<PlaybookOffers> {
        // The simulated host has no programs: a playbook that needs one is unavailable.
        let playbooks = Catalog::built_in()
            .all()
            .into_iter()
            .map(|p| PlaybookOffer {
                summary: p.summary(),
                available: p.requires.is_empty(),
                code: (!p.requires.is_empty()).then_some(ErrorCode::PlaybookNotAvailable),
                reason: (!p.requires.is_empty()).then(|| format!("needs {}", p.requires.join(", "))),
            })
            .collect();
        Outcome::ok(PlaybookOffers { playbooks })
    }
}

impl Handler<PlaybookPlan, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: PlaybookPlanParams) -> Outcome<PlaybookPlanned> {
        let catalog = Catalog::built_in();
        let planned = catalog.find(&p.playbook_id).and_then(|playbook| {
            let parameters = playbook.validate(&p.parameters)?;
            Ok(PlaybookPlanned {
                playbook_id: playbook.id.clone(),
                name: playbook.name.clone(),
                requires_approval: playbook.requires_approval,
                blast_radius: playbook.blast_radius.clone(),
                timeout_seconds: playbook.timeout_seconds,
                rendered: playbook.render(&parameters),
                parameters,
            })
        });
        planned.into()
    }
}

impl Handler<PlaybookRun, SimTask> for SimHost {
    async fn handle(&self, task: &SimTask, content: ActionContent) -> Outcome<PlaybookRan> {
        let ActionContent::Playbook { playbook_id, parameters } = &content else {
            return Outcome::failed(MttrlyError::new(ErrorCode::ValidationError, "expects a playbook action"));
        };
        let catalog = Catalog::built_in();
        let rendered = match catalog.find(playbook_id).and_then(|p| Ok(p.render(&p.validate(parameters)?))) {
            Ok(r) => r,
            Err(e) => return Outcome::failed(e),
        };
        if let Err(e) = self.record(task, content.clone()) {
            return Outcome::failed(e);
        }
        let step = |phase, s: &mttrly_core::playbook::Step| StepRan {
            phase,
            argv: s.argv.clone(),
            exit_code: Some(0),
            ok: true,
        };
        let steps = rendered
            .prechecks
            .iter()
            .map(|s| step(Phase::Precheck, s))
            .chain(rendered.steps.iter().map(|s| step(Phase::Step, s)))
            .chain(rendered.verify.iter().map(|s| step(Phase::Verify, s)))
            .collect();
        Outcome { exit_code: Some(0), ..Outcome::ok(PlaybookRan { steps }) }
    }
}

impl Handler<DiagnosticRun, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: DiagnosticParams) -> Outcome<Evidence> {
        Outcome::ok(Evidence { metrics: Some(metrics()), cpu_count: Some(2), commands: BTreeMap::new() })
    }
}

/// The simulated host has no versions directory to update: it refuses as an agent run from a
/// bare binary would, and knows of no update (issue 16's real updates are tested with real agents).
impl Handler<capability::AgentUpdate, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: ActionContent) -> Outcome<mttrly_core::tools::updates::UpdateStaged> {
        Outcome::failed(MttrlyError::new(
            ErrorCode::PolicyDenied,
            "this agent does not run from an installed versions directory, so it cannot update itself",
        ))
    }
}

/// The simulated host was not installed by `mttrly-agent install`: no receipt, no plans (issue
/// 16's install health and repair are tested with real agents in installed temp roots).
impl Handler<capability::InstallHealth, SimTask> for SimHost {
    async fn handle(
        &self,
        _: &SimTask,
        _: mttrly_core::tools::install::InstallHealthParams,
    ) -> Outcome<mttrly_core::tools::install::InstallReport> {
        use mttrly_core::tools::install::{Finding, FindingStatus, InstallReport};
        Outcome::ok(InstallReport {
            installed: false,
            receipt_version: None,
            current_version: None,
            findings: vec![Finding {
                code: "receipt".to_owned(),
                subject: "/etc/mttrly-agent/install.json".to_owned(),
                expected: "an install receipt (written by `mttrly-agent install`)".to_owned(),
                actual: "absent".to_owned(),
                status: FindingStatus::Missing,
                severity: mttrly_core::tools::common::Severity::Warning,
                repaired_by: Vec::new(),
            }],
            plans: Vec::new(),
            checked_at: jiff::Timestamp::now(),
        })
    }
}

impl Handler<capability::InstallRepair, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: ActionContent) -> Outcome<mttrly_core::tools::install::RepairOutcome> {
        Outcome::failed(MttrlyError::new(
            ErrorCode::ValidationError,
            "this agent was not installed by `mttrly-agent install` (no install receipt): nothing to repair",
        ))
    }
}

impl Handler<capability::AgentUpdateStatus, SimTask> for SimHost {
    async fn handle(
        &self,
        _: &SimTask,
        _: mttrly_core::tools::updates::UpdateStatusParams,
    ) -> Outcome<mttrly_core::tools::updates::UpdateReport> {
        Outcome::ok(mttrly_core::tools::updates::UpdateReport {
            running_version: env!("CARGO_PKG_VERSION").to_owned(),
            state: mttrly_core::tools::updates::UpdateState::Unknown,
            from_version: None,
            to_version: None,
            reason: None,
            detail: None,
        })
    }
}

impl Handler<DeployVerify, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, p: DeployProbeParams) -> Outcome<DeployProbe> {
        let deploys = lock(&self.deploys);
        let not_configured = |service: Option<String>| DeployProbe {
            service,
            healthcheck: HealthEvidence::NotConfigured,
            logs: LogEvidence::NotConfigured,
            unit: UnitEvidence::NotConfigured,
        };
        let probe = match p.service {
            Some(name) => deploys.get(&name).cloned().unwrap_or_else(|| not_configured(Some(name))),
            None if deploys.len() == 1 => deploys.values().next().cloned().unwrap_or_else(|| not_configured(None)),
            None if deploys.is_empty() => not_configured(None),
            None => {
                return Outcome::failed(
                    MttrlyError::new(ErrorCode::ValidationError, "several services are configured; name one")
                        .with_detail("field", "service"),
                );
            }
        };
        // Like the real agent: only the configured URL may be probed.
        if let Some(asked) = p.healthcheck_url
            && !matches!(&probe.healthcheck, HealthEvidence::Probed { url, .. } if *url == asked)
        {
            return Outcome::failed(denied("the simulated host probes only its configured healthcheck URL"));
        }
        Outcome::ok(probe)
    }
}

impl Handler<RealityDiscover, SimTask> for SimHost {
    async fn handle(&self, _: &SimTask, _: NoParams) -> Outcome<Evidence> {
        Outcome::ok(Evidence::default())
    }
}

impl Handler<FilesCompare, SimTask> for SimHost {
    /// The simulated host's files under each root, compared by SHA-256 through the same tally as
    /// the real agent (so counts, bounds and the verdict agree). Its files have no mtimes, and its
    /// ignore globs are matched as literal path components.
    async fn handle(&self, _: &SimTask, p: CompareParams) -> Outcome<TreeReport> {
        use sha2::Digest as _;
        let files = lock(&self.files).clone();
        let limits = p.limits.within_types();
        let under = |root: &str| -> BTreeMap<String, String> {
            let prefix = format!("{}/", root.trim_end_matches('/'));
            files
                .iter()
                .filter_map(|(path, text)| path.strip_prefix(&prefix).map(|rel| (rel.to_owned(), text.clone())))
                .collect()
        };
        let (source, dist) = (under(p.source_dir.as_str()), under(p.dist_dir.as_str()));
        let paths: std::collections::BTreeSet<&String> = source.keys().chain(dist.keys()).collect();
        let mut tally = CompareTally::new(limits.max_entries);
        let (mut examined, mut stopped_by) = (0u32, None);
        let side = |text: &String| EntrySide {
            kind: EntryKind::File,
            size: Some(text.len() as u64),
            sha256: Some(hex::encode(sha2::Sha256::digest(text.as_bytes()))),
            mtime: None,
            symlink_target: None,
        };
        for rel in paths {
            if rel.split('/').any(|part| p.ignore.iter().any(|g| g == part)) {
                tally.ignored();
                continue;
            }
            if examined >= limits.max_files {
                stopped_by = Some(CompareCap::MaxFiles);
                break;
            }
            examined += 1;
            let (here, there) = (source.get(rel).map(side), dist.get(rel).map(side));
            let (status, flags) = match (&here, &there) {
                (Some(left), Some(right)) if left == right => (CompareStatus::Identical, files_flags(left, right)),
                (Some(left), Some(right)) => (CompareStatus::Modified, files_flags(left, right)),
                (Some(_), None) => (CompareStatus::OnlyInSource, MISSING_FLAGS.to_owned()),
                _ => (CompareStatus::OnlyInDist, MISSING_FLAGS.to_owned()),
            };
            tally.push(CompareEntry { path: rel.clone(), status, flags, source: here, dist: there, reason: None });
        }
        Outcome::ok(tally.finish(CompareRun {
            source_dir: p.source_dir.as_str().to_owned(),
            dist_dir: p.dist_dir.as_str().to_owned(),
            stopped_by,
            examined,
            bytes_hashed: 0,
            elapsed_ms: 0,
            limits,
        }))
    }
}

/// A simulated agent connected to a central, on its own thread and runtime.
pub struct SimAgent {
    /// The server it enrolled as.
    pub server_id: String,
    /// Its host, for the test to seed and inspect.
    pub host: Arc<SimHost>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SimAgent {
    /// Enrolls with `install_token` at `grpc_url`, says hello as `version` announcing `offered`,
    /// and answers tasks until dropped.
    ///
    /// # Panics
    /// When enrollment or the session cannot be opened (a test setup failure).
    pub fn start(grpc_url: &str, install_token: &str, version: &str, offered: CapabilitySet, host: SimHost) -> Self {
        let host = Arc::new(host);
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (url, token, version, shared) =
            (grpc_url.to_owned(), install_token.to_owned(), version.to_owned(), Arc::clone(&host));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(session(&url, &token, &version, offered, &shared, stopped, ready_tx));
        });
        let server_id = ready_rx.recv_timeout(Duration::from_secs(15)).expect("the simulated agent connected");
        Self { server_id, host, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn session(
    url: &str,
    install_token: &str,
    version: &str,
    offered: CapabilitySet,
    host: &SimHost,
    mut stopped: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<String>,
) {
    let channel =
        tonic::transport::Channel::from_shared(url.to_owned()).expect("url").connect().await.expect("connect");
    let mut client = AgentServiceClient::new(channel);
    let enroll =
        EnrollRequest { install_token: install_token.into(), hostname: "sim".into(), agent_version: version.into() };
    let creds = client.enroll(enroll).await.expect("enroll").into_inner();
    let (tx, rx) = mpsc::channel::<AgentMessage>(64);
    let hello = Hello {
        agent_version: version.into(),
        protocol_revision: 1,
        hostname: "sim".into(),
        capabilities: offered.to_wire(),
        ..Default::default()
    };
    tx.send(AgentMessage { body: Some(agent_message::Body::Hello(hello)) }).await.expect("hello queued");
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.metadata_mut().insert("authorization", format!("Bearer {}", creds.agent_secret).parse().expect("header"));
    req.metadata_mut().insert("x-mttrly-server-id", creds.server_id.parse().expect("header"));
    let mut inbound = client.session(req).await.expect("session").into_inner();
    let mut beat = tokio::time::interval(Duration::from_millis(500));
    let _ = ready.send(creds.server_id);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = beat.tick() => {
                let filesystems = lock(&host.disk_used_tenths)
                    .map(|used| wire::Filesystem {
                        mount_point: "/".into(),
                        fs_type: "ext4".into(),
                        total_bytes: 1_000_000,
                        used_bytes: used.min(1000) * 1000,
                    })
                    .into_iter()
                    .collect();
                let heartbeat = Heartbeat {
                    sent_at_unix_ms: jiff::Timestamp::now().as_millisecond(),
                    metrics: Some(wire::HostMetrics { memory_total_bytes: 8 << 30, filesystems, ..Default::default() }),
                };
                if tx.send(AgentMessage { body: Some(agent_message::Body::Heartbeat(heartbeat)) }).await.is_err() {
                    return;
                }
            }
            message = inbound.message() => {
                let Ok(Some(message)) = message else { return };
                if let Some(central_message::Body::TaskRequest(task)) = message.body {
                    let ack = TaskAck { task_id: task.task_id.clone(), duplicate: false };
                    let _ = tx.send(AgentMessage { body: Some(agent_message::Body::TaskAck(ack)) }).await;
                    let result = answer(host, offered, version, task).await;
                    let _ = tx.send(AgentMessage { body: Some(agent_message::Body::TaskResult(result)) }).await;
                }
            }
        }
    }
}

/// Answers one task as an agent of `version` offering `offered` would.
async fn answer(host: &SimHost, offered: CapabilitySet, version: &str, task: wire::TaskRequest) -> TaskResult {
    let started = jiff::Timestamp::now().as_millisecond();
    let sim_task = SimTask { action: !task.action_id.is_empty(), payload: task.payload };
    let outcome = match task.capability.parse::<CapabilityId>() {
        Ok(id) if offered.contains(id) => capability::dispatch(host, &sim_task, id, &task.params_json).await,
        _ => Outcome::failed(denied(&format!("this agent (version {version}) does not offer `{}`", task.capability))),
    };
    TaskResult {
        task_id: task.task_id,
        status: task_status_to_wire(outcome.end).into(),
        exit_code: outcome.exit_code,
        result_json: outcome.answer.unwrap_or_default(),
        error: outcome.error.as_ref().map(task_error_to_wire),
        started_at_unix_ms: started,
        finished_at_unix_ms: jiff::Timestamp::now().as_millisecond(),
        truncated: outcome.truncated,
    }
}
