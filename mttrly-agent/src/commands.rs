//! `command.run`, `command.classify` and `script.run`: commands and scripts on this host. A
//! command's final verdict is the classifier's with the files it reads checked and opened here; a
//! read-only command runs without a shell on those descriptors, anything else only after a human
//! approved it. Scripts are the owner's managed ones or an approved inline body.

use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{End, Outcome, ProcessRun};
use mttrly_core::classifier::{Classification, CommandClass, RulesChecker, classify};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::exec::{self, Limits, Program};
use crate::policy::LocalPolicy;
use crate::task::{Task, denied, require_action};

/// `script.run`: an approved managed or inline script.
pub async fn run_script(policy: &LocalPolicy, task: &Task<'_>, content: ActionContent) -> Outcome<ProcessRun> {
    use mttrly_core::tools::commands::ScriptSource;
    if let Err(refused) = require_action(task, "scripts run only as actions a human approved") {
        return refused;
    }
    let ActionContent::Script { script, args, timeout_seconds } = content else {
        return Outcome::failed(MttrlyError::new(ErrorCode::ValidationError, "script.run expects a script action"));
    };
    let argv: Vec<String> = match script {
        ScriptSource::Managed { name } => {
            let Some(path) = policy.managed_scripts.get(name.as_str()) else {
                return Outcome::failed(
                    denied(format!("`{name}` is not one of this server's managed scripts"))
                        .with_detail("script", name.as_str()),
                );
            };
            // A regular file, not a symlink swapped in: the owner named a file, not a pointer.
            match tokio::fs::symlink_metadata(path).await {
                Ok(m) if m.file_type().is_file() => {}
                _ => {
                    return Outcome::failed(denied(format!("managed script `{name}` ({path}) is not a regular file")));
                }
            }
            std::iter::once(path.clone()).chain(args).collect()
        }
        ScriptSource::Inline { content } => {
            if !policy.commands_enabled {
                return Outcome::failed(denied(
                    "this server's local policy disables command execution (inline scripts)",
                ));
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
        max_lines: policy.max_output_lines,
        ..Limits::default()
    };
    finish(exec::run(&Program::Argv(argv), limits, policy.run_as(), task.chunks).await, timeout_seconds, "script")
}

/// The final verdict on `command` on this host: the classifier's, with each file it reads checked
/// and opened as `mttrly_read_file` would (on the blocking pool). The open files come back in order.
pub async fn final_verdict(policy: &LocalPolicy, command: String) -> (Classification, Vec<std::fs::File>) {
    let verdict = classify(&command);
    if !verdict.depends_on_files() {
        return (verdict, Vec::new());
    }
    let rules = std::sync::Arc::clone(policy.files());
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

/// `command.run`: read-only here runs at once without a shell; anything else needs the human's
/// approval the task carries.
pub async fn run_command(policy: &LocalPolicy, task: &Task<'_>, content: ActionContent) -> Outcome<ProcessRun> {
    if !policy.commands_enabled {
        return Outcome::failed(denied("this server's local policy disables command execution"));
    }
    if let Err(refused) = require_action(task, "commands run only as actions (with an action id central approved)") {
        return refused;
    }
    let ActionContent::Command { command, timeout_seconds } = content else {
        return Outcome::failed(MttrlyError::new(ErrorCode::ValidationError, "command.run expects a command action"));
    };
    // Read-only commands run without a shell, exactly as classified here (not as central said),
    // reading the descriptors checked and opened here (`/dev/fd/N`), never the paths again.
    let (verdict, files) = final_verdict(policy, command.clone()).await;
    let program =
        match verdict.argv_with_files(|i| format!("/dev/fd/{}", exec::FIRST_FD + i32::try_from(i).unwrap_or(0))) {
            Some(argv) if verdict.class == CommandClass::ReadOnly => Program::Argv(argv),
            _ if task.approved => Program::Shell(command),
            _ => {
                // Sent to run at once but not read-only here (another policy, a file swapped since
                // central asked): it never falls through to a shell.
                tracing::warn!(reason = %verdict.reason, "refused an unapproved command that is not read-only here");
                return Outcome::failed(
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
        max_lines: policy.max_output_lines,
        ..Limits::default()
    };
    let files = if matches!(program, Program::Argv(_)) { files } else { Vec::new() };
    finish(
        exec::run_with_files(&program, files, limits, policy.run_as(), task.chunks).await,
        timeout_seconds,
        "command",
    )
}

/// Turns a finished process into the task's outcome.
fn finish(run: std::io::Result<exec::Outcome>, timeout_seconds: u32, what: &str) -> Outcome<ProcessRun> {
    match run {
        Err(e) => Outcome::failed(MttrlyError::new(ErrorCode::InternalError, format!("cannot start the {what}: {e}"))),
        Ok(out) => {
            let end = match (out.timed_out, out.exit_code) {
                (true, _) => End::TimedOut,
                (false, Some(0)) => End::Succeeded,
                _ => End::Failed,
            };
            let error = match end {
                End::TimedOut => Some(
                    MttrlyError::new(ErrorCode::Timeout, format!("killed after {timeout_seconds}s"))
                        .with_detail("timeout_seconds", timeout_seconds),
                ),
                // A non-zero exit is the command's answer, not an error of mttrly: the status says
                // `failed` and `exit_code` says how. Only a process that never exited is an error.
                End::Failed if out.exit_code.is_some() => None,
                End::Failed => Some(MttrlyError::new(
                    ErrorCode::UnknownError,
                    format!("the {what} was killed by a signal before it exited"),
                )),
                End::Succeeded => None,
            };
            Outcome {
                end,
                exit_code: out.exit_code,
                answer: Some(ProcessRun { duration_ms: u64::try_from(out.duration.as_millis()).unwrap_or(u64::MAX) }),
                truncated: out.truncated,
                error,
            }
        }
    }
}
