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
//! budget, BENCHMARKS.md). The child trusts nothing the agent does not: it is the same file, and
//! what it answers is only ever the version to report.

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

/// How long the proof may take (it hashes the binary) before the agent reports its compiled
/// version instead of waiting further.
const PROOF_DEADLINE: Duration = Duration::from_secs(30);

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
            prove_in_child(&exe, dir, roots).unwrap_or_else(|| crate::VERSION.to_owned())
        } else {
            crate::VERSION.to_owned()
        };
        Self { version, version_dir: Some(name) }
    }
}

/// Starts `exe prove-identity --dir DIR --roots KEYS`, waits for it (at most [`PROOF_DEADLINE`])
/// and returns the version it proved. A failed proof is logged with the child's reason.
fn prove_in_child(exe: &Path, dir: &Path, roots: &TrustedRoots) -> Option<String> {
    let keys = roots.keys().iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
    let spawned = Command::new(exe)
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
                tracing::warn!(error = %e, "cannot wait for the identity proof; reporting the compiled version");
                return None;
            }
        }
    };
    // The child has exited: its pipes hold a line each and then end.
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
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

/// The manifest's version when `dir/manifest.json` verifies under `roots` and names `exe`'s bytes.
fn released_version(dir: &Path, exe: &Path, roots: &TrustedRoots) -> Result<String, String> {
    if exe.parent() != Some(dir) {
        return Err(format!("this binary ({}) is not in {}", exe.display(), dir.display()));
    }
    let text = std::fs::read_to_string(dir.join(MANIFEST)).map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
    let bundle: ReleaseBundle =
        serde_json::from_str(&text).map_err(|e| format!("{MANIFEST} is not a release bundle: {e}"))?;
    let manifest = verify_identity(roots, &bundle).map_err(|e| format!("{MANIFEST} does not verify: {e}"))?;
    let actual = sha256_file(exe).map_err(|e| format!("cannot hash this binary: {e}"))?;
    if actual != manifest.sha256 {
        return Err(format!(
            "this binary is not the one {MANIFEST} names (SHA-256 {actual}, the manifest names {})",
            manifest.sha256
        ));
    }
    Ok(manifest.version.to_string())
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
