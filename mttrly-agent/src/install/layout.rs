//! Where an installed agent's files live: one place that names every path the installer lays
//! down, install health checks, repair rewrites and the updater swaps.
//!
//! Every path hangs off a `root` (`/` on a real host) so the whole install can be performed and
//! inspected inside a throwaway directory: tests install, drift, repair and update under a temp
//! root, and `mttrly-agent install --root DIR` lets an owner stage an image the same way.

use std::path::{Path, PathBuf};

/// The name of the service, its system user and its unit.
pub const SERVICE: &str = "mttrly-agent";
/// The binary's file name inside a version directory.
pub const BINARY: &str = "mttrly-agent";
/// The symlink in the versions directory that names the version systemd starts.
pub const CURRENT: &str = "current";

/// The paths of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The real host's installation (root `/`).
    pub fn system() -> Self {
        Self { root: PathBuf::from("/") }
    }

    /// An installation staged under `root` (a test's temp dir, an image being built).
    pub fn under(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root every other path hangs off.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the real host's installation.
    pub fn is_system(&self) -> bool {
        self.root == Path::new("/")
    }

    fn at(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// The state directory (0700, owned by the service user): credentials, the executed-action
    /// ledger, watch state, and the versions directory.
    pub fn state_dir(&self) -> PathBuf {
        self.at("/var/lib/mttrly-agent")
    }

    /// The credentials file (0600) inside the state directory.
    pub fn credentials(&self) -> PathBuf {
        crate::credentials::path(&self.state_dir())
    }

    /// The owner's configuration directory (root-owned: the agent reads it, never writes it).
    pub fn config_dir(&self) -> PathBuf {
        self.at("/etc/mttrly-agent")
    }

    /// The owner's policy file.
    pub fn policy_file(&self) -> PathBuf {
        self.config_dir().join("policy.toml")
    }

    /// The systemd unit the installer writes.
    pub fn unit_file(&self) -> PathBuf {
        self.at(&format!("/etc/systemd/system/{SERVICE}.service"))
    }

    /// Every installed version, one directory each (`versions/<version>/mttrly-agent`).
    pub fn versions_dir(&self) -> PathBuf {
        self.state_dir().join("versions")
    }

    /// One version's directory.
    pub fn version_dir(&self, version: &str) -> PathBuf {
        self.versions_dir().join(version)
    }

    /// One version's binary.
    pub fn version_binary(&self, version: &str) -> PathBuf {
        self.version_dir(version).join(BINARY)
    }

    /// The `current` symlink (relative, pointing at a version directory's name), swapped
    /// atomically by rename on update and rollback.
    pub fn current_link(&self) -> PathBuf {
        self.versions_dir().join(CURRENT)
    }

    /// The binary systemd starts: always through `current`, so a swap needs no unit change.
    pub fn current_binary(&self) -> PathBuf {
        self.current_link().join(BINARY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_stays_under_the_root() {
        let layout = Layout::under("/tmp/staged");
        for path in [
            layout.state_dir(),
            layout.credentials(),
            layout.policy_file(),
            layout.unit_file(),
            layout.versions_dir(),
            layout.version_binary("1.2.3"),
            layout.current_binary(),
        ] {
            assert!(path.starts_with("/tmp/staged"), "{}", path.display());
        }
        assert!(!layout.is_system());
        assert_eq!(Layout::system().unit_file(), Path::new("/etc/systemd/system/mttrly-agent.service"));
    }
}
