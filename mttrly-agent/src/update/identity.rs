//! Which release this process is. A build knows its compiled version (`crate::VERSION`), but an
//! installed release is named by its signed manifest: a binary running from
//! `versions/<dir>/mttrly-agent` whose SHA-256 matches the verified `versions/<dir>/manifest.json`
//! beside it *is* that manifest's version. So the same build published as `99.0.0` reports
//! `99.0.0` once installed, and a tampered binary (or manifest) falls back to its compiled version.
//!
//! **The proof runs in a child process** ([`PROVE_IDENTITY`], this same binary): the agent starts
//! it, reads the version it prints and lets it exit. The proof touches code nothing else in an idle
//! agent runs (the manifest's JSON, Ed25519 with its SHA-512, SHA-256 over the whole binary), and
//! code once touched stays in a process's resident set for its life: done in the agent itself,
//! it kept ~0.4 MiB more resident in every agent that runs from a signed release (issue 16's idle
//! budget, BENCHMARKS.md). The child is the same file as the agent: it is started from
//! `/proc/self/exe` (the running inode, even if the path now names another file) and hashes its
//! own `/proc/self/exe`, so what is proved is what runs, and what it answers is only ever the
//! version to report.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use mttrly_core::release::{ReleaseBundle, ReleaseVersion, TrustedRoots, verify_identity};
use sha2::Digest as _;

use crate::install::layout::BINARY;

/// The file beside a version's binary that names it.
pub const MANIFEST: &str = "manifest.json";

/// The hidden subcommand that proves an installed release's identity (see the module doc).
pub const PROVE_IDENTITY: &str = "prove-identity";

/// How long the proof may take (it hashes the binary, ~0.1 s for 13 MB) before the agent reports
/// its compiled version instead of waiting further; well under a new version's trial
/// (`update::TRIAL`, 30 s), which must still have time to connect.
const PROOF_DEADLINE: Duration = Duration::from_secs(10);

/// The most of a manifest the proof reads (a signed manifest is about 1 KiB).
const MANIFEST_MAX: u64 = 64 * 1024;

/// The most of its reason the child prints, so its pipes never fill while the agent waits.
const REASON_MAX: usize = 1024;

/// This process's running executable: opening or executing it reaches the file that runs, even
/// after the path it was started from was replaced, renamed or deleted.
const SELF_EXE: &str = "/proc/self/exe";

/// What this process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The version reported to central.
    pub version: String,
    /// The version directory's name this binary runs from, when it runs from the versions
    /// directory (an installed agent); `None` for a binary run from anywhere else.
    pub version_dir: Option<String>,
}

impl Identity {
    /// Works out this process's identity from its executable and `versions` (the state
    /// directory's versions directory). Blocking: it waits for the proving child.
    pub fn detect(versions: &Path, roots: &TrustedRoots) -> Self {
        let compiled = Self { version: crate::VERSION.to_owned(), version_dir: None };
        let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else { return compiled };
        let Ok(versions) = std::fs::canonicalize(versions) else { return compiled };
        let Some(dir) = exe.parent() else { return compiled };
        if dir.parent() != Some(versions.as_path()) || exe.file_name().and_then(|n| n.to_str()) != Some(BINARY) {
            return compiled;
        }
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { return compiled };
        // A directory without a manifest is a version installed by hand: nothing to prove.
        let version = if dir.join(MANIFEST).exists() {
            prove_in_child(dir, roots).unwrap_or_else(|| crate::VERSION.to_owned())
        } else {
            crate::VERSION.to_owned()
        };
        Self { version, version_dir: Some(name) }
    }
}

/// Starts this binary as `prove-identity --dir DIR --roots KEYS`, waits for it (at most
/// [`PROOF_DEADLINE`]) and returns the version it proved. A failed proof is logged with the
/// child's reason.
fn prove_in_child(dir: &Path, roots: &TrustedRoots) -> Option<String> {
    let keys = roots.keys().iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
    let spawned = Command::new(SELF_EXE)
        .arg(PROVE_IDENTITY)
        .arg("--dir")
        .arg(dir)
        .arg("--roots")
        .arg(keys)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the identity proof; reporting the compiled version");
            return None;
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < PROOF_DEADLINE => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!("the identity proof took too long; reporting the compiled version");
                return None;
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(error = %e, "cannot wait for the identity proof; reporting the compiled version");
                return None;
            }
        }
    };
    // The child has exited: its pipes hold a line each (its reason is cut at `REASON_MAX`).
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the identity proof; reporting the compiled version");
            return None;
        }
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().chars().take(2048).collect::<String>();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    if !status.success() {
        tracing::warn!(dir = %dir.display(), reason = %stderr, "the installed release does not prove its identity; reporting the compiled version");
        return None;
    }
    match stdout.parse::<ReleaseVersion>() {
        Ok(version) => Some(version.to_string()),
        Err(e) => {
            tracing::warn!(output = %stdout, error = %e, "the identity proof answered no version; reporting the compiled version");
            None
        }
    }
}

/// The child's side (`mttrly-agent prove-identity`): prints the version of the release in `dir`
/// when this very binary is the one its manifest names and the manifest verifies under `roots`
/// (space-separated public keys); otherwise prints why on stderr and fails.
pub fn prove(dir: &Path, roots: &str) -> ExitCode {
    let proved =
        TrustedRoots::parse_list(roots).map_err(|e| format!("the trusted roots do not parse: {e}")).and_then(|roots| {
            // Where the running file is now; a deleted or renamed one is in no version directory.
            let exe = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .map_err(|e| format!("cannot find this binary: {e}"))?;
            released_version(dir, &exe, &roots)
        });
    match proved {
        Ok(version) => {
            println!("{version}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("{}", reason.chars().take(REASON_MAX).collect::<String>());
            ExitCode::FAILURE
        }
    }
}

/// The manifest's version when `dir/manifest.json` verifies under `roots` and names the bytes of
/// the running executable, which is `exe` in `dir`.
fn released_version(dir: &Path, exe: &Path, roots: &TrustedRoots) -> Result<String, String> {
    if exe.parent() != Some(dir) {
        return Err(format!("this binary ({}) is not in {}", exe.display(), dir.display()));
    }
    let text = read_manifest(&dir.join(MANIFEST)).map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
    let bundle: ReleaseBundle =
        serde_json::from_str(&text).map_err(|e| format!("{MANIFEST} is not a release bundle: {e}"))?;
    let manifest = verify_identity(roots, &bundle).map_err(|e| format!("{MANIFEST} does not verify: {e}"))?;
    let actual = sha256_file(Path::new(SELF_EXE)).map_err(|e| format!("cannot hash this binary: {e}"))?;
    if actual != manifest.sha256 {
        return Err(format!(
            "this binary is not the one {MANIFEST} names (SHA-256 {actual}, the manifest names {})",
            manifest.sha256
        ));
    }
    Ok(manifest.version.to_string())
}

/// A manifest's text: a regular file (not followed if a link, never a FIFO that would block), at
/// most [`MANIFEST_MAX`] bytes.
fn read_manifest(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(MANIFEST_MAX + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MANIFEST_MAX {
        return Err(std::io::Error::other(format!("larger than {MANIFEST_MAX} bytes")));
    }
    Ok(text)
}

/// SHA-256 of a file, hex, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proof reads a manifest only from a regular file of bounded size: a FIFO would block it
    /// until its deadline, a link could name any file, and a huge file is no signed manifest.
    #[test]
    fn only_a_bounded_regular_file_is_read_as_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, "{}").unwrap();
        assert_eq!(read_manifest(&good).unwrap(), "{}");

        let fifo = dir.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = Instant::now();
        assert!(read_manifest(&fifo).unwrap_err().to_string().contains("not a regular file"));
        assert!(started.elapsed() < Duration::from_secs(1), "a FIFO must not block the proof");

        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(read_manifest(&link).is_err(), "a link is not followed");

        let huge = dir.path().join("huge.json");
        std::fs::write(&huge, vec![b' '; usize::try_from(MANIFEST_MAX).unwrap() + 1]).unwrap();
        assert!(read_manifest(&huge).unwrap_err().to_string().contains("larger than"));
    }
}
