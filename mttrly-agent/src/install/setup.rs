//! `mttrly-agent install` and `mttrly-agent uninstall`.
//!
//! Install lays down, in order: the service user, the owner's policy file, the state directory
//! (0700) with credentials (0600, enrolled with the install token unless credentials are already
//! there), the versions directory with this binary copied in and `current` pointing at it, the
//! root-owned copy the repair oneshot runs, the three units, and last the root-owned receipt
//! naming everything it created. Running it again is harmless: what exists is kept, what drifted
//! is rewritten, and credentials are reused rather than enrolling twice. Uninstall removes
//! exactly what the receipt lists.

use std::path::{Path, PathBuf};

use mttrly_core::policy::PolicyFile;

use super::InstallError;
use super::fsops;
use super::layout::{Layout, REPAIR_PATH_UNIT, SERVICE, SERVICE_UNIT};
use super::receipt::{self, Receipt};
use super::system;
use super::unit;
use crate::credentials::Credentials;

/// The policy written when the owner gives none: every default, said in the file.
const DEFAULT_POLICY: &str = "# The server owner's policy for mttrly-agent: the last word on what it does here.\n\
# Every key is optional; an empty file keeps the built-in defaults. Unknown keys are refused.\n\
# service_capabilities = [\"CAP_NET_BIND_SERVICE\"]  # kept by the unit; none by default\n";

/// What `install` is asked to do.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Where to install (`Layout::system()` for the host).
    pub layout: Layout,
    /// Central's gRPC URL.
    pub central: String,
    /// The single-use install token (unused when credentials are already there).
    pub token: String,
    /// Central's CA (PEM), for `https://` centrals.
    pub ca_pem: Option<String>,
    /// The owner's policy file to install; the one already there (or the defaults) when absent.
    pub policy: Option<PathBuf>,
    /// Lay everything down but do not enable or start the units.
    pub no_start: bool,
    /// The binary to install (this executable).
    pub binary: PathBuf,
}

/// How the service was (or was not) started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// Enabled and started by systemd.
    Systemd,
    /// This host has no systemd: run this in the foreground (or under your supervisor).
    NoSystemd {
        /// The command.
        foreground: String,
    },
    /// Staged under `--root`: nothing on this host was touched.
    Staged,
    /// `--no-start`.
    NotStarted,
}

/// What `install` did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The receipt written.
    pub receipt: Receipt,
    /// Whether the token was used (false: existing credentials were kept).
    pub enrolled: bool,
    /// Whether the service runs.
    pub started: Started,
}

/// The command that runs the installed agent in the foreground.
pub fn foreground_command() -> String {
    let sys = Layout::system();
    format!(
        "sudo -u {SERVICE} {} run --state-dir {} --policy {}",
        sys.current_binary().display(),
        sys.state_dir().display(),
        sys.policy_file().display()
    )
}

/// Installs (see the module doc). On failure, what this run created is removed again.
pub async fn install(opts: &InstallOptions) -> Result<Installed, InstallError> {
    let layout = &opts.layout;
    if layout.is_system() && !system::is_root() {
        return Err(InstallError::NotRoot);
    }
    // Everything that can be refused is checked before anything is written.
    let binary = std::fs::read(&opts.binary).map_err(|source| InstallError::io("cannot read", &opts.binary, source))?;
    let policy_text = match &opts.policy {
        Some(src) => Some(read_policy(src)?),
        None => None,
    };
    let previous = Receipt::load(layout)?;
    let mut created: Vec<PathBuf> = Vec::new();
    let result = lay_down(opts, &binary, policy_text.as_deref(), previous.as_ref(), &mut created).await;
    if result.is_err() {
        for path in created.iter().rev() {
            let _ = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        }
    }
    result
}

/// Reads and validates the owner's policy file.
fn read_policy(path: &Path) -> Result<String, InstallError> {
    let text = std::fs::read_to_string(path).map_err(|source| InstallError::io("cannot read", path, source))?;
    let invalid = |e: mttrly_core::MttrlyError| InstallError::Invalid {
        path: path.display().to_string(),
        reason: e.message().to_owned(),
    };
    PolicyFile::parse(&text, path).and_then(|doc| doc.file_rules()?.check_compiles()).map_err(invalid)?;
    Ok(text)
}

/// Writes `bytes` unless the file already holds them, recording it in `created` when new.
fn put(path: &Path, bytes: &[u8], mode: u32, created: &mut Vec<PathBuf>) -> Result<(), InstallError> {
    let existed = fsops::stat(path)?.is_some();
    if fsops::read_small(path, 512 * 1024 * 1024).ok().flatten().as_deref() != Some(bytes) {
        fsops::write_file(path, bytes, mode)?;
    }
    fsops::set_mode_owner(path, mode, None)?;
    if !existed {
        created.push(path.to_path_buf());
    }
    Ok(())
}

async fn lay_down(
    opts: &InstallOptions,
    binary: &[u8],
    policy_text: Option<&str>,
    previous: Option<&Receipt>,
    created: &mut Vec<PathBuf>,
) -> Result<Installed, InstallError> {
    let layout = &opts.layout;
    // The service user: created on the host; a staged install's is whoever stages it (its
    // files cannot be given to a user that exists only in the image).
    let (uid, gid, made_user) = if layout.is_system() {
        system::ensure_user(&Layout::system().state_dir())?
    } else {
        let (uid, gid) = system::invoking_ids();
        (uid, gid, false)
    };
    let owner = Some((uid, gid));

    // The owner's policy: installed when given, the defaults when there is none, validated.
    fsops::ensure_dir(&layout.config_dir(), 0o755, created)?;
    let policy_path = layout.policy_file();
    match policy_text {
        Some(text) => put(&policy_path, text.as_bytes(), receipt::ROOT_FILE_MODE, created)?,
        None if fsops::stat(&policy_path)?.is_none() => {
            put(&policy_path, DEFAULT_POLICY.as_bytes(), receipt::ROOT_FILE_MODE, created)?;
        }
        None => {}
    }
    let policy = PolicyFile::load(&policy_path).map_err(|e| InstallError::Invalid {
        path: policy_path.display().to_string(),
        reason: e.message().to_owned(),
    })?;

    // State directory and credentials.
    let state = layout.state_dir();
    if let Some(parent) = state.parent() {
        fsops::ensure_dir(parent, 0o755, created)?;
    }
    fsops::ensure_dir(&state, receipt::STATE_DIR_MODE, created)?;
    fsops::set_mode_owner(&state, receipt::STATE_DIR_MODE, owner)?;
    // With credentials already there, the token is still tried: a fresh one (bootstrap recovery
    // after the old credentials were rotated) replaces them; a spent or refused one keeps them, so
    // running the same install line twice is harmless.
    let existing = Credentials::load(&state).map_err(|e| InstallError::Enroll(Box::new(e)))?;
    let enrolled = crate::enroll::enroll(&opts.central, &opts.token, opts.ca_pem.clone(), &state, true).await;
    let (credentials, enrolled) = match (enrolled, existing) {
        (Ok(creds), _) => (creds, true),
        (Err(crate::AgentError::Central(e)), Some(existing))
            if matches!(e.code(), mttrly_core::ErrorCode::AuthFailed | mttrly_core::ErrorCode::ValidationError) =>
        {
            (existing, false)
        }
        (Err(e), _) => return Err(InstallError::Enroll(Box::new(e))),
    };
    fsops::set_mode_owner(&layout.credentials(), receipt::CREDENTIALS_MODE, owner)?;

    // The versions directory (the agent's own: it stages and swaps updates there).
    let version = crate::VERSION;
    let versions = layout.versions_dir();
    fsops::ensure_dir(&versions, 0o755, created)?;
    fsops::set_mode_owner(&versions, 0o755, owner)?;
    fsops::ensure_dir(&layout.version_dir(version), 0o755, created)?;
    fsops::set_mode_owner(&layout.version_dir(version), 0o755, owner)?;
    let version_binary = layout.version_binary(version);
    put(&version_binary, binary, receipt::BINARY_MODE, created)?;
    fsops::set_mode_owner(&version_binary, receipt::BINARY_MODE, owner)?;
    fsops::replace_symlink(&layout.current_link(), version)?;
    fsops::lchown(&layout.current_link(), uid, gid)?;

    // Root's own copy for the repair oneshot.
    let repair_binary = layout.repair_binary();
    if let Some(dir) = repair_binary.parent() {
        fsops::ensure_dir(dir, 0o755, created)?;
    }
    put(&repair_binary, binary, receipt::BINARY_MODE, created)?;

    let mut receipt = Receipt {
        format: receipt::FORMAT,
        version: version.to_owned(),
        binary_sha256: fsops::sha256(binary),
        user: SERVICE.to_owned(),
        uid,
        gid,
        created_user: made_user || previous.is_some_and(|p| p.created_user),
        capabilities: policy.service_capabilities.clone(),
        central_url: credentials.central_url.clone(),
        ca_sha256: credentials.ca_certificate_pem.as_deref().map(|pem| fsops::sha256(pem.as_bytes())),
        server_id: credentials.server_id.clone(),
        installed_at: jiff::Timestamp::now().to_string(),
        created: Vec::new(),
    };

    // The units.
    fsops::ensure_dir(&layout.unit_dir(), 0o755, created)?;
    let units = unit::render(&receipt.unit_spec());
    put(&layout.unit_file(), units.service.as_bytes(), receipt::ROOT_FILE_MODE, created)?;
    put(&layout.repair_path_unit(), units.repair_path.as_bytes(), receipt::ROOT_FILE_MODE, created)?;
    put(&layout.repair_service_unit(), units.repair_service.as_bytes(), receipt::ROOT_FILE_MODE, created)?;

    // The receipt, last: everything it names exists. What an earlier run created stays listed.
    let receipt_path = layout.receipt();
    if fsops::stat(&receipt_path)?.is_none() {
        created.push(receipt_path.clone());
    }
    let mut listed: Vec<PathBuf> = previous.map(|p| p.created.clone()).unwrap_or_default();
    for path in created.iter() {
        let inside = layout.inside(path);
        if !listed.contains(&inside) {
            listed.push(inside);
        }
    }
    receipt.created = listed;
    receipt.save(&receipt_path)?;

    let started = start(opts)?;
    Ok(Installed { receipt, enrolled, started })
}

/// Enables and starts the units on a systemd host.
fn start(opts: &InstallOptions) -> Result<Started, InstallError> {
    if !opts.layout.is_system() {
        return Ok(Started::Staged);
    }
    if !system::systemd_running() {
        return Ok(Started::NoSystemd { foreground: foreground_command() });
    }
    system::systemctl(&["daemon-reload"])?;
    if opts.no_start {
        return Ok(Started::NotStarted);
    }
    system::systemctl(&["enable", "--now", REPAIR_PATH_UNIT, SERVICE_UNIT])?;
    Ok(Started::Systemd)
}

/// The order uninstall removes the receipt's paths in: children before parents, and the receipt
/// with the directories holding it last, so an uninstall that fails halfway can be run again.
pub fn removal_order(receipt: &Receipt) -> Vec<PathBuf> {
    let receipt_inside = Layout::system().receipt();
    let (last, first): (Vec<&PathBuf>, Vec<&PathBuf>) =
        receipt.created.iter().partition(|p| receipt_inside.starts_with(p));
    first.into_iter().rev().chain(last.into_iter().rev()).cloned().collect()
}

/// What `uninstall` removed.
#[derive(Debug, Clone, Default)]
pub struct Uninstalled {
    /// Paths removed (as the installed system names them).
    pub removed: Vec<PathBuf>,
    /// Paths listed but left (the state directory with `--keep-state`, non-empty directories).
    pub kept: Vec<PathBuf>,
    /// Whether the service user was removed.
    pub removed_user: bool,
}

/// Uninstalls: stops the units, removes exactly what the receipt lists (children first; the
/// state directory with all it holds unless `keep_state`; other directories only when empty),
/// and the user the installer created.
pub fn uninstall(layout: &Layout, keep_state: bool) -> Result<Uninstalled, InstallError> {
    if layout.is_system() && !system::is_root() {
        return Err(InstallError::NotRoot);
    }
    let receipt =
        Receipt::load(layout)?.ok_or_else(|| InstallError::NoReceipt(layout.receipt().display().to_string()))?;
    let systemd = layout.is_system() && system::systemd_running();
    if systemd {
        // Units already stopped or gone are fine: uninstall finishes what a failed one began.
        let _ = system::systemctl(&["disable", "--now", SERVICE_UNIT, REPAIR_PATH_UNIT]);
    }
    let state_inside = Layout::system().state_dir();
    let mut done = Uninstalled::default();
    for inside in &removal_order(&receipt) {
        let path = layout.outside(inside);
        if keep_state && inside.starts_with(&state_inside) {
            done.kept.push(inside.clone());
            continue;
        }
        let Some(stat) = fsops::stat(&path)? else { continue };
        if *inside == state_inside {
            std::fs::remove_dir_all(&path).map_err(|source| InstallError::io("cannot remove", &path, source))?;
            done.removed.push(inside.clone());
        } else if stat.is_dir {
            if fsops::remove_empty_dir(&path)? {
                done.removed.push(inside.clone());
            } else {
                done.kept.push(inside.clone());
            }
        } else if fsops::remove_file(&path)? {
            done.removed.push(inside.clone());
        }
    }
    if systemd {
        system::systemctl(&["daemon-reload"])?;
    }
    if layout.is_system() && receipt.created_user && !keep_state {
        system::remove_user()?;
        done.removed_user = true;
    }
    Ok(done)
}
