//! The agent's self-update (issue 16): verify → fetch → stage → restart → self-test → commit, or
//! roll back by itself.
//!
//! 1. **Verify before a byte is staged** ([`Updater::stage`]): the approved content's release
//!    bundle against the roots this host trusts (compiled in, plus the owner's
//!    `[updates] trusted_root_keys`), its expiry, target and direction (a downgrade only when the
//!    approved action says so), and the versions marked skipped here.
//! 2. **Fetch and stage** ([`fetch`]): into `versions/<to>/mttrly-agent.unverified`, size-capped
//!    and hashed; renamed only when the hash matches; `manifest.json` written last as the
//!    directory's validity marker.
//! 3. **Restart into it** under a health gate: `versions/update.json` (the marker) is written, a
//!    watchdog (the *old* binary, `mttrly-agent update-watchdog`) is started, and this process
//!    `execve`s the new binary, while `current` still names the old one.
//! 4. **The new version's trial** ([`Updater::on_start`], [`Updater::connected`]): it must reach
//!    central and get its welcome within the deadline (30 s); then it swaps `current` by rename,
//!    records the update as committed and clears the marker. If its deadline passes first it marks
//!    itself skipped and `execve`s the previous version. If it crashes, the service manager starts
//!    `current` (the old version), which finds the marker and rolls back; if it hangs, the
//!    watchdog kills it at the deadline and the same happens.
//!
//! At every instant `current` names a complete, verified version, so a `kill -9` anywhere leaves
//! a runnable agent. The executed-actions ledger lives in the state directory, shared by every
//! version, so the update action (claimed before it ran) is never executed twice.

pub mod fetch;
pub mod files;
pub mod identity;
pub mod watchdog;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::Outcome;
use mttrly_core::release::{
    KeyError, ReleaseBundle, ReleaseChecks, ReleaseRefusal, ReleaseVersion, TrustedRoots, this_target, verify_release,
};
use mttrly_core::tools::updates::{UpdateReport, UpdateStaged, UpdateState, UpdateStatusParams};
use mttrly_core::{ErrorCode, MttrlyError};

use self::files::{Marker, Settled, Versions};
use self::identity::{Identity, MANIFEST};
use crate::credentials::Credentials;
use crate::install::layout::BINARY;
use crate::policy::LocalPolicy;
use crate::task::{Task, denied};

/// How long a new version has to connect and pass its self-test.
pub const TRIAL: Duration = Duration::from_secs(30);

/// How long after sending its staged answer the old process waits before replacing itself, so
/// the answer leaves the outbound queue first (central tolerates losing it: it asks afterwards).
const FLUSH: Duration = Duration::from_millis(300);

/// The root keys compiled into this build (`MTTRLY_RELEASE_ROOT_KEYS` at build time, comma or
/// space separated `ed25519:<base64>`; empty in a development build).
pub const COMPILED_ROOT_KEYS: &str = match option_env!("MTTRLY_RELEASE_ROOT_KEYS") {
    Some(keys) => keys,
    None => "",
};

/// The roots this host trusts: the compiled-in ones and the owner's policy's.
pub fn trusted_roots(policy: &LocalPolicy) -> Result<TrustedRoots, KeyError> {
    Ok(TrustedRoots::parse_list(COMPILED_ROOT_KEYS)?.with(policy.updates.trusted_root_keys.iter().cloned()))
}

/// The updater: this process's identity, the versions directory, and a pending trial.
pub struct Updater {
    versions: Versions,
    credentials: Option<Credentials>,
    roots: TrustedRoots,
    identity: Identity,
    /// Set while this process is a new version under trial.
    trial: Mutex<Option<Marker>>,
}

impl Updater {
    /// The updater of the agent whose state directory is `state_dir`.
    pub fn new(state_dir: &Path, policy: &LocalPolicy, credentials: Option<Credentials>) -> Self {
        let versions = Versions::new(state_dir.join(crate::install::layout::VERSIONS));
        let roots = trusted_roots(policy).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the compiled-in release root keys do not parse; trusting the policy's only");
            TrustedRoots::new(policy.updates.trusted_root_keys.iter().cloned())
        });
        let identity = Identity::detect(versions.dir(), &roots);
        Self { versions, credentials, roots, identity, trial: Mutex::new(None) }
    }

    /// The version this process reports.
    pub fn version(&self) -> &str {
        &self.identity.version
    }

    /// At start: settles an update left under way. The new version (this process is its `to`)
    /// enters its trial; any other process (the old version restarted after the new one died or
    /// was killed) rolls the update back.
    pub fn on_start(&self) {
        let marker = match self.versions.marker() {
            Ok(Some(marker)) => marker,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "the update marker cannot be read; removing it");
                let _ = self.versions.clear_marker();
                return;
            }
        };
        if self.identity.version_dir.as_deref() == Some(marker.to_version.as_str()) {
            tracing::info!(from = %marker.from_version, to = %marker.to_version, "new version on trial");
            *self.trial.lock().unwrap_or_else(PoisonError::into_inner) = Some(marker);
            return;
        }
        let late = jiff::Timestamp::now().as_millisecond() > marker.deadline_unix_ms;
        let (reason, detail) = if late {
            ("deadline_passed", "the new version did not pass its self-test before its deadline and was stopped")
        } else {
            ("exited_before_commit", "the new version exited before it connected and passed its self-test")
        };
        self.roll_back(&marker, reason, detail);
    }

    /// Records `marker`'s update as rolled back and the new version as skipped.
    fn roll_back(&self, marker: &Marker, reason: &str, detail: &str) {
        tracing::warn!(to = %marker.to_version, reason, "rolling an update back");
        if let Err(e) = self.versions.skip(&marker.to_version) {
            tracing::error!(error = %e, "cannot mark the version skipped");
        }
        self.settle(marker, UpdateState::RolledBack, Some(reason), Some(detail));
    }

    fn settle(&self, marker: &Marker, state: UpdateState, reason: Option<&str>, detail: Option<&str>) {
        let settled = Settled {
            action_id: marker.action_id.clone(),
            from_version: marker.from_version.clone(),
            to_version: marker.to_version.clone(),
            state,
            reason: reason.map(str::to_owned),
            detail: detail.map(str::to_owned),
            at_unix_ms: jiff::Timestamp::now().as_millisecond(),
        };
        if let Err(e) = self.versions.set_settled(&settled) {
            tracing::error!(error = %e, "cannot record how the update ended");
        }
        if let Err(e) = self.versions.clear_marker() {
            tracing::error!(error = %e, "cannot remove the update marker");
        }
    }

    /// Called once connected to central with its welcome: the self-test passed, so a new version
    /// on trial commits (swaps `current`, records it, clears the marker, reaps the watchdog).
    pub fn connected(&self) {
        let Some(marker) = self.trial.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        if let Err(e) = self.versions.swap_current(&marker.to_version) {
            tracing::error!(error = %e, "cannot swap current to the new version; rolling back");
            self.roll_back(&marker, "self_test_failed", "the new version could not make itself current");
            exec(&self.versions.dir().join(&marker.from_dir).join(BINARY));
            return;
        }
        self.settle(&marker, UpdateState::Committed, None, None);
        tracing::info!(from = %marker.from_version, to = %marker.to_version, "update committed");
        if let Some(pid) = marker.watchdog_pid {
            // The watchdog exits once the marker is gone; reap it so no zombie stays behind.
            std::thread::spawn(move || {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            });
        }
    }

    /// Under trial: at the deadline, if not yet committed, mark this version skipped and
    /// `execve` the previous one.
    pub fn spawn_trial_deadline(self: &Arc<Self>) {
        let deadline = self.trial.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|m| m.deadline_unix_ms);
        let Some(deadline) = deadline else { return };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let wait = u64::try_from(deadline - jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let Some(marker) = this.trial.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
            this.roll_back(
                &marker,
                "self_test_failed",
                "the new version did not connect to central and pass its self-test within 30 s",
            );
            exec(&this.versions.dir().join(&marker.from_dir).join(BINARY));
        });
    }

    /// Where the update action `params.action_id` stands here.
    pub fn status(&self, params: &UpdateStatusParams) -> Result<UpdateReport, MttrlyError> {
        let id = params.action_id.as_str();
        let mut report = UpdateReport {
            running_version: self.version().to_owned(),
            state: UpdateState::Unknown,
            from_version: None,
            to_version: None,
            reason: None,
            detail: None,
        };
        let io = |e: std::io::Error| {
            MttrlyError::new(ErrorCode::InternalError, format!("cannot read the update state: {e}"))
        };
        if let Some(marker) = self.versions.marker().map_err(io)?.filter(|m| m.action_id == id) {
            report.state = UpdateState::InProgress;
            report.from_version = Some(marker.from_version);
            report.to_version = Some(marker.to_version);
        } else if let Some(settled) = self.versions.settled().map_err(io)?.filter(|s| s.action_id == id) {
            report.state = settled.state;
            report.from_version = Some(settled.from_version);
            report.to_version = Some(settled.to_version);
            report.reason = settled.reason;
            report.detail = settled.detail;
        }
        Ok(report)
    }

    /// The approved update `content` of action `action_id`: verify, fetch, stage, then restart
    /// into it (after answering).
    pub async fn stage(
        self: &Arc<Self>,
        task: &Task<'_>,
        action_id: &str,
        content: ActionContent,
    ) -> Outcome<UpdateStaged> {
        if !task.action || !task.approved {
            return Outcome::failed(denied("an agent update runs only as an action a human approved"));
        }
        match self.prepare(action_id, &content).await {
            Ok((staged, binary)) => {
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    tokio::time::sleep(FLUSH).await;
                    tracing::info!(binary = %binary.display(), "restarting into the new version");
                    exec(&binary);
                    // Only reached when the exec failed: the update cannot proceed, so settle it.
                    if let Ok(Some(marker)) = this.versions.marker() {
                        this.roll_back(&marker, "self_test_failed", "the new version could not be started");
                    }
                });
                Outcome::ok(staged)
            }
            Err(e) => Outcome::failed(e),
        }
    }

    async fn prepare(&self, action_id: &str, content: &ActionContent) -> Result<(UpdateStaged, PathBuf), MttrlyError> {
        let ActionContent::AgentUpdate {
            from_version,
            to_version,
            sha256,
            size_bytes,
            target,
            allow_downgrade,
            bundle_json,
            manifest_expires_at,
            downgrade,
        } = content
        else {
            return Err(MttrlyError::new(ErrorCode::ValidationError, "not an agent update"));
        };
        let Some(from_dir) = self.identity.version_dir.clone() else {
            return Err(denied(
                "this agent does not run from an installed versions directory (install it with `mttrly-agent install`), \
                 so it cannot update itself",
            ));
        };
        if self.versions.marker().ok().flatten().is_some() {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                "another update is already under way on this server",
            ));
        }
        let bundle: ReleaseBundle = serde_json::from_str(bundle_json)
            .map_err(|_| ReleaseRefusal::MalformedManifest("the release bundle is not valid JSON").to_error())?;
        let current: ReleaseVersion = self.version().parse().map_err(|_| {
            MttrlyError::new(
                ErrorCode::ValidationError,
                format!("this agent's version `{}` cannot be compared", self.version()),
            )
        })?;
        let host_target = this_target();
        let checks = ReleaseChecks {
            now: jiff::Timestamp::now(),
            current_version: Some(&current),
            allow_downgrade: *allow_downgrade,
            target: Some(&host_target),
            central_version: None,
        };
        let verified = verify_release(&self.roots, &bundle, &checks).map_err(|r| r.to_error())?;
        let m = &verified.manifest;
        // The approved content and the signed manifest must agree on every field the approver saw.
        if m.version.to_string() != *to_version
            || m.sha256 != *sha256
            || m.size != *size_bytes
            || m.target != *target
            || m.expires_at.to_string() != *manifest_expires_at
        {
            return Err(denied("the approved update does not match its signed manifest")
                .with_detail("reason", "content_mismatch"));
        }
        // And on what it does here: the approver read "from A to B" and whether that is a
        // downgrade. If another version runs now (an update in between), the same release may be a
        // downgrade nobody was shown (`allow_downgrade` alone is not consent to one).
        if current.to_string() != *from_version || verified.downgrade != *downgrade {
            return Err(denied(format!(
                "the approved update was from {from_version} ({}), but {current} runs here now: approve it again",
                if *downgrade { "a downgrade" } else { "an upgrade" },
            ))
            .with_detail("reason", "content_mismatch"));
        }
        // Staging clears the version's directory first: never the one this process runs from or
        // the one `current` names (an installed release whose manifest no longer verifies after a
        // root rotation runs from `versions/<v>` yet reports its compiled version), or a failed
        // fetch would leave nothing to start and nothing to roll back to.
        let current_dir = self.versions.current().ok();
        if *to_version == from_dir || current_dir.as_deref() == Some(to_version.as_str()) {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!(
                    "{to_version} would be staged over the version directory this agent (reporting {current}) runs \
                     from: publish the release under another version, or reinstall"
                ),
            )
            .with_detail("reason", "version_dir_in_use"));
        }
        if self.versions.skipped().unwrap_or_default().iter().any(|v| v == to_version) {
            return Err(ReleaseRefusal::Skipped(m.version.clone()).to_error());
        }
        let credentials = self
            .credentials
            .as_ref()
            .ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, "no credentials to fetch the release with"))?;
        let dir = self.versions.dir().join(to_version);
        let io = |what: &str, e: std::io::Error| MttrlyError::new(ErrorCode::InternalError, format!("{what}: {e}"));
        // A directory left by an earlier attempt is never trusted: start it afresh.
        if tokio::fs::metadata(&dir).await.is_ok() {
            tokio::fs::remove_dir_all(&dir).await.map_err(|e| io("cannot clear the version directory", e))?;
        }
        create_private_dir(&dir).map_err(|e| io("cannot create the version directory", e))?;
        let unverified = dir.join(format!("{BINARY}.unverified"));
        if let Err(e) = fetch::fetch(credentials, action_id, sha256, *size_bytes, &unverified).await {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(e);
        }
        let binary = dir.join(BINARY);
        let finish = || -> std::io::Result<()> {
            std::fs::rename(&unverified, &binary)?;
            // The manifest last: a directory without it is not a version.
            files::write_atomic(&dir.join(MANIFEST), bundle_json.as_bytes())?;
            files::sync_dir(&dir)
        };
        if let Err(e) = finish() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(io("cannot stage the release", e));
        }
        let deadline = jiff::Timestamp::now() + TRIAL;
        let mut marker = Marker {
            action_id: action_id.to_owned(),
            from_version: self.version().to_owned(),
            from_dir: from_dir.clone(),
            to_version: to_version.clone(),
            deadline_unix_ms: deadline.as_millisecond(),
            watchdog_pid: None,
        };
        self.versions.set_marker(&marker).map_err(|e| io("cannot write the update marker", e))?;
        match watchdog::spawn(&self.versions.dir().join(&from_dir).join(BINARY), self.versions.dir(), action_id) {
            Ok(pid) => {
                marker.watchdog_pid = Some(pid);
                if let Err(e) = self.versions.set_marker(&marker) {
                    tracing::warn!(error = %e, "cannot record the watchdog's pid");
                }
            }
            // Without a watchdog a hang is still caught by the new version's own deadline.
            Err(e) => tracing::warn!(error = %e, "cannot start the update watchdog"),
        }
        let staged = UpdateStaged {
            from_version: marker.from_version,
            to_version: to_version.clone(),
            sha256: sha256.clone(),
            size_bytes: *size_bytes,
            deadline: deadline.to_string(),
        };
        Ok((staged, binary))
    }
}

#[cfg(test)]
mod redteam;

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

/// Replaces this process with `binary`, same arguments and environment. Returns only on failure.
fn exec(binary: &Path) {
    let Ok(path) = CString::new(binary.as_os_str().as_bytes()) else { return };
    let mut argv = vec![path.clone()];
    argv.extend(std::env::args_os().skip(1).filter_map(|a| CString::new(a.as_bytes()).ok()));
    let Err(e) = nix::unistd::execv(&path, &argv);
    tracing::error!(error = %e, binary = %binary.display(), "cannot execute the other version");
}
