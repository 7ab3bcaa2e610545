//! What the agent can do when central asks, by capability name. The owner's local policy is
//! checked here, on the host, whatever central decided.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::classifier::{CommandClass, classify};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::TaskStatus;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::exec::{self, Limits, Program};
use crate::metrics::MetricsCollector;
use crate::policy::LocalPolicy;

/// Fresh host metrics, on demand.
pub const HOST_METRICS: &str = "host.metrics";
/// Run a command (always as an action: read-only ones auto-approved, others approved by a human).
pub const COMMAND_RUN: &str = "command.run";
/// Run a managed or inline script (an approved action).
pub const SCRIPT_RUN: &str = "script.run";

/// The capabilities this agent offers, as announced in `Hello`.
pub const ALL: &[&str] = &[
    HOST_METRICS,
    COMMAND_RUN,
    SCRIPT_RUN,
    crate::files::FILE_READ,
    crate::files::FILE_READ_PRIVILEGED,
    crate::files::FILE_SEARCH,
    crate::files::FILE_DIFF,
    crate::files::FILE_WRITE,
    crate::files::FILE_CLEANUP,
    crate::playbooks::PLAYBOOK_LIST,
    crate::playbooks::PLAYBOOK_PLAN,
    crate::playbooks::PLAYBOOK_RUN,
    crate::diagnostics::DIAGNOSTIC_RUN,
    crate::diagnostics::REALITY_DISCOVER,
];

/// What capabilities share.
pub struct Context {
    /// The metrics sampler.
    pub collector: Arc<Mutex<MetricsCollector>>,
    /// The owner's policy.
    pub policy: Arc<LocalPolicy>,
}

/// How a capability ended.
#[derive(Debug)]
pub struct Done {
    /// The task status.
    pub status: TaskStatus,
    /// The exit code, for processes.
    pub exit_code: Option<i32>,
    /// Structured result.
    pub result: Value,
    /// Whether output was cut.
    pub truncated: bool,
    /// Why it failed.
    pub error: Option<MttrlyError>,
}

impl Done {
    pub(crate) fn ok(result: Value) -> Self {
        Self { status: TaskStatus::Succeeded, exit_code: None, result, truncated: false, error: None }
    }

    pub(crate) fn failed(error: MttrlyError) -> Self {
        Self { status: TaskStatus::Failed, exit_code: None, result: Value::Null, truncated: false, error: Some(error) }
    }
}

fn denied(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message)
}

/// Runs a capability. `action` says whether the task carries an approved action id; output
/// chunks (already redacted) go to `chunks`.
pub async fn invoke(
    ctx: &Context,
    capability: &str,
    params: &[u8],
    payload: &[u8],
    action: bool,
    chunks: &mpsc::Sender<String>,
) -> Done {
    match capability {
        HOST_METRICS => {
            let collector = Arc::clone(&ctx.collector);
            match tokio::task::spawn_blocking(move || collector.lock().unwrap_or_else(PoisonError::into_inner).sample())
                .await
            {
                Ok(sample) => {
                    let metrics = mttrly_proto::convert::metrics_from_wire(&sample, jiff::Timestamp::now());
                    Done::ok(serde_json::to_value(metrics).unwrap_or_default())
                }
                Err(e) => {
                    Done::failed(MttrlyError::new(ErrorCode::InternalError, format!("metrics sampling failed: {e}")))
                }
            }
        }
        COMMAND_RUN => run_command(ctx, params, action, chunks).await,
        SCRIPT_RUN => run_script(ctx, params, action, chunks).await,
        crate::diagnostics::DIAGNOSTIC_RUN | crate::diagnostics::REALITY_DISCOVER
            if !ctx.policy.diagnostics_enabled =>
        {
            Done::failed(denied("this server's local policy disables diagnostics and discovery"))
        }
        crate::diagnostics::DIAGNOSTIC_RUN => {
            match crate::diagnostics::diagnose(&ctx.policy, &ctx.collector, params).await {
                Ok(v) => Done::ok(v),
                Err(e) => Done::failed(e),
            }
        }
        crate::diagnostics::REALITY_DISCOVER => match crate::diagnostics::discover(&ctx.policy).await {
            Ok(v) => Done::ok(v),
            Err(e) => Done::failed(e),
        },
        crate::playbooks::PLAYBOOK_LIST => Done::ok(crate::playbooks::list(&ctx.policy)),
        crate::playbooks::PLAYBOOK_PLAN => match crate::playbooks::plan(&ctx.policy, params) {
            Ok(plan) => Done::ok(plan),
            Err(e) => Done::failed(e),
        },
        crate::playbooks::PLAYBOOK_RUN => {
            if !action {
                return Done::failed(denied("playbooks run only as actions (with an action id central approved)"));
            }
            crate::playbooks::run(&ctx.policy, params, chunks).await
        }
        crate::files::FILE_WRITE | crate::files::FILE_CLEANUP => {
            if !action {
                return Done::failed(denied("file changes run only as actions a human approved"));
            }
            match crate::files::change(ctx.policy.files(), params, payload).await {
                Ok(result) => Done::ok(result),
                Err(e) => Done::failed(e),
            }
        }
        crate::files::FILE_READ
        | crate::files::FILE_READ_PRIVILEGED
        | crate::files::FILE_SEARCH
        | crate::files::FILE_DIFF => match crate::files::invoke(ctx.policy.files(), capability, params).await {
            Ok(result) => Done::ok(result),
            Err(e) => Done::failed(e),
        },
        other => Done::failed(
            denied(format!("this agent does not offer the capability `{other}`")).with_detail("capability", other),
        ),
    }
}

async fn run_script(ctx: &Context, params: &[u8], action: bool, chunks: &mpsc::Sender<String>) -> Done {
    use mttrly_core::tools::commands::ScriptSource;
    if !action {
        return Done::failed(denied("scripts run only as actions a human approved"));
    }
    let Ok(ActionContent::Script { script, args, timeout_seconds }) = serde_json::from_slice::<ActionContent>(params)
    else {
        return Done::failed(MttrlyError::new(ErrorCode::ValidationError, "script.run expects a script action"));
    };
    let argv: Vec<String> = match script {
        ScriptSource::Managed { name } => {
            let Some(path) = ctx.policy.managed_scripts.get(name.as_str()) else {
                return Done::failed(
                    denied(format!("`{name}` is not one of this server's managed scripts"))
                        .with_detail("script", name.as_str()),
                );
            };
            // A regular file, not a symlink swapped in: the owner named a file, not a pointer.
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_file() => {}
                _ => {
                    return Done::failed(denied(format!("managed script `{name}` ({path}) is not a regular file")));
                }
            }
            std::iter::once(path.clone()).chain(args).collect()
        }
        ScriptSource::Inline { content } => {
            if !ctx.policy.commands_enabled {
                return Done::failed(denied("this server's local policy disables command execution (inline scripts)"));
            }
            // `sh -c BODY NAME ARGS...`: the arguments arrive as $1, $2, ... and are never parsed.
            ["/bin/sh".to_owned(), "-c".to_owned(), content.into_inner(), "mttrly-script".to_owned()]
                .into_iter()
                .chain(args)
                .collect()
        }
    };
    let limits = Limits {
        timeout: Duration::from_secs(u64::from(timeout_seconds.clamp(1, 3600))),
        max_lines: ctx.policy.max_output_lines,
        ..Limits::default()
    };
    finish(exec::run(&Program::Argv(argv), limits, ctx.policy.run_as(), chunks).await, timeout_seconds, "script")
}

async fn run_command(ctx: &Context, params: &[u8], action: bool, chunks: &mpsc::Sender<String>) -> Done {
    if !ctx.policy.commands_enabled {
        return Done::failed(denied("this server's local policy disables command execution"));
    }
    if !action {
        return Done::failed(denied("commands run only as actions (with an action id central approved)"));
    }
    let Ok(ActionContent::Command { command, timeout_seconds }) = serde_json::from_slice::<ActionContent>(params)
    else {
        return Done::failed(MttrlyError::new(ErrorCode::ValidationError, "command.run expects a command action"));
    };
    // Read-only commands run without a shell, exactly as classified here (not as central said).
    let program = match classify(&command) {
        c if c.class == CommandClass::ReadOnly => Program::Argv(c.argv.unwrap_or_default()),
        _ => Program::Shell(command),
    };
    let limits = Limits {
        timeout: Duration::from_secs(u64::from(timeout_seconds.clamp(1, 3600))),
        max_lines: ctx.policy.max_output_lines,
        ..Limits::default()
    };
    finish(exec::run(&program, limits, ctx.policy.run_as(), chunks).await, timeout_seconds, "command")
}

/// Turns a finished process into the task's outcome.
fn finish(run: std::io::Result<exec::Outcome>, timeout_seconds: u32, what: &str) -> Done {
    match run {
        Err(e) => Done::failed(MttrlyError::new(ErrorCode::InternalError, format!("cannot start the {what}: {e}"))),
        Ok(out) => {
            let status = match (out.timed_out, out.exit_code) {
                (true, _) => TaskStatus::TimedOut,
                (false, Some(0)) => TaskStatus::Succeeded,
                _ => TaskStatus::Failed,
            };
            let error = match status {
                TaskStatus::TimedOut => Some(
                    MttrlyError::new(ErrorCode::Timeout, format!("killed after {timeout_seconds}s"))
                        .with_detail("timeout_seconds", timeout_seconds),
                ),
                TaskStatus::Failed => Some(MttrlyError::new(
                    ErrorCode::UnknownError,
                    match out.exit_code {
                        Some(code) => format!("the {what} exited with status {code}"),
                        None => format!("the {what} was killed by a signal"),
                    },
                )),
                _ => None,
            };
            Done {
                status,
                exit_code: out.exit_code,
                result: serde_json::json!({ "duration_ms": u64::try_from(out.duration.as_millis()).unwrap_or(u64::MAX) }),
                truncated: out.truncated,
                error,
            }
        }
    }
}
