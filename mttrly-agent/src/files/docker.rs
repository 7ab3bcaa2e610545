//! The Docker read targets of `file.read`: a container's logs and the image list, through the
//! Docker CLI (no shell, a fixed argv, capped by time), redacted like any file.

use std::time::Duration;

use mttrly_core::capability::FileTail;
use mttrly_core::{ErrorCode, MttrlyError};

use super::redact::Redactions;
use super::{bad, blocking};

/// How long a Docker CLI call may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The most of the CLI's first stderr line an error repeats.
const REASON_CHARS: usize = 300;

/// What one Docker CLI call printed.
struct Printed {
    stdout: String,
    stderr: String,
    success: bool,
}

impl Printed {
    /// The CLI's own reason for failing: its first stderr line, cut to [`REASON_CHARS`].
    fn reason(&self, fallback: &str) -> String {
        self.stderr.lines().next().unwrap_or(fallback).chars().take(REASON_CHARS).collect()
    }
}

fn missing() -> MttrlyError {
    MttrlyError::new(ErrorCode::DockerNotAvailable, "Docker is not installed on this server (no `docker` on PATH)")
}

/// Runs the Docker CLI with `args` (no shell), capped by [`TIMEOUT`].
async fn docker(args: &[&str]) -> Result<Printed, MttrlyError> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = match tokio::time::timeout(TIMEOUT, cmd.output()).await {
        Err(_) => return Err(MttrlyError::new(ErrorCode::Timeout, "the Docker CLI did not answer within 15 s")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Ok(Err(e)) => return Err(MttrlyError::new(ErrorCode::InternalError, format!("cannot run docker: {e}"))),
        Ok(Ok(out)) => out,
    };
    Ok(Printed {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    })
}

/// A container name or id as Docker spells them; never an option (`-…`).
fn valid_container(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The last `lines` lines of `text`, redacted as one text so a key's body lines are judged with
/// the lines around them.
fn last_lines(source: &str, text: &str, lines: usize) -> FileTail {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let kept = &all[start..];
    let mut redactions = Redactions::default();
    let content = redactions.text(&kept.join("\n"));
    FileTail {
        source: source.to_owned(),
        content,
        line_count: u32::try_from(kept.len()).unwrap_or(u32::MAX),
        truncated: start > 0,
        size_bytes: None,
        redactions: redactions.counts(),
    }
}

/// `docker logs --tail LINES -- CONTAINER`.
pub(super) async fn logs(container: &str, lines: usize) -> Result<FileTail, MttrlyError> {
    if !valid_container(container) {
        return Err(
            bad(format!("`{container}` is not a container name or id")).with_detail("field", "target.container")
        );
    }
    let tail = lines.to_string();
    let printed = docker(&["logs", "--tail", &tail, "--", container]).await?;
    if !printed.success {
        let reason = printed.reason("docker logs failed");
        let code = if reason.contains("No such container") { ErrorCode::NotFound } else { ErrorCode::UnknownError };
        return Err(MttrlyError::new(code, reason).with_detail("container", container));
    }
    // `docker logs` writes the container's stderr to its stderr: both are the log.
    let Printed { mut stdout, stderr, .. } = printed;
    stdout.push_str(&stderr);
    // Redacting up to 500 lines of arbitrary length is CPU work: off the runtime.
    let source = format!("docker_logs:{container}");
    blocking(move || Ok(last_lines(&source, &stdout, lines))).await
}

/// `docker images`, one image a line.
pub(super) async fn images(lines: usize) -> Result<FileTail, MttrlyError> {
    let printed =
        docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedSince}}"]).await?;
    if !printed.success {
        return Err(MttrlyError::new(ErrorCode::UnknownError, printed.reason("docker images failed")));
    }
    blocking(move || Ok(last_lines("docker_images", &printed.stdout, lines))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_docker_names_and_never_options() {
        for ok in ["web", "web-1", "app_db.2", "3f2a9c"] {
            assert!(valid_container(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for refused in ["", "-f", "--since=1h", "web 1", "web;ls", "../x", long.as_str()] {
            assert!(!valid_container(refused), "{refused}");
        }
    }

    #[test]
    fn the_last_lines_are_kept_and_redacted_as_one_text() {
        let text = "one\ntwo\npassword=hunter2\nfour\n";
        let kept = last_lines("docker_logs:web", text, 2);
        assert_eq!(kept.line_count, 2);
        assert!(kept.truncated);
        assert!(!kept.content.contains("hunter2") && kept.content.ends_with("four"), "{}", kept.content);
        assert!(!kept.redactions.is_empty(), "{:?}", kept.redactions);
        let all = last_lines("docker_images", "a\nb", 10);
        assert_eq!((all.line_count, all.truncated, all.content.as_str()), (2, false, "a\nb"));
    }
}
