//! Running a command on the host: its own process group, a scrubbed environment, a deadline that
//! kills the whole group, and output capped by bytes and lines and redacted line by line before it
//! leaves the host.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::process::Command;
use tokio::sync::mpsc;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// An argv run directly, without a shell (read-only commands, exactly as classified).
    Argv(Vec<String>),
    /// A command line a human approved, run by `/bin/sh -c`.
    Shell(String),
}

/// Bounds on one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// Keep at most this many bytes of output.
    pub max_bytes: usize,
    /// Keep at most this many lines of output.
    pub max_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), max_bytes: 1024 * 1024, max_lines: 500 }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code, when the process exited normally.
    pub exit_code: Option<i32>,
    /// Whether it was killed at the deadline.
    pub timed_out: bool,
    /// Whether output was cut at a cap.
    pub truncated: bool,
    /// The kept output (stdout and stderr interleaved as they arrived), redacted.
    pub output: String,
    /// Wall-clock time.
    pub duration: Duration,
}

/// The `PATH` every command gets (and where playbook requirements are looked for).
pub const COMMAND_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment every command gets: nothing inherited from the agent (no secrets, no proxies),
/// pagers that cannot take over, no colour codes.
const ENV: &[(&str, &str)] = &[
    ("PATH", COMMAND_PATH),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("HOME", "/"),
    ("TERM", "dumb"),
    ("PAGER", "cat"),
    ("SYSTEMD_PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("SYSTEMD_COLORS", "0"),
    ("NO_COLOR", "1"),
];

/// Keeps output within the caps, redacting complete lines as they arrive.
struct Collector {
    limits: Limits,
    pending: Vec<u8>,
    kept: String,
    lines: usize,
    truncated: bool,
    /// Redacts each chunk with the lines before it as context (a key split across chunks).
    redactor: mttrly_core::redactor::StreamRedactor,
}

impl Collector {
    fn push(&mut self, bytes: &[u8]) -> Option<String> {
        if self.truncated {
            return None;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > self.limits.max_bytes {
            // One line longer than everything we keep: keep what fits of it, drop the rest.
            let all = std::mem::take(&mut self.pending);
            let kept = self.keep(&all[..self.limits.max_bytes.saturating_sub(self.kept.len())]);
            self.truncated = true;
            return kept;
        }
        let cut = self.pending.iter().rposition(|b| *b == b'\n')? + 1;
        let complete: Vec<u8> = self.pending.drain(..cut).collect();
        self.keep(&complete)
    }

    fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() || self.truncated {
            return None;
        }
        let rest = std::mem::take(&mut self.pending);
        self.keep(&rest)
    }

    fn keep(&mut self, bytes: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(bytes);
        let redacted = self.redactor.redact_chunk(&text);
        let mut accepted = String::new();
        for line in redacted.text.split_inclusive('\n') {
            if self.lines >= self.limits.max_lines || self.kept.len() + line.len() > self.limits.max_bytes {
                self.truncated = true;
                break;
            }
            self.kept.push_str(line);
            accepted.push_str(line);
            self.lines += 1;
        }
        (!accepted.is_empty()).then_some(accepted)
    }
}

fn signal_group(pid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        // The child leads its own process group, so this reaches everything it started.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Runs `program` within `limits`, sending each accepted (redacted) chunk of output to `chunks`.
/// `run_as` switches to that uid/gid first (the agent must be root for that).
pub async fn run(
    program: &Program,
    limits: Limits,
    run_as: Option<(u32, u32)>,
    chunks: &mpsc::Sender<String>,
) -> std::io::Result<Outcome> {
    run_with_files(program, Vec::new(), limits, run_as, chunks).await
}

/// The first descriptor number handed to a child: `files[i]` is open as `FIRST_FD + i` in the
/// child, which names it `/dev/fd/N`.
pub const FIRST_FD: i32 = 3;

/// Like [`run`], with `files` (already checked and opened by the agent) open in the child as
/// descriptors [`FIRST_FD`], [`FIRST_FD`]` + 1`, …: the command reads the very files that were
/// checked, whatever happens to their paths after the check. Nothing else the agent holds open is
/// inherited (every other descriptor stays close-on-exec).
pub async fn run_with_files(
    program: &Program,
    files: Vec<std::fs::File>,
    limits: Limits,
    run_as: Option<(u32, u32)>,
    chunks: &mpsc::Sender<String>,
) -> std::io::Result<Outcome> {
    use command_fds::{CommandFdExt as _, FdMapping};
    let started = Instant::now();
    let mut command = match program {
        Program::Argv(argv) => {
            let (first, rest) = argv.split_first().ok_or_else(|| std::io::Error::other("empty argv"))?;
            let mut c = Command::new(first);
            c.args(rest);
            c
        }
        Program::Shell(line) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
    };
    command
        .env_clear()
        .envs(ENV.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
    if !files.is_empty() {
        let mappings = files
            .into_iter()
            .zip(FIRST_FD..)
            .map(|(file, child_fd)| FdMapping { parent_fd: std::os::fd::OwnedFd::from(file), child_fd })
            .collect();
        command.fd_mappings(mappings).map_err(std::io::Error::other)?;
    }
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    for mut pipe in [child.stdout.take().map(Pipe::Out), child.stderr.take().map(Pipe::Err)].into_iter().flatten() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let mut collector = Collector {
        limits,
        pending: Vec::new(),
        kept: String::new(),
        lines: 0,
        truncated: false,
        redactor: mttrly_core::redactor::StreamRedactor::new(),
    };
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut timed_out = false;
    let mut status = None;
    let mut pipes_open = true;
    loop {
        tokio::select! {
            chunk = rx.recv(), if pipes_open => match chunk {
                Some(bytes) => {
                    if let Some(text) = collector.push(&bytes) {
                        let _ = chunks.send(text).await;
                    }
                }
                None => pipes_open = false,
            },
            exited = child.wait(), if status.is_none() => {
                status = Some(exited?);
                if !pipes_open {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline), if !timed_out => {
                timed_out = true;
                signal_group(pid, nix::sys::signal::Signal::SIGTERM);
                // A grace period, then nothing in the group survives.
                let grace = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                status = Some(match grace {
                    Ok(s) => s?,
                    Err(_) => child.wait().await?,
                });
                break;
            }
        }
        if status.is_some() && !pipes_open {
            break;
        }
    }
    if status.is_some() && !timed_out {
        // Grandchildren may still hold the pipes; do not wait for them past the exit.
        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
    }
    while let Ok(bytes) = rx.try_recv() {
        if let Some(text) = collector.push(&bytes) {
            let _ = chunks.send(text).await;
        }
    }
    if let Some(text) = collector.finish() {
        let _ = chunks.send(text).await;
    }
    Ok(Outcome {
        exit_code: status.and_then(|s| s.code()),
        timed_out,
        truncated: collector.truncated,
        output: collector.kept,
        duration: started.elapsed(),
    })
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

impl Pipe {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Out(p) => p.read(buf).await,
            Self::Err(p) => p.read(buf).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run_it(program: Program, limits: Limits) -> Outcome {
        let (tx, mut rx) = mpsc::channel(1024);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let out = run(&program, limits, None, &tx).await.unwrap();
        drop(tx);
        drain.await.unwrap();
        out
    }

    #[tokio::test]
    async fn runs_without_a_shell_and_with_a_scrubbed_environment() {
        let out = run_it(Program::Argv(vec!["/usr/bin/env".into()]), Limits::default()).await;
        assert_eq!(out.exit_code, Some(0));
        assert!(out.output.contains("PAGER=cat"));
        assert!(!out.output.contains("CARGO"), "the agent's environment is not inherited");
        let out = run_it(Program::Argv(vec!["/bin/echo".into(), "$(id)".into(), ";".into()]), Limits::default()).await;
        assert_eq!(out.output, "$(id) ;\n", "no shell interprets the argv");
    }

    #[tokio::test]
    async fn a_command_that_ignores_sigterm_is_killed_at_the_deadline() {
        let limits = Limits { timeout: Duration::from_millis(500), ..Limits::default() };
        let started = Instant::now();
        let out = run_it(Program::Shell("trap '' TERM; sleep 60 & sleep 60; wait".into()), limits).await;
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn output_floods_are_capped_and_secrets_redacted() {
        let limits = Limits { max_lines: 100, ..Limits::default() };
        let out = run_it(Program::Shell("yes DB_PASSWORD=hunter2hunter2 | head -n 200000".into()), limits).await;
        assert_eq!(out.exit_code, Some(0));
        assert!(out.truncated);
        assert_eq!(out.output.lines().count(), 100);
        assert!(!out.output.contains("hunter2"));
        let limits = Limits { max_bytes: 1000, ..Limits::default() };
        let out = run_it(Program::Shell("head -c 50000000 /dev/zero | tr '\\0' 'x'".into()), limits).await;
        assert!(out.truncated);
        assert!(out.output.len() <= 1000, "{}", out.output.len());
    }

    #[tokio::test]
    async fn the_child_reads_the_descriptor_it_was_given_not_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let (log, secret) = (dir.path().join("app.log"), dir.path().join("secret"));
        std::fs::write(&log, "CHECKED\n").unwrap();
        std::fs::write(&secret, "SWAPPED-IN\n").unwrap();
        let checked = std::fs::File::open(&log).unwrap();
        // The path now names another file; the descriptor still names the checked one.
        std::fs::rename(&secret, &log).unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let argv = Program::Argv(vec!["cat".into(), format!("/dev/fd/{FIRST_FD}")]);
        let out = run_with_files(&argv, vec![checked], Limits::default(), None, &tx).await.unwrap();
        drop(tx);
        drain.await.unwrap();
        assert_eq!(out.output, "CHECKED\n");
    }

    #[tokio::test]
    async fn exit_codes_and_stderr_are_kept() {
        let out = run_it(Program::Shell("echo out; echo err >&2; exit 3".into()), Limits::default()).await;
        assert_eq!(out.exit_code, Some(3));
        assert!(out.output.contains("out") && out.output.contains("err"));
    }
}
