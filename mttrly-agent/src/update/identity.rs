//! Which release this process is. A build knows its compiled version (`crate::VERSION`), but an
//! installed release is named by its signed manifest: a binary running from
//! `versions/<dir>/mttrly-agent` whose SHA-256 matches the verified `versions/<dir>/manifest.json`
//! beside it *is* that manifest's version. So the same build published as `99.0.0` reports
//! `99.0.0` once installed, and a tampered binary (or manifest) falls back to its compiled version.

use std::path::Path;

use mttrly_core::release::{ReleaseBundle, TrustedRoots, verify_identity};
use sha2::Digest as _;

use crate::install::layout::BINARY;

/// The file beside a version's binary that names it.
pub const MANIFEST: &str = "manifest.json";

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
    /// directory's versions directory).
    pub fn detect(versions: &Path, roots: &TrustedRoots) -> Self {
        let compiled = Self { version: crate::VERSION.to_owned(), version_dir: None };
        let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else { return compiled };
        let Ok(versions) = std::fs::canonicalize(versions) else { return compiled };
        let Some(dir) = exe.parent() else { return compiled };
        if dir.parent() != Some(versions.as_path()) || exe.file_name().and_then(|n| n.to_str()) != Some(BINARY) {
            return compiled;
        }
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { return compiled };
        let version = released_version(dir, &exe, roots).unwrap_or_else(|| crate::VERSION.to_owned());
        Self { version, version_dir: Some(name) }
    }
}

/// The manifest's version when `dir/manifest.json` verifies under `roots` and names `exe`'s bytes.
fn released_version(dir: &Path, exe: &Path, roots: &TrustedRoots) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let bundle: ReleaseBundle = serde_json::from_str(&text).ok()?;
    let manifest = verify_identity(roots, &bundle)
        .inspect_err(|e| tracing::warn!(error = %e, "the installed release's manifest does not verify"))
        .ok()?;
    let actual = sha256_file(exe).ok()?;
    if actual != manifest.sha256 {
        tracing::warn!(dir = %dir.display(), "this binary is not the one its manifest names; reporting its compiled version");
        return None;
    }
    Some(manifest.version.to_string())
}

/// SHA-256 of a file, hex, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
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
