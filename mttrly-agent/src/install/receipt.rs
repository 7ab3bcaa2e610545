//! The install receipt: a root-owned record of what `mttrly-agent install` laid down. Health
//! compares the host against it and the root repair oneshot recomputes its plan from it, so the
//! unprivileged agent can read what "expected" is but never redefine it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::InstallError;
use super::fsops;
use super::layout::Layout;
use super::unit::UnitSpec;

/// The receipt's format revision.
pub const FORMAT: u32 = 1;
/// The state directory's mode.
pub const STATE_DIR_MODE: u32 = 0o700;
/// The credentials file's mode.
pub const CREDENTIALS_MODE: u32 = 0o600;
/// Root-owned files' mode (units, receipt, policy).
pub const ROOT_FILE_MODE: u32 = 0o644;
/// Binaries' mode.
pub const BINARY_MODE: u32 = 0o755;

/// What was installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`FORMAT`].
    pub format: u32,
    /// The agent version laid down in `versions/<version>/`.
    pub version: String,
    /// SHA-256 of that binary (and of the root-owned repair copy: the same bytes).
    pub binary_sha256: String,
    /// The service user's name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Whether the installer created the user (uninstall removes only then).
    pub created_user: bool,
    /// The capabilities the unit keeps (from the owner's policy at install).
    pub capabilities: Vec<String>,
    /// Central's gRPC URL enrolled with.
    pub central_url: String,
    /// SHA-256 of central's CA certificate (PEM), when one was pinned.
    pub ca_sha256: Option<String>,
    /// The server id enrolled as.
    pub server_id: String,
    /// When, RFC 3339.
    pub installed_at: String,
    /// Every file and directory the installer created, as the installed system names them,
    /// parents before children: uninstall removes exactly these, children first.
    pub created: Vec<PathBuf>,
}

impl Receipt {
    /// The units this receipt expects.
    pub fn unit_spec(&self) -> UnitSpec {
        UnitSpec { user: self.user.clone(), capabilities: self.capabilities.clone() }
    }

    /// Reads the receipt; `None` when nothing was installed here.
    pub fn load(layout: &Layout) -> Result<Option<Self>, InstallError> {
        let path = layout.receipt();
        let Some(bytes) = fsops::read_small(&path, 1024 * 1024)? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| InstallError::Invalid { path: path.display().to_string(), reason: e.to_string() })
    }

    /// Writes the receipt (root-owned, world-readable: the agent reads it).
    pub fn save(&self, path: &Path) -> Result<(), InstallError> {
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| InstallError::Invalid { path: path.display().to_string(), reason: e.to_string() })?;
        fsops::write_file(path, &body, ROOT_FILE_MODE)
    }
}
