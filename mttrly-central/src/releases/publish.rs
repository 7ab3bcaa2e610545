//! Publishing and listing releases (`mttrly-cli releases publish|list`). Publishing is an admin
//! person's act: a bundle whose signatures do not verify, that is already expired, that needs a
//! newer central, or whose bytes are not the manifest's is refused before anything is stored.

use mttrly_core::release::{ReleaseBundle, ReleaseChecks, ReleaseVersion, VerifiedRelease, verify_unrooted};
use mttrly_core::{ErrorCode, MttrlyError, Role};
use serde_json::json;

use super::store::{Incoming, MAX_BINARY};
use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::db::releases::{ReleaseRow, Stored};
use crate::state::Central;

/// A publish whose bundle passed its checks, receiving the binary.
pub struct Prepared {
    bundle_json: String,
    verified: VerifiedRelease,
    /// Where the bytes go.
    pub incoming: Incoming,
}

/// Refuses anyone but an admin person.
fn require_admin(owner: &TokenOwner) -> Result<(), MttrlyError> {
    if !owner.principal.is_human() || owner.role != Role::Admin {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "publishing agent releases needs an admin person's token"));
    }
    Ok(())
}

/// Checks `bundle_json` and opens a place for its binary.
pub async fn prepare(central: &Central, owner: &TokenOwner, bundle_json: &str) -> Result<Prepared, MttrlyError> {
    require_admin(owner)?;
    let bundle: ReleaseBundle = serde_json::from_str(bundle_json).map_err(|e| {
        MttrlyError::new(ErrorCode::ValidationError, format!("the release bundle is not valid JSON: {e}"))
            .with_detail("field", "bundle_json")
    })?;
    let central_version = super::central_version();
    let checks = ReleaseChecks {
        now: jiff::Timestamp::now(),
        current_version: None,
        allow_downgrade: true,
        target: None,
        central_version: central_version.as_ref(),
    };
    let verified = verify_unrooted(&bundle, &checks).map_err(|r| r.to_error())?;
    if verified.manifest.size > MAX_BINARY {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("a release binary is at most {MAX_BINARY} bytes"),
        ));
    }
    let incoming = Incoming::start(&central.config.data_dir, verified.manifest.size).await?;
    // The stored bundle is re-serialised from what was parsed: one byte form per bundle, so a
    // re-publish of the same bundle is recognised whatever whitespace the file had.
    let bundle_json = serde_json::to_string(&bundle).unwrap_or_default();
    Ok(Prepared { bundle_json, verified, incoming })
}

impl Prepared {
    /// Keeps the binary (if its bytes are the manifest's) and stores the release; audited.
    /// Returns the row and whether the same bundle was already published.
    pub async fn commit(self, central: &Central, owner: &TokenOwner) -> Result<(ReleaseRow, bool), MttrlyError> {
        let manifest = &self.verified.manifest;
        let result = async {
            self.incoming.finish(&central.config.data_dir, &manifest.sha256, manifest.size).await?;
            let row = ReleaseRow {
                target: manifest.target.clone(),
                version: manifest.version.to_string(),
                sha256: manifest.sha256.clone(),
                size: manifest.size,
                min_central: manifest.min_central.to_string(),
                expires_at: manifest.expires_at.as_millisecond(),
                signing_key_id: self.verified.statement.key_id.to_string(),
                root_key_id: self.verified.root_key_id.to_string(),
                bundle_json: self.bundle_json.clone(),
                published_at: now_ms(),
                published_by: owner.user_name.clone(),
            };
            match central.db.account(&owner.account_id).releases().put(row.clone()).await? {
                Stored::Written => Ok((row, false)),
                Stored::Unchanged => Ok((row, true)),
                Stored::Conflict { sha256 } => Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!(
                        "{} for {} is already published with another binary (sha256 {sha256}); a version names one binary",
                        row.version, row.target
                    ),
                )
                .with_detail("reason", "version_taken")),
            }
        }
        .await;
        let parameters = json!({
            "version": manifest.version.to_string(),
            "target": manifest.target,
            "sha256": manifest.sha256,
            "size": manifest.size,
            "signing_key_id": self.verified.statement.key_id.to_string(),
            "root_key_id": self.verified.root_key_id.to_string(),
        });
        central.audit(crate::audit::events::api_call(owner, "releases.publish", None, parameters, &result));
        result
    }
}

/// The account's releases, optionally for one target, newest version first.
pub async fn list(
    central: &Central,
    owner: &TokenOwner,
    target: Option<String>,
) -> Result<Vec<ReleaseRow>, MttrlyError> {
    let mut rows = central.db.account(&owner.account_id).releases().list(target).await?;
    sort_newest_first(&mut rows);
    Ok(rows)
}

/// Orders rows by version, newest first (rows whose version does not parse go last).
pub fn sort_newest_first(rows: &mut [ReleaseRow]) {
    rows.sort_by(|a, b| {
        let (va, vb) = (a.version.parse::<ReleaseVersion>().ok(), b.version.parse::<ReleaseVersion>().ok());
        vb.cmp(&va).then_with(|| a.target.cmp(&b.target))
    });
}
