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
/// The size of each `write` that lays down a binary (install, self-update staging).
///
/// Why it matters: the page cache keeps a freshly written file in folios the size of the writes
/// that made it, and Linux (6.x, ext4 with large folios) maps a whole folio into a process on a
/// fault when it fits. A binary written in 256 KiB pieces (central's download chunks) made the
/// agent started from it map 256 KiB of its code for every function it touched: 1.1–1.6 MiB more
/// resident than the same binary written in 64 KiB pieces, which is what the kernel maps around
/// a fault anyway (`fault_around_bytes`). BENCHMARKS.md, issue 16.
pub const BINARY_WRITE_PIECE: usize = 64 * 1024;
/// The symlink in the versions directory that names the version systemd starts.
pub const CURRENT: &str = "current";
/// The versions directory's name inside the state directory.
pub const VERSIONS: &str = "versions";
/// The path unit that starts the root repair oneshot when a repair request appears.
pub const REPAIR_PATH_UNIT: &str = "mttrly-agent-repair.path";
/// The root oneshot the path unit starts (`mttrly-agent repair --pending`).
pub const REPAIR_SERVICE_UNIT: &str = "mttrly-agent-repair.service";
/// The agent's own unit.
pub const SERVICE_UNIT: &str = "mttrly-agent.service";

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
        self.state_dir().join(VERSIONS)
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

    /// The root-owned install receipt: what the installer laid down (the agent reads it, and
    /// cannot forge it, so health and repair compare the host against it).
    pub fn receipt(&self) -> PathBuf {
        self.config_dir().join("install.json")
    }

    /// The systemd directory the units go in.
    pub fn unit_dir(&self) -> PathBuf {
        self.at("/etc/systemd/system")
    }

    /// The path unit watching for repair requests.
    pub fn repair_path_unit(&self) -> PathBuf {
        self.unit_dir().join(REPAIR_PATH_UNIT)
    }

    /// The root oneshot performing repair requests.
    pub fn repair_service_unit(&self) -> PathBuf {
        self.unit_dir().join(REPAIR_SERVICE_UNIT)
    }

    /// The root-owned copy of the binary the repair oneshot runs. Not the one in the versions
    /// directory: the service user can write that one, and root must never run a file the
    /// unprivileged agent could have replaced.
    pub fn repair_binary(&self) -> PathBuf {
        self.at("/usr/local/libexec/mttrly-agent/mttrly-agent")
    }

    /// Where the agent asks for a root repair (written by the agent, watched by the path unit).
    pub fn repair_request(&self) -> PathBuf {
        self.state_dir().join("repair-request.json")
    }

    /// Where the root oneshot reports what a repair changed (read back by the agent).
    pub fn repair_result(&self) -> PathBuf {
        self.state_dir().join("repair-result.json")
    }

    /// `path` as the installed system sees it (`/etc/...` for `ROOT/etc/...`): what units and
    /// the receipt name, so a staged image is correct once it boots.
    pub fn inside(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => path.to_path_buf(),
        }
    }

    /// The path under this root of a path as the installed system names it.
    pub fn outside(&self, system_path: &Path) -> PathBuf {
        self.root.join(system_path.strip_prefix("/").unwrap_or(system_path))
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
            layout.receipt(),
            layout.repair_binary(),
            layout.repair_request(),
            layout.repair_path_unit(),
        ] {
            assert!(path.starts_with("/tmp/staged"), "{}", path.display());
        }
        assert!(!layout.is_system());
        assert_eq!(layout.inside(&layout.unit_file()), Path::new("/etc/systemd/system/mttrly-agent.service"));
        assert_eq!(layout.outside(Path::new("/etc/mttrly-agent/install.json")), layout.receipt());
        assert_eq!(Layout::system().unit_file(), Path::new("/etc/systemd/system/mttrly-agent.service"));
    }
}
