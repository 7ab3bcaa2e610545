//! `mttrly-agent run`: the outbound stream, held open for as long as the agent runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mttrly_core::MttrlyError;
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use mttrly_proto::agent::v1::{
    AgentMessage, CentralMessage, Heartbeat, Hello, HostMetrics, OutputStream, TaskAck, TaskOutput, TaskRequest,
    TaskResult, TaskStatus, agent_message, central_message,
};
use mttrly_proto::convert::{task_error_to_wire, task_status_to_wire};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::backoff::Backoff;
use crate::capabilities::Context;
use crate::credentials::Credentials;
use crate::detectors::{Bank, DetectorConfig, Finding};
use crate::executed::Executed;
use crate::metrics::MetricsCollector;
use crate::policy::LocalPolicy;
use crate::task::Task;
use crate::{AgentError, PROTOCOL_REVISION, capabilities, enroll, host};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the credentials live.
    pub state_dir: PathBuf,
    /// The owner's policy (defaults when no file is given).
    pub policy: LocalPolicy,
    /// First reconnect delay.
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_cap: Duration,
    /// How the proactive detectors judge the heartbeat samples.
    pub detectors: DetectorConfig,
    /// Where heartbeat samples come from instead of the host's counters. `None` (the binary's only
    /// setting: nothing on its command line or environment reaches this) reads the host. Set by
    /// an embedding program, such as the end-to-end tests that drive a metric to raise an event.
    pub sampler: Option<Sampler>,
    /// Where this agent's installation lives, for install health and repair (`/` on a host; a
    /// staged or test install's root with `run --install-root`).
    pub install: crate::install::layout::Layout,
}

/// A source of heartbeat samples (see [`RunOptions::sampler`]).
#[derive(Clone)]
pub struct Sampler(pub Arc<dyn Fn() -> HostMetrics + Send + Sync>);

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sampler")
    }
}

impl RunOptions {
    /// Defaults: reconnect after 1 s, backing off to 60 s; the detectors as the owner's policy
    /// says (`proactive_detectors`, `proactive_persist_intervals`).
    pub fn new(state_dir: PathBuf, policy: LocalPolicy) -> Self {
        let detectors = DetectorConfig {
            enabled: policy.proactive_detectors,
            persist: policy.proactive_persist_intervals,
            ..DetectorConfig::default()
        };
        Self {
            state_dir,
            policy,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            detectors,
            sampler: None,
            install: crate::install::layout::Layout::system(),
        }
    }
}

/// A connection that stayed up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true: connect, serve the stream, and on any failure wait (with
/// backoff and jitter) and connect again. Fails only when there are no credentials to run with.
pub async fn run(options: RunOptions, mut shutdown: watch::Receiver<bool>) -> Result<(), AgentError> {
    let credentials = Credentials::load(&options.state_dir)?.ok_or_else(|| AgentError::Invalid {
        what: "state directory",
        path: options.state_dir.display().to_string(),
        reason: "not enrolled: run `mttrly-agent enroll --central URL --token TOKEN` first".to_owned(),
    })?;
    let collector = Arc::new(Mutex::new(MetricsCollector::new()?));
    // The self-updater settles an update left under way before anything else (issue 16).
    // Off the runtime: working out which release this is waits for a proving child process.
    let update = {
        let (dir, policy, creds) = (options.state_dir.clone(), options.policy.clone(), credentials.clone());
        match tokio::task::spawn_blocking(move || crate::update::Updater::new(&dir, &policy, Some(creds))).await {
            Ok(updater) => Arc::new(updater),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: the runtime is shutting down.
                Err(_) => return Ok(()),
            },
        }
    };
    update.on_start();
    update.spawn_trial_deadline();
    let ctx = Arc::new(Context {
        collector: Arc::clone(&collector),
        policy: Arc::new(options.policy.clone()),
        update,
        layout: options.install.clone(),
    });
    // The detectors outlive sessions: a reconnect neither forgets the baselines nor raises an
    // episode's event twice.
    let sampling = Arc::new(Sampling {
        collector,
        sampler: options.sampler.clone(),
        bank: Mutex::new(Bank::new(options.detectors)),
    });
    let executed = Arc::new(Executed::load(&options.state_dir)?);
    let mut backoff = Backoff::new(options.backoff_base, options.backoff_cap);
    loop {
        let started = Instant::now();
        // Race the whole session, handshake included, against shutdown, so a stop request never
        // waits for a connect timeout.
        let mut inner = shutdown.clone();
        let outcome = tokio::select! {
            outcome = session(&options.state_dir, &credentials, &options.policy, &ctx, &sampling, &executed, &mut inner) => outcome,
            () = stopped(&mut shutdown) => return Ok(()),
        };
        match outcome {
            Ok(Ended::Shutdown) => return Ok(()),
            Ok(Ended::Closed) => tracing::warn!("central closed the stream"),
            Err(e) => tracing::warn!(error = %e, "agent session failed"),
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::info!(delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "reconnecting");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut shutdown) => return Ok(()),
        }
    }
}

enum Ended {
    Shutdown,
    Closed,
}

/// Where heartbeat samples come from, and the detectors that judge them.
struct Sampling {
    collector: Arc<Mutex<MetricsCollector>>,
    sampler: Option<Sampler>,
    bank: Mutex<Bank>,
}

impl Sampling {
    /// One heartbeat's sample and the proactive events it raises. Blocking (reads /proc).
    fn sample(&self) -> (HostMetrics, Vec<Finding>) {
        let metrics = match &self.sampler {
            Some(Sampler(sampler)) => sampler(),
            None => self.collector.lock().unwrap_or_else(PoisonError::into_inner).sample(),
        };
        let mut findings = Vec::new();
        self.bank.lock().unwrap_or_else(PoisonError::into_inner).observe(&metrics, &mut findings);
        (metrics, findings)
    }
}

async fn session(
    state_dir: &Path,
    credentials: &Credentials,
    policy: &LocalPolicy,
    ctx: &Arc<Context>,
    sampling: &Arc<Sampling>,
    executed: &Arc<Executed>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Ended, AgentError> {
    let channel = enroll::connect(&credentials.central_url, credentials.ca_certificate_pem.as_deref()).await?;
    let (tx, rx) = mpsc::channel::<AgentMessage>(64);
    let facts = host::facts();
    let hello = Hello {
        agent_version: ctx.update.version().to_owned(),
        protocol_revision: PROTOCOL_REVISION,
        hostname: facts.hostname,
        os: facts.os,
        kernel: facts.kernel,
        arch: facts.arch,
        capabilities: capabilities::offered().to_wire(),
        policy: Some(policy.summary()),
        executed_action_ids: executed.recent(),
    };
    tx.send(AgentMessage { body: Some(agent_message::Body::Hello(hello)) }).await.map_err(|_| {
        AgentError::Central(MttrlyError::new(mttrly_core::ErrorCode::InternalError, "outbound queue closed"))
    })?;

    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    let metadata = request.metadata_mut();
    let bad = |what: &str| AgentError::Invalid {
        what: "credentials",
        path: crate::credentials::path(state_dir).display().to_string(),
        reason: format!("the {what} is not valid in a header"),
    };
    metadata.insert(
        "authorization",
        format!("Bearer {}", credentials.agent_secret).parse().map_err(|_| bad("agent secret"))?,
    );
    metadata.insert("x-mttrly-server-id", credentials.server_id.parse().map_err(|_| bad("server id"))?);
    let mut inbound = AgentServiceClient::new(channel)
        .session(request)
        .await
        .map_err(|s| AgentError::Central(mttrly_proto::status::from_status(&s)))?
        .into_inner();

    let welcome = match inbound.message().await {
        Ok(Some(CentralMessage { body: Some(central_message::Body::Welcome(w)) })) => w,
        Ok(_) => return Ok(Ended::Closed),
        Err(s) => return Err(AgentError::Central(mttrly_proto::status::from_status(&s))),
    };
    tracing::info!(server_id = %welcome.server_id, "connected to central");
    // Connected and welcomed: a new version on trial has passed its self-test and commits.
    ctx.update.connected();
    let interval = Duration::from_secs(u64::from(welcome.heartbeat_interval_seconds.max(1)));
    let mut heartbeat = tokio::time::interval(interval);
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    // Deploy detection for this session (the owner's `[deploys.*] watch`/`unit`; none: nothing runs).
    let _deploy_watch = crate::deploys::spawn(&ctx.policy, state_dir, tx.clone());

    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                let sampling = Arc::clone(sampling);
                let (metrics, findings) = match tokio::task::spawn_blocking(move || sampling.sample()).await {
                    Ok((metrics, findings)) => (Some(metrics), findings),
                    Err(_) => (None, Vec::new()),
                };
                let sent_at = jiff::Timestamp::now().as_millisecond();
                let beat = Heartbeat { sent_at_unix_ms: sent_at, metrics };
                if tx.send(AgentMessage { body: Some(agent_message::Body::Heartbeat(beat)) }).await.is_err() {
                    return Ok(Ended::Closed);
                }
                for finding in &findings {
                    tracing::info!(metric = %finding.metric, value = finding.raise.value, "proactive event");
                    let event = agent_message::Body::ProactiveEvent(finding.to_wire(sent_at));
                    if tx.send(AgentMessage { body: Some(event) }).await.is_err() {
                        return Ok(Ended::Closed);
                    }
                }
            }
            message = inbound.message() => match message {
                Ok(Some(CentralMessage { body: Some(body) })) => {
                    running.retain(|_, handle| !handle.is_finished());
                    match body {
                        central_message::Body::TaskRequest(task) => {
                            let id = task.task_id.clone();
                            let handle = tokio::spawn(run_task(task, tx.clone(), Arc::clone(ctx), Arc::clone(executed)));
                            running.insert(id, handle.abort_handle());
                        }
                        central_message::Body::CancelTask(cancel) => {
                            if let Some(handle) = running.remove(&cancel.task_id) {
                                handle.abort();
                                let _ = tx.send(result(&cancel.task_id, TaskStatus::Cancelled, Vec::new(), None, now(), now())).await;
                            }
                        }
                        central_message::Body::Welcome(_) => {}
                    }
                }
                Ok(Some(CentralMessage { body: None })) => {}
                Ok(None) => return Ok(Ended::Closed),
                Err(s) => return Err(AgentError::Central(mttrly_proto::status::from_status(&s))),
            },
            () = stopped(shutdown) => {
                for handle in running.values() {
                    handle.abort();
                }
                return Ok(Ended::Shutdown);
            }
        }
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The result of a task that ran nothing: cancelled, or refused before it started.
fn result(
    task_id: &str,
    status: TaskStatus,
    result_json: Vec<u8>,
    error: Option<&MttrlyError>,
    started: i64,
    finished: i64,
) -> AgentMessage {
    AgentMessage {
        body: Some(agent_message::Body::TaskResult(TaskResult {
            task_id: task_id.to_owned(),
            status: status.into(),
            exit_code: None,
            result_json,
            error: error.map(task_error_to_wire),
            started_at_unix_ms: started,
            finished_at_unix_ms: finished,
            truncated: false,
        })),
    }
}

/// Checks an action task before anything runs: its parameters must be exactly the content the
/// human approved, and its id must never have run here before (the id is recorded first).
fn admit_action(task: &TaskRequest, executed: &Executed) -> Result<bool, MttrlyError> {
    use sha2::Digest as _;
    let actual = hex::encode(sha2::Sha256::digest(&task.params_json));
    if task.content_sha256.is_empty() || actual != task.content_sha256 {
        return Err(MttrlyError::new(
            mttrly_core::ErrorCode::PolicyDenied,
            "the action's parameters do not match the content that was approved; refusing to run it",
        )
        .with_detail("action_id", task.action_id.as_str()));
    }
    // The whole chain: the ledger's I/O error is the reason, not only which file it was.
    executed
        .claim(&task.action_id)
        .map_err(|e| MttrlyError::new(mttrly_core::ErrorCode::InternalError, mttrly_core::ErrorChain(&e).to_string()))
}

async fn run_task(task: TaskRequest, tx: mpsc::Sender<AgentMessage>, ctx: Arc<Context>, executed: Arc<Executed>) {
    let started = now();
    let admitted = if task.action_id.is_empty() { Ok(true) } else { admit_action(&task, &executed) };
    let duplicate = matches!(admitted, Ok(false));
    let ack =
        AgentMessage { body: Some(agent_message::Body::TaskAck(TaskAck { task_id: task.task_id.clone(), duplicate })) };
    if tx.send(ack).await.is_err() {
        return;
    }
    let refusal = match admitted {
        Ok(true) => None,
        Ok(false) => Some(
            MttrlyError::new(
                mttrly_core::ErrorCode::ValidationError,
                "this action already ran on this server; it never runs twice",
            )
            .with_detail("action_id", task.action_id.as_str()),
        ),
        Err(e) => Some(e),
    };
    if let Some(err) = refusal {
        tracing::warn!(action_id = %task.action_id, error = %err, "refused an action task");
        let _ = tx.send(result(&task.task_id, TaskStatus::Failed, Vec::new(), Some(&err), started, now())).await;
        return;
    }
    // Output chunks become TaskOutput messages, in order.
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<String>(64);
    let forward_tx = tx.clone();
    let task_id = task.task_id.clone();
    let forward = tokio::spawn(async move {
        let mut seq = 0u64;
        while let Some(text) = chunk_rx.recv().await {
            let out = TaskOutput {
                task_id: task_id.clone(),
                seq,
                stream: OutputStream::Stdout.into(),
                data: text.into_bytes(),
            };
            seq += 1;
            if forward_tx.send(AgentMessage { body: Some(agent_message::Body::TaskOutput(out)) }).await.is_err() {
                return;
            }
        }
    });
    let is_action = !task.action_id.is_empty();
    let context = Task {
        action: is_action,
        action_id: &task.action_id,
        approved: is_action && task.human_approved,
        payload: &task.payload,
        chunks: &chunk_tx,
    };
    let done = capabilities::invoke(&ctx, &task.capability, &task.params_json, &context).await;
    drop(chunk_tx);
    let _ = forward.await;
    let message = AgentMessage {
        body: Some(agent_message::Body::TaskResult(TaskResult {
            task_id: task.task_id.clone(),
            status: task_status_to_wire(done.end).into(),
            exit_code: done.exit_code,
            result_json: done.answer.unwrap_or_default(),
            error: done.error.as_ref().map(task_error_to_wire),
            started_at_unix_ms: started,
            finished_at_unix_ms: now(),
            truncated: done.truncated,
        })),
    };
    let _ = tx.send(message).await;
}
