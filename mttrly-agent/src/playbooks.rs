//! Playbooks on the host: which are available here, what a run would do, and the run itself.
//!
//! Availability is decided here, where the truth is: the owner's `allowed_playbooks`, and whether
//! the programs a playbook needs exist. A run re-validates its parameters against this agent's
//! definition, runs the prechecks (a failure changes nothing), then the steps in order (the first
//! failure stops), then the verification, each as an argv without a shell, inside one deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{
    End, Outcome, Phase, PlaybookOffer, PlaybookOffers, PlaybookPlanParams, PlaybookPlanned, PlaybookRan, StepRan,
};
use mttrly_core::playbook::{Catalog, Playbook, Step};
use mttrly_core::{ErrorCode, MttrlyError};
use tokio::sync::mpsc;

use crate::exec::{self, Limits, Program};
use crate::policy::LocalPolicy;

/// Whether `program` is an executable in `search_path` (or an absolute path to one).
fn on_path(program: &str, search_path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.starts_with('/') {
        return executable(Path::new(program));
    }
    std::env::split_paths(search_path).any(|dir| executable(&dir.join(program)))
}

/// Why a playbook cannot run here, if it cannot. Programs are looked for where commands will
/// look for them (the agent's fixed command `PATH`).
fn unavailable(policy: &LocalPolicy, p: &Playbook) -> Option<MttrlyError> {
    unavailable_in(policy, p, exec::COMMAND_PATH)
}

fn unavailable_in(policy: &LocalPolicy, p: &Playbook, search_path: &str) -> Option<MttrlyError> {
    if !policy.allowed_playbooks.is_empty() && !policy.allowed_playbooks.iter().any(|a| a == p.id.as_str()) {
        return Some(
            MttrlyError::new(
                ErrorCode::PlaybookNotAvailable,
                format!("`{}` is not in this server's allowed_playbooks", p.id),
            )
            .with_detail("playbook_id", p.id.as_str()),
        );
    }
    let missing: Vec<&str> = p.requires.iter().map(String::as_str).filter(|r| !on_path(r, search_path)).collect();
    if missing.contains(&"docker") {
        return Some(
            MttrlyError::new(
                ErrorCode::DockerNotAvailable,
                format!("`{}` needs Docker, which is not installed here", p.id),
            )
            .with_detail("playbook_id", p.id.as_str()),
        );
    }
    if !missing.is_empty() {
        return Some(
            MttrlyError::new(
                ErrorCode::PlaybookNotAvailable,
                format!("`{}` needs {} which this server does not have", p.id, missing.join(", ")),
            )
            .with_detail("playbook_id", p.id.as_str())
            .with_detail("missing", missing),
        );
    }
    None
}

fn catalog(policy: &LocalPolicy) -> &Catalog {
    policy.playbooks()
}

/// The catalog, each entry with `available` and, when not, why.
pub fn list(policy: &LocalPolicy) -> PlaybookOffers {
    let playbooks = catalog(policy)
        .all()
        .into_iter()
        .map(|p| {
            let why = unavailable(policy, p);
            PlaybookOffer {
                summary: p.summary(),
                available: why.is_none(),
                code: why.as_ref().map(MttrlyError::code),
                reason: why.as_ref().map(|e| e.message().to_owned()),
            }
        })
        .collect();
    PlaybookOffers { playbooks }
}

/// Validates a run and returns exactly what it would execute.
pub fn plan(policy: &LocalPolicy, p: &PlaybookPlanParams) -> Result<PlaybookPlanned, MttrlyError> {
    let playbook = catalog(policy).find(&p.playbook_id)?;
    if let Some(why) = unavailable(policy, playbook) {
        return Err(why);
    }
    let parameters = playbook.validate(&p.parameters)?;
    let rendered = playbook.render(&parameters);
    Ok(PlaybookPlanned {
        playbook_id: playbook.id.clone(),
        name: playbook.name.clone(),
        requires_approval: playbook.requires_approval,
        blast_radius: playbook.blast_radius.clone(),
        timeout_seconds: playbook.timeout_seconds,
        parameters,
        rendered,
    })
}

fn failed(error: MttrlyError) -> Outcome<PlaybookRan> {
    Outcome::failed(error)
}

/// Runs an approved (or read-only) playbook action.
pub async fn run(policy: &LocalPolicy, content: ActionContent, chunks: &mpsc::Sender<String>) -> Outcome<PlaybookRan> {
    let ActionContent::Playbook { playbook_id, parameters } = content else {
        return failed(MttrlyError::new(ErrorCode::ValidationError, "playbook.run expects a playbook action"));
    };
    let playbook = match catalog(policy).find(&playbook_id) {
        Ok(p) => p.clone(),
        Err(e) => return failed(e),
    };
    if let Some(why) = unavailable(policy, &playbook) {
        return failed(why);
    }
    let parameters = match playbook.validate(&parameters) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let rendered = playbook.render(&parameters);
    let deadline = Instant::now() + Duration::from_secs(u64::from(playbook.timeout_seconds));
    let mut truncated = false;
    let mut ran: Vec<StepRan> = Vec::new();
    let phases: [(Phase, Vec<Step>); 3] = [
        (Phase::Precheck, rendered.prechecks.clone()),
        (Phase::Step, rendered.steps.clone()),
        (Phase::Verify, rendered.verify.clone().into_iter().collect()),
    ];
    for (phase, steps) in phases {
        for step in steps {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Outcome {
                    end: End::TimedOut,
                    exit_code: None,
                    answer: Some(PlaybookRan { steps: ran }),
                    truncated,
                    error: Some(MttrlyError::new(
                        ErrorCode::Timeout,
                        format!("`{}` ran out of its {}s deadline", playbook.id, playbook.timeout_seconds),
                    )),
                };
            }
            let _ = chunks.send(format!("$ {}\n", step.argv.join(" "))).await;
            let limits = Limits { timeout: left, max_lines: policy.max_output_lines, ..Limits::default() };
            let out = match exec::run(&Program::Argv(step.argv.clone()), limits, policy.run_as(), chunks).await {
                Ok(out) => out,
                Err(e) => {
                    return failed(MttrlyError::new(
                        ErrorCode::InternalError,
                        format!("cannot start `{}`: {e}", step.argv[0]),
                    ));
                }
            };
            truncated |= out.truncated;
            let ok = !out.timed_out && out.exit_code.is_some_and(|c| step.ok_exit_codes.contains(&c));
            ran.push(StepRan { phase, argv: step.argv.clone(), exit_code: out.exit_code, ok });
            if !ok {
                let (end, code) = if out.timed_out {
                    (End::TimedOut, ErrorCode::Timeout)
                } else {
                    (End::Failed, ErrorCode::UnknownError)
                };
                let (what, phase_name) = match phase {
                    Phase::Precheck => ("a precheck failed, so nothing was changed", "precheck"),
                    Phase::Verify => ("the steps ran but the verification failed", "verify"),
                    Phase::Step => ("a step failed; the remaining steps did not run", "step"),
                };
                return Outcome {
                    end,
                    exit_code: out.exit_code,
                    answer: Some(PlaybookRan { steps: ran }),
                    truncated,
                    error: Some(
                        MttrlyError::new(code, format!("`{}`: {what} (`{}`)", playbook.id, step.argv.join(" ")))
                            .with_detail("phase", phase_name),
                    ),
                };
            }
        }
    }
    Outcome {
        end: End::Succeeded,
        exit_code: Some(0),
        answer: Some(PlaybookRan { steps: ran }),
        truncated,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::tools::playbooks::PlaybookId;

    use super::*;

    #[test]
    fn docker_playbooks_say_docker_is_missing_and_policy_restricts() {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = tempfile::tempdir().unwrap();
        let search = bin.path().display().to_string();
        let policy = LocalPolicy::default();
        let id = PlaybookId::new("restart-docker-container").unwrap();
        let docker = policy.playbooks().find(&id).unwrap();
        let err = unavailable_in(&policy, docker, &search).unwrap();
        assert_eq!(err.code(), ErrorCode::DockerNotAvailable);
        // With a `docker` executable on the path it is available.
        let fake = bin.path().join("docker");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(unavailable_in(&policy, docker, &search).is_none());
        // Another missing program: PLAYBOOK_NOT_AVAILABLE naming it.
        let nginx = policy.playbooks().find(&PlaybookId::new("test-nginx-config").unwrap()).unwrap();
        let err = unavailable_in(&policy, nginx, &search).unwrap();
        assert_eq!(err.code(), ErrorCode::PlaybookNotAvailable);
        assert!(err.message().contains("nginx"), "{err}");
    }
}
