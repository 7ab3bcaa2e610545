//! What the agent can do when central asks, by capability name. The owner's local policy is
//! checked here, on the host, whatever central decided.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::classifier::{Classification, CommandClass, RulesChecker, classify};
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
/// This agent's final verdict on a command (its files checked here), without running it.
pub const COMMAND_CLASSIFY: &str = "command.classify";
/// Run a managed or inline script (an approved action).
pub const SCRIPT_RUN: &str = "script.run";

/// The capabilities this agent offers, as announced in `Hello`.
pub const ALL: &[&str] = &[
    HOST_METRICS,
    COMMAND_RUN,
    COMMAND_CLASSIFY,
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

/// Runs a capability. `action` says whether the task carries an action id, `approved` whether a
/// human approved that action (actions started at once as read-only were not); output chunks
/// (already redacted) go to `chunks`.
pub async fn invoke(
    ctx: &Context,
    capability: &str,
    params: &[u8],
    payload: &[u8],
    action: bool,
    approved: bool,
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
        COMMAND_RUN => run_command(ctx, params, action, approved, chunks).await,
        COMMAND_CLASSIFY => classify_command(ctx, params).await,
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

/// The final verdict on `command` on this host: the classifier's, with each file it reads checked
/// and opened as `mttrly_read_file` would (on the blocking pool). The open files come back in order.
async fn final_verdict(ctx: &Context, command: String) -> (Classification, Vec<std::fs::File>) {
    let verdict = classify(&command);
    if !verdict.depends_on_files() {
        return (verdict, Vec::new());
    }
    let rules = std::sync::Arc::clone(ctx.policy.files());
    let checked = tokio::task::spawn_blocking(move || {
        let mut checker = RulesChecker::new(&rules);
        let verdict = verdict.check_files(&mut checker);
        let files = checker.opened.into_iter().map(|f| f.file).collect::<Vec<_>>();
        (verdict, files)
    })
    .await;
    match checked {
        Ok(done) => done,
        Err(e) => {
            (Classification::needs_approval(format!("the file checks could not run on this server: {e}")), Vec::new())
        }
    }
}

/// `command.classify`: what this agent would decide for a command, so central can tell "run at
/// once" from "pending" before it creates the action (central cannot check files itself).
async fn classify_command(ctx: &Context, params: &[u8]) -> Done {
    #[derive(serde::Deserialize)]
    struct Params {
        command: String,
    }
    let Ok(Params { command }) = serde_json::from_slice::<Params>(params) else {
        return Done::failed(MttrlyError::new(ErrorCode::ValidationError, "command.classify expects {\"command\": …}"));
    };
    let (verdict, _files) = final_verdict(ctx, command).await;
    Done::ok(serde_json::to_value(verdict).unwrap_or_default())
}

async fn run_command(
    ctx: &Context,
    params: &[u8],
    action: bool,
    approved: bool,
    chunks: &mpsc::Sender<String>,
) -> Done {
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
    // Read-only commands run without a shell, exactly as classified here (not as central said),
    // reading the descriptors checked and opened here (`/dev/fd/N`), never the paths again.
    let (verdict, files) = final_verdict(ctx, command.clone()).await;
    let program =
        match verdict.argv_with_files(|i| format!("/dev/fd/{}", exec::FIRST_FD + i32::try_from(i).unwrap_or(0))) {
            Some(argv) if verdict.class == CommandClass::ReadOnly => Program::Argv(argv),
            _ if approved => Program::Shell(command),
            _ => {
                // Sent to run at once but not read-only here (another policy, a file swapped since
                // central asked): it never falls through to a shell.
                tracing::warn!(reason = %verdict.reason, "refused an unapproved command that is not read-only here");
                return Done::failed(
                    denied(format!(
                        "this command needs a human's approval on this server, and none was given: {}",
                        verdict.reason
                    ))
                    .with_detail("requires_approval", true),
                );
            }
        };
    let limits = Limits {
        timeout: Duration::from_secs(u64::from(timeout_seconds.clamp(1, 3600))),
        max_lines: ctx.policy.max_output_lines,
        ..Limits::default()
    };
    let files = if matches!(program, Program::Argv(_)) { files } else { Vec::new() };
    finish(exec::run_with_files(&program, files, limits, ctx.policy.run_as(), chunks).await, timeout_seconds, "command")
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
                // A non-zero exit is the command's answer, not an error of mttrly: the status says
                // `failed` and `exit_code` says how. Only a process that never exited is an error.
                TaskStatus::Failed if out.exit_code.is_some() => None,
                TaskStatus::Failed => Some(MttrlyError::new(
                    ErrorCode::UnknownError,
                    format!("the {what} was killed by a signal before it exited"),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn context(dir: &Path) -> Context {
        let policy_file = dir.join("policy.toml");
        std::fs::write(&policy_file, format!("file_roots = [\"{}/logs/**\"]\n", dir.display())).unwrap();
        Context {
            collector: Arc::new(Mutex::new(MetricsCollector::new().unwrap())),
            policy: Arc::new(LocalPolicy::load(&policy_file).unwrap()),
        }
    }

    async fn call(ctx: &Context, capability: &str, params: &Value, approved: bool) -> (Done, String) {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let drain = tokio::spawn(async move {
            let mut out = String::new();
            while let Some(chunk) = rx.recv().await {
                out.push_str(&chunk);
            }
            out
        });
        let done = invoke(ctx, capability, &serde_json::to_vec(params).unwrap(), &[], true, approved, &tx).await;
        drop(tx);
        (done, drain.await.unwrap())
    }

    fn command(line: String) -> Value {
        serde_json::to_value(ActionContent::Command { command: line, timeout_seconds: 10 }).unwrap()
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::write(root.join("logs/app.log"), "GOOD\n").unwrap();
        std::fs::write(root.join("secret.txt"), "SECRET\n").unwrap();
        (dir, root)
    }

    #[tokio::test]
    async fn an_unapproved_command_that_is_not_read_only_here_never_reaches_a_shell() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let marker = root.join("marker");
        for line in [
            format!("touch {}", marker.display()),
            format!("ss -D{}", marker.display()),
            format!("cat {}", root.join("secret.txt").display()),
        ] {
            let (done, output) = call(&ctx, COMMAND_RUN, &command(line.clone()), false).await;
            assert_eq!(done.status, TaskStatus::Failed, "{line}");
            let error = done.error.unwrap();
            assert_eq!(error.code(), ErrorCode::PolicyDenied, "{line}");
            assert!(error.message().contains("approval"), "{line}: {}", error.message());
            assert!(!output.contains("SECRET"), "{line}");
        }
        assert!(!marker.exists());
        // Approved by a human, the same command runs through the shell.
        let (done, _) = call(&ctx, COMMAND_RUN, &command(format!("touch {}", marker.display())), true).await;
        assert_eq!(done.status, TaskStatus::Succeeded);
        assert!(marker.exists());
    }

    #[tokio::test]
    async fn classify_answers_the_final_verdict_and_read_only_commands_read_the_checked_file() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let log = root.join("logs/app.log");
        let (done, _) = call(&ctx, COMMAND_CLASSIFY, &json_command(&format!("cat {}", log.display())), false).await;
        assert_eq!(done.result["class"], "read_only", "{}", done.result);
        assert_eq!(done.result["files"], serde_json::json!([log.display().to_string()]));
        let outside = format!("cat {}", root.join("secret.txt").display());
        let (done, _) = call(&ctx, COMMAND_CLASSIFY, &json_command(&outside), false).await;
        assert_eq!(done.result["class"], "needs_approval", "{}", done.result);
        let (done, output) = call(&ctx, COMMAND_RUN, &command(format!("cat {}", log.display())), false).await;
        assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
        assert_eq!(output, "GOOD\n");
    }

    fn json_command(line: &str) -> Value {
        serde_json::json!({ "command": line })
    }

    /// Check-then-swap: while the log is swapped back and forth between a regular file and a
    /// symlink to a secret, every unapproved `cat` either reads the checked regular file or is
    /// refused; the secret never comes out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_swapped_around_the_check_never_leaks() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let log = root.join("logs/app.log");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (stop, root, log) = (Arc::clone(&stop), root.clone(), log.clone());
            std::thread::spawn(move || {
                let (tmp_link, tmp_file) = (root.join("logs/.swap-link"), root.join("logs/.swap-file"));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::os::unix::fs::symlink(root.join("secret.txt"), &tmp_link);
                    let _ = std::fs::rename(&tmp_link, &log);
                    let _ = std::fs::write(&tmp_file, "GOOD\n");
                    let _ = std::fs::rename(&tmp_file, &log);
                }
            })
        };
        let (mut ran, mut refused) = (0, 0);
        for _ in 0..60 {
            let (done, output) = call(&ctx, COMMAND_RUN, &command(format!("cat {}", log.display())), false).await;
            assert!(!output.contains("SECRET"), "the secret leaked: {output}");
            match done.status {
                TaskStatus::Succeeded => {
                    assert_eq!(output, "GOOD\n");
                    ran += 1;
                }
                _ => refused += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(ran + refused, 60);
    }
}
