//! Red-team cases for staging: what the approver was shown must be what happens here, and staging
//! must never clear the directory the running (or `current`) version lives in.

use std::sync::Mutex;

use mttrly_core::action::ActionContent;
use mttrly_core::release::{
    KeyTier, Manifest, PrivateKeyFile, ReleaseBundle, ReleaseVersion, Signed, SigningKeyStatement, TrustedRoots,
    this_target,
};

use super::Updater;
use super::files::Versions;
use super::identity::Identity;
use crate::credentials::Credentials;
use crate::install::layout::BINARY;

struct Host {
    _dir: tempfile::TempDir,
    versions: std::path::PathBuf,
    root: PrivateKeyFile,
    signing: PrivateKeyFile,
}

impl Host {
    /// A versions directory whose `current` names `running_dir`, holding a binary.
    fn new(running_dir: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let versions = dir.path().join("versions");
        std::fs::create_dir_all(versions.join(running_dir)).unwrap();
        std::fs::write(versions.join(running_dir).join(BINARY), b"the running binary").unwrap();
        Versions::new(versions.clone()).swap_current(running_dir).unwrap();
        Self {
            _dir: dir,
            versions,
            root: PrivateKeyFile::generate(KeyTier::Root).unwrap(),
            signing: PrivateKeyFile::generate(KeyTier::Signing).unwrap(),
        }
    }

    /// The updater of a process that reports `version` and runs from `version_dir`, with
    /// credentials for a central that is not there (a fetch fails).
    fn updater(&self, version: &str, version_dir: &str) -> Updater {
        Updater {
            versions: Versions::new(self.versions.clone()),
            credentials: Some(Credentials {
                server_id: "srv_redteam".into(),
                agent_secret: "secret".into(),
                central_url: "http://127.0.0.1:1".into(),
                ca_certificate_pem: None,
            }),
            roots: TrustedRoots::new([self.root.public_key().clone()]),
            identity: Identity { version: version.into(), version_dir: Some(version_dir.into()) },
            trial: Mutex::new(None),
        }
    }

    /// An update of `from` to `to` as central would build it, with the approver's `downgrade`.
    fn content(&self, from: &str, to: &str, downgrade: bool, allow_downgrade: bool) -> ActionContent {
        let expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        let manifest = Manifest {
            version: to.parse::<ReleaseVersion>().unwrap(),
            target: this_target(),
            sha256: "ab".repeat(32),
            size: 18,
            min_central: "0.1.0".parse().unwrap(),
            expires_at,
        };
        let statement = SigningKeyStatement {
            key_id: self.signing.key_id().clone(),
            public_key: self.signing.public_key().clone(),
            not_after: expires_at,
        };
        let bundle = ReleaseBundle {
            statement: Signed::sign(&statement, &self.root).unwrap(),
            manifest: Signed::sign(&manifest, &self.signing).unwrap(),
        };
        ActionContent::AgentUpdate {
            from_version: from.into(),
            to_version: to.into(),
            target: manifest.target.clone(),
            sha256: manifest.sha256.clone(),
            size_bytes: manifest.size,
            manifest_expires_at: expires_at.to_string(),
            downgrade,
            allow_downgrade,
            bundle_json: serde_json::to_string(&bundle).unwrap(),
        }
    }
}

fn reason(e: &mttrly_core::MttrlyError) -> String {
    e.details().get("reason").and_then(|r| r.as_str()).unwrap_or_default().to_owned()
}

/// Key rotation: the installed 99.0.0's manifest no longer verifies (its root was dropped), so
/// the process reports its compiled 0.1.0 while running from `versions/99.0.0`. Re-publishing
/// 99.0.0 under the new root and updating to it must not clear that directory: before, staging
/// removed it and the failed fetch left `current` dangling (nothing to start, nothing to roll
/// back to).
#[tokio::test]
async fn staging_never_clears_the_running_versions_directory() {
    let host = Host::new("99.0.0");
    let updater = host.updater("0.1.0", "99.0.0");
    let err = updater.prepare("act_redteam", &host.content("0.1.0", "99.0.0", false, false)).await.unwrap_err();
    assert_eq!(reason(&err), "version_dir_in_use", "{err}");
    assert!(host.versions.join("99.0.0").join(BINARY).is_file(), "the running binary was removed");
    assert!(host.versions.join("current").join(BINARY).is_file(), "current dangles");
    assert_eq!(updater.versions.marker().unwrap(), None);

    // The same holds for the directory `current` names when the process runs from another one.
    let host = Host::new("99.0.0");
    std::fs::create_dir_all(host.versions.join("0.1.0")).unwrap();
    let updater = host.updater("0.1.0", "0.1.0");
    let err = updater.prepare("act_redteam", &host.content("0.1.0", "99.0.0", false, false)).await.unwrap_err();
    assert_eq!(reason(&err), "version_dir_in_use", "{err}");
    assert!(host.versions.join("current").join(BINARY).is_file(), "current dangles");

    // A genuinely new version passes these checks and fails only at the (absent) central.
    let err = updater.prepare("act_redteam", &host.content("0.1.0", "100.0.0", false, false)).await.unwrap_err();
    assert_eq!(err.code(), mttrly_core::ErrorCode::ConnectionError, "{err}");
    assert!(!host.versions.join("100.0.0").exists(), "a failed fetch leaves no version directory");
}

/// The approver was shown "upgrade 1.0.0 → 1.5.0" (with `allow_downgrade` ticked as a blanket
/// option); meanwhile another update brought 2.0.0. Running the approved action now would be a
/// downgrade nobody saw: refused as a content mismatch, nothing staged.
#[tokio::test]
async fn an_approval_for_another_starting_version_is_not_a_downgrade_consent() {
    let host = Host::new("2.0.0");
    let updater = host.updater("2.0.0", "2.0.0");
    let err = updater.prepare("act_redteam", &host.content("1.0.0", "1.5.0", false, true)).await.unwrap_err();
    assert_eq!(reason(&err), "content_mismatch", "{err}");
    assert!(!host.versions.join("1.5.0").exists());

    // The content's own downgrade flag must match what the release is here.
    let err = updater.prepare("act_redteam", &host.content("2.0.0", "1.5.0", false, true)).await.unwrap_err();
    assert_eq!(reason(&err), "content_mismatch", "{err}");

    // An expiry other than the manifest's (what the approver read) is a mismatch too.
    let mut content = host.content("2.0.0", "3.0.0", false, false);
    if let ActionContent::AgentUpdate { manifest_expires_at, .. } = &mut content {
        *manifest_expires_at = "2099-01-01T00:00:00Z".into();
    }
    let err = updater.prepare("act_redteam", &content).await.unwrap_err();
    assert_eq!(reason(&err), "content_mismatch", "{err}");

    // Shown as a downgrade and allowed: it passes the checks (and fails at the absent central).
    let err = updater.prepare("act_redteam", &host.content("2.0.0", "1.5.0", true, true)).await.unwrap_err();
    assert_eq!(err.code(), mttrly_core::ErrorCode::ConnectionError, "{err}");
}
