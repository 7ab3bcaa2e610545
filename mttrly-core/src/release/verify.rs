//! The one verdict on a release: [`verify_release`] walks the chain root → signing key →
//! manifest and then the manifest's claims against this host (expiry, target, downgrade, the
//! central it needs). Central runs it before offering a release to an approver and the agent runs
//! it again before staging a byte: the agent never trusts central's word for a release.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::keys::{KeyId, PublicKey};
use super::manifest::{Manifest, SigningKeyStatement};
use super::signed::{OpenError, SignedManifest, SignedStatement};
use super::version::ReleaseVersion;
use crate::error::{ErrorCode, MttrlyError};

/// The root public keys a verifier trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedRoots(Vec<PublicKey>);

impl TrustedRoots {
    /// Trusts exactly `keys`.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let mut keys: Vec<PublicKey> = keys.into_iter().collect();
        keys.dedup();
        Self(keys)
    }

    /// Parses a comma- or whitespace-separated list of `ed25519:<base64>` keys (the build-time
    /// `MTTRLY_RELEASE_ROOT_KEYS` form).
    pub fn parse_list(text: &str) -> Result<Self, super::KeyError> {
        let keys = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(keys))
    }

    /// Adds `more` (the owner's policy keys to the compiled-in ones).
    #[must_use]
    pub fn with(mut self, more: impl IntoIterator<Item = PublicKey>) -> Self {
        for key in more {
            if !self.0.contains(&key) {
                self.0.push(key);
            }
        }
        self
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.0
    }

    fn find(&self, id: &KeyId) -> Option<&PublicKey> {
        self.0.iter().find(|k| k.key_id() == *id)
    }
}

/// A release as stored and sent: the signing key's certificate and the manifest it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBundle {
    /// The root-signed statement certifying the signing key.
    pub statement: SignedStatement,
    /// The manifest, signed by that signing key.
    pub manifest: SignedManifest,
}

/// What a release is checked against besides its signatures.
#[derive(Debug, Clone)]
pub struct ReleaseChecks<'a> {
    /// The instant expiries are compared with.
    pub now: Timestamp,
    /// The version running now (`None`: direction not checked, as when publishing).
    pub current_version: Option<&'a ReleaseVersion>,
    /// Whether the approved action explicitly allows an older version.
    pub allow_downgrade: bool,
    /// The target this host runs (`None`: any target, as when publishing).
    pub target: Option<&'a str>,
    /// Central's version, when the verifier knows it (central does; the agent checks what central
    /// told it).
    pub central_version: Option<&'a ReleaseVersion>,
}

/// A release that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    /// The manifest, verified.
    pub manifest: Manifest,
    /// The signing key's statement, verified.
    pub statement: SigningKeyStatement,
    /// The root that certified the signing key.
    pub root_key_id: KeyId,
    /// Whether it is older than the running version (only when allowed).
    pub downgrade: bool,
}

/// Why a release is refused. Each has a stable reason slug (audit entries and error details carry
/// it) and a seed error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseRefusal {
    /// No root key is trusted at all (a development build with no policy keys).
    #[error("no release root key is trusted here: list one in the policy's [updates] trusted_root_keys")]
    NoTrustedRoots,
    /// The signing key's statement names a root this verifier does not trust.
    #[error("the signing key is certified by root {0}, which is not trusted here")]
    UntrustedRoot(KeyId),
    /// The root's signature over the statement does not verify.
    #[error("the signing key's certificate has a bad root signature")]
    BadRootSignature,
    /// The statement verifies but is not well formed (its key id is not its key's).
    #[error("the signing key's certificate is malformed: {0}")]
    MalformedStatement(&'static str),
    /// The root vouches for the signing key no longer.
    #[error("the signing key {key_id} expired at {not_after}")]
    SigningKeyExpired {
        /// The signing key.
        key_id: KeyId,
        /// When it expired.
        not_after: Timestamp,
    },
    /// The manifest was signed by another key than the certified one.
    #[error("the manifest is signed by key {0}, not by the certified signing key")]
    WrongSigningKey(KeyId),
    /// The signing key's signature over the manifest does not verify.
    #[error("the manifest has a bad signature")]
    BadManifestSignature,
    /// The manifest verifies but is not well formed.
    #[error("the manifest is malformed: {0}")]
    MalformedManifest(&'static str),
    /// The manifest is past its expiry (an old manifest replayed).
    #[error("the manifest for {version} expired at {expires_at}")]
    ManifestExpired {
        /// Its version.
        version: ReleaseVersion,
        /// When it expired.
        expires_at: Timestamp,
    },
    /// The release is for another target.
    #[error("the release is for {manifest}, this host runs {host}")]
    WrongTarget {
        /// The manifest's target.
        manifest: String,
        /// This host's.
        host: String,
    },
    /// The release is older than what runs, and the approval did not allow that.
    #[error("{to} is older than the running {from}: a downgrade needs allow_downgrade in the approved action")]
    Downgrade {
        /// The running version.
        from: ReleaseVersion,
        /// The release.
        to: ReleaseVersion,
    },
    /// The release is what runs already.
    #[error("{0} is already running")]
    SameVersion(ReleaseVersion),
    /// The release needs a newer central.
    #[error("{version} needs central {min_central} or newer; this central is {central}")]
    CentralTooOld {
        /// The release.
        version: String,
        /// What it needs.
        min_central: String,
        /// What central is.
        central: String,
    },
    /// The version was tried on this host and rolled back.
    #[error("{0} failed its self-test here before and is marked skipped")]
    Skipped(ReleaseVersion),
    /// The binary received is larger than its manifest says.
    #[error("the binary is larger than the manifest's {expected} bytes")]
    TooLarge {
        /// The manifest's size.
        expected: u64,
    },
    /// The binary received is not the manifest's size.
    #[error("the binary has {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// The manifest's size.
        expected: u64,
        /// What arrived.
        actual: u64,
    },
    /// The binary received does not hash to the manifest's SHA-256.
    #[error("the binary's SHA-256 is {actual}, the manifest says {expected}")]
    HashMismatch {
        /// The manifest's.
        expected: String,
        /// What arrived.
        actual: String,
    },
}

impl ReleaseRefusal {
    /// The stable reason slug.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::NoTrustedRoots => "no_trusted_roots",
            Self::UntrustedRoot(_) => "untrusted_root",
            Self::BadRootSignature => "bad_root_signature",
            Self::MalformedStatement(_) => "malformed_statement",
            Self::SigningKeyExpired { .. } => "signing_key_expired",
            Self::WrongSigningKey(_) => "wrong_signing_key",
            Self::BadManifestSignature => "bad_manifest_signature",
            Self::MalformedManifest(_) => "malformed_manifest",
            Self::ManifestExpired { .. } => "manifest_expired",
            Self::WrongTarget { .. } => "wrong_target",
            Self::Downgrade { .. } => "downgrade",
            Self::SameVersion(_) => "same_version",
            Self::CentralTooOld { .. } => "central_too_old",
            Self::Skipped(_) => "skipped_version",
            Self::TooLarge { .. } => "too_large",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::HashMismatch { .. } => "hash_mismatch",
        }
    }

    /// The seed error code: a broken or untrusted chain, an expiry, a downgrade and a tampered
    /// binary are a safety policy's refusal (`POLICY_DENIED`); a release that is simply not for
    /// this host is a bad request (`VALIDATION_ERROR`); a release that needs a newer central is
    /// `CONTRACT_VERSION_UNSUPPORTED`.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::WrongTarget { .. } | Self::SameVersion(_) => ErrorCode::ValidationError,
            Self::CentralTooOld { .. } => ErrorCode::ContractVersionUnsupported,
            _ => ErrorCode::PolicyDenied,
        }
    }

    /// The refusal as the seed error (details: `reason`).
    pub fn to_error(&self) -> MttrlyError {
        MttrlyError::new(self.code(), format!("release refused: {self}")).with_detail("reason", self.reason())
    }
}

impl From<ReleaseRefusal> for MttrlyError {
    fn from(refusal: ReleaseRefusal) -> Self {
        refusal.to_error()
    }
}

/// Verifies `bundle` against `roots` and `checks`: the root's signature over the signing key,
/// the key's validity, the signing key's signature over the manifest, then the manifest's expiry,
/// target, central version and direction (downgrade). The first failure is the answer.
pub fn verify_release(
    roots: &TrustedRoots,
    bundle: &ReleaseBundle,
    checks: &ReleaseChecks<'_>,
) -> Result<VerifiedRelease, ReleaseRefusal> {
    if roots.keys().is_empty() {
        return Err(ReleaseRefusal::NoTrustedRoots);
    }
    let root = roots
        .find(&bundle.statement.key_id)
        .ok_or_else(|| ReleaseRefusal::UntrustedRoot(bundle.statement.key_id.clone()))?;
    let statement = bundle.statement.open(root).map_err(|e| match e {
        OpenError::WrongKey | OpenError::BadSignature => ReleaseRefusal::BadRootSignature,
        OpenError::BadPayload => ReleaseRefusal::MalformedStatement("its payload is not a canonical statement"),
    })?;
    if statement.public_key.key_id() != statement.key_id {
        return Err(ReleaseRefusal::MalformedStatement("its key id is not its public key's"));
    }
    verify_manifest(statement, root.key_id(), bundle, checks)
}

/// The signatures alone (root → signing key → manifest), with no expiry, target or direction:
/// for an agent telling which installed release it *is* (an installed version stays what it is
/// after its manifest expires; expiry only limits when it may be installed).
pub fn verify_identity(roots: &TrustedRoots, bundle: &ReleaseBundle) -> Result<Manifest, ReleaseRefusal> {
    let root = roots
        .find(&bundle.statement.key_id)
        .ok_or_else(|| ReleaseRefusal::UntrustedRoot(bundle.statement.key_id.clone()))?;
    let statement = bundle.statement.open(root).map_err(|_| ReleaseRefusal::BadRootSignature)?;
    if statement.public_key.key_id() != statement.key_id {
        return Err(ReleaseRefusal::MalformedStatement("its key id is not its public key's"));
    }
    bundle.manifest.open(&statement.public_key).map_err(|_| ReleaseRefusal::BadManifestSignature)
}

/// Central's check of a release: everything [`verify_release`] checks except the root's
/// signature, since central does not know which roots an agent trusts (the owner's policy lists
/// them on the host). The statement must still be canonical and self-consistent, and the manifest
/// must verify under the key it certifies; the agent checks the whole chain again.
pub fn verify_unrooted(bundle: &ReleaseBundle, checks: &ReleaseChecks<'_>) -> Result<VerifiedRelease, ReleaseRefusal> {
    let statement = bundle
        .statement
        .claimed()
        .filter(|s| serde_json::to_string(s).ok().as_deref() == Some(bundle.statement.payload.as_str()))
        .ok_or(ReleaseRefusal::MalformedStatement("its payload is not a canonical statement"))?;
    if statement.public_key.key_id() != statement.key_id {
        return Err(ReleaseRefusal::MalformedStatement("its key id is not its public key's"));
    }
    verify_manifest(statement, bundle.statement.key_id.clone(), bundle, checks)
}

/// The checks after the root: the signing key's validity, the manifest's signature, then the
/// manifest's claims against `checks`.
fn verify_manifest(
    statement: SigningKeyStatement,
    root_key_id: KeyId,
    bundle: &ReleaseBundle,
    checks: &ReleaseChecks<'_>,
) -> Result<VerifiedRelease, ReleaseRefusal> {
    if checks.now > statement.not_after {
        return Err(ReleaseRefusal::SigningKeyExpired { key_id: statement.key_id, not_after: statement.not_after });
    }
    let manifest = bundle.manifest.open(&statement.public_key).map_err(|e| match e {
        OpenError::WrongKey => ReleaseRefusal::WrongSigningKey(bundle.manifest.key_id.clone()),
        OpenError::BadSignature => ReleaseRefusal::BadManifestSignature,
        OpenError::BadPayload => ReleaseRefusal::MalformedManifest("its payload is not a canonical manifest"),
    })?;
    if !manifest.sha256_is_well_formed() {
        return Err(ReleaseRefusal::MalformedManifest("its sha256 is not 64 lowercase hex digits"));
    }
    if checks.now > manifest.expires_at {
        return Err(ReleaseRefusal::ManifestExpired { version: manifest.version, expires_at: manifest.expires_at });
    }
    if let Some(target) = checks.target
        && manifest.target != target
    {
        return Err(ReleaseRefusal::WrongTarget { manifest: manifest.target, host: target.to_owned() });
    }
    if let Some(central) = checks.central_version
        && *central < manifest.min_central
    {
        return Err(ReleaseRefusal::CentralTooOld {
            version: manifest.version.to_string(),
            min_central: manifest.min_central.to_string(),
            central: central.to_string(),
        });
    }
    let mut downgrade = false;
    if let Some(current) = checks.current_version {
        if manifest.version == *current {
            return Err(ReleaseRefusal::SameVersion(manifest.version));
        }
        downgrade = manifest.version < *current;
        if downgrade && !checks.allow_downgrade {
            return Err(ReleaseRefusal::Downgrade { from: current.clone(), to: manifest.version });
        }
    }
    Ok(VerifiedRelease { manifest, statement, root_key_id, downgrade })
}

#[cfg(test)]
mod tests {
    use jiff::ToSpan as _;
    use proptest::prelude::*;

    use super::super::keys::{KeyTier, PrivateKeyFile};
    use super::super::signed::Signed;
    use super::*;

    struct Fixture {
        root: PrivateKeyFile,
        signing: PrivateKeyFile,
        now: Timestamp,
    }

    fn fixture() -> Fixture {
        Fixture {
            root: PrivateKeyFile::generate(KeyTier::Root).unwrap(),
            signing: PrivateKeyFile::generate(KeyTier::Signing).unwrap(),
            now: "2026-12-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn v(s: &str) -> ReleaseVersion {
        s.parse().unwrap()
    }

    impl Fixture {
        fn statement(&self, not_after: Timestamp) -> SignedStatement {
            let statement = SigningKeyStatement {
                key_id: self.signing.key_id().clone(),
                public_key: self.signing.public_key().clone(),
                not_after,
            };
            Signed::sign(&statement, &self.root).unwrap()
        }
    }

    fn manifest(version: &str, target: &str, expires_at: Timestamp) -> Manifest {
        Manifest {
            version: v(version),
            target: target.to_owned(),
            sha256: "ab".repeat(32),
            size: 1234,
            min_central: v("0.1.0"),
            expires_at,
        }
    }

    impl Fixture {
        fn bundle(&self, manifest: &Manifest) -> ReleaseBundle {
            ReleaseBundle {
                statement: self
                    .statement(self.now + 365.days().to_duration(jiff::SpanRelativeTo::days_are_24_hours()).unwrap()),
                manifest: Signed::sign(manifest, &self.signing).unwrap(),
            }
        }

        fn good(&self) -> ReleaseBundle {
            self.bundle(&manifest("99.0.0", "x86_64-linux", self.later()))
        }

        fn later(&self) -> Timestamp {
            self.now + jiff::SignedDuration::from_hours(24)
        }

        fn roots(&self) -> TrustedRoots {
            TrustedRoots::new([self.root.public_key().clone()])
        }
    }

    fn checks(now: Timestamp, current: &ReleaseVersion, allow_downgrade: bool) -> ReleaseChecks<'_> {
        ReleaseChecks {
            now,
            current_version: Some(current),
            allow_downgrade,
            target: Some("x86_64-linux"),
            central_version: None,
        }
    }

    #[test]
    fn a_good_release_verifies() {
        let f = fixture();
        let current = v("0.1.0");
        let verified = verify_release(&f.roots(), &f.good(), &checks(f.now, &current, false)).unwrap();
        assert_eq!(verified.manifest.version, v("99.0.0"));
        assert_eq!(verified.root_key_id, f.root.public_key().key_id());
        assert!(!verified.downgrade);
    }

    #[test]
    fn each_refusal_is_typed_and_coded() {
        let f = fixture();
        let current = v("1.0.0");
        let roots = f.roots();
        let refuse =
            |bundle: &ReleaseBundle, checks: &ReleaseChecks<'_>| verify_release(&roots, bundle, checks).unwrap_err();

        assert_eq!(
            verify_release(&TrustedRoots::default(), &f.good(), &checks(f.now, &current, false)).unwrap_err(),
            ReleaseRefusal::NoTrustedRoots
        );

        let other = PrivateKeyFile::generate(KeyTier::Root).unwrap();
        let err = verify_release(
            &TrustedRoots::new([other.public_key().clone()]),
            &f.good(),
            &checks(f.now, &current, false),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "untrusted_root");

        // A statement signed by another key but claiming the trusted root's id.
        let mut forged = f.good();
        let statement = SigningKeyStatement {
            key_id: f.signing.key_id().clone(),
            public_key: f.signing.public_key().clone(),
            not_after: f.later(),
        };
        let mut by_other = Signed::sign(&statement, &other).unwrap();
        by_other.key_id = f.root.key_id().clone();
        forged.statement = by_other;
        assert_eq!(refuse(&forged, &checks(f.now, &current, false)), ReleaseRefusal::BadRootSignature);

        let mut expired_key = f.good();
        expired_key.statement = f.statement(f.now - jiff::SignedDuration::from_secs(1));
        assert_eq!(refuse(&expired_key, &checks(f.now, &current, false)).reason(), "signing_key_expired");

        let mut wrong_signer = f.good();
        wrong_signer.manifest = Signed::sign(&manifest("99.0.0", "x86_64-linux", f.later()), &other).unwrap();
        assert_eq!(refuse(&wrong_signer, &checks(f.now, &current, false)).reason(), "wrong_signing_key");

        let mut bad_sig = f.good();
        bad_sig.manifest.key_id = f.signing.key_id().clone();
        bad_sig.manifest.payload = bad_sig.manifest.payload.replace("99.0.0", "98.0.0");
        assert_eq!(refuse(&bad_sig, &checks(f.now, &current, false)), ReleaseRefusal::BadManifestSignature);

        let expired = f.bundle(&manifest("99.0.0", "x86_64-linux", f.now - jiff::SignedDuration::from_secs(1)));
        let err = refuse(&expired, &checks(f.now, &current, false));
        assert_eq!(err.reason(), "manifest_expired");
        assert_eq!(err.code(), ErrorCode::PolicyDenied);

        let arm = f.bundle(&manifest("99.0.0", "aarch64-linux", f.later()));
        assert_eq!(refuse(&arm, &checks(f.now, &current, false)).code(), ErrorCode::ValidationError);

        let old = f.bundle(&manifest("0.9.0", "x86_64-linux", f.later()));
        let err = refuse(&old, &checks(f.now, &current, false));
        assert_eq!(err, ReleaseRefusal::Downgrade { from: v("1.0.0"), to: v("0.9.0") });
        let allowed = verify_release(&roots, &old, &checks(f.now, &current, true)).unwrap();
        assert!(allowed.downgrade);

        let same = f.bundle(&manifest("1.0.0", "x86_64-linux", f.later()));
        assert_eq!(refuse(&same, &checks(f.now, &current, true)).reason(), "same_version");

        let mut needs = manifest("99.0.0", "x86_64-linux", f.later());
        needs.min_central = v("5.0.0");
        let central = v("0.1.0");
        let mut with_central = checks(f.now, &current, false);
        with_central.central_version = Some(&central);
        let err = refuse(&f.bundle(&needs), &with_central);
        assert_eq!(err.code(), ErrorCode::ContractVersionUnsupported);
        assert_eq!(err.to_error().details()["reason"], "central_too_old");

        let mut short = manifest("99.0.0", "x86_64-linux", f.later());
        short.sha256 = "AB".repeat(32);
        assert_eq!(refuse(&f.bundle(&short), &checks(f.now, &current, false)).reason(), "malformed_manifest");
    }

    #[test]
    fn central_checks_everything_but_the_root() {
        let f = fixture();
        let current = v("0.1.0");
        let verified = verify_unrooted(&f.good(), &checks(f.now, &current, false)).unwrap();
        assert_eq!(verified.root_key_id, f.root.public_key().key_id());
        let mut bad = f.good();
        bad.manifest.payload = bad.manifest.payload.replace("99.0.0", "98.0.0");
        assert_eq!(
            verify_unrooted(&bad, &checks(f.now, &current, false)).unwrap_err(),
            ReleaseRefusal::BadManifestSignature
        );
        let expired = f.bundle(&manifest("99.0.0", "x86_64-linux", f.now - jiff::SignedDuration::from_secs(1)));
        assert_eq!(
            verify_unrooted(&expired, &checks(f.now, &current, false)).unwrap_err().reason(),
            "manifest_expired"
        );
    }

    #[test]
    fn a_statement_is_not_a_manifest() {
        // Domain separation: the root's signature over a statement never verifies as a manifest.
        let f = fixture();
        let mut swapped = f.good();
        swapped.manifest = Signed::from_json(&swapped.statement.to_json()).unwrap();
        let current = v("0.1.0");
        assert!(verify_release(&f.roots(), &swapped, &checks(f.now, &current, false)).is_err());
    }

    /// Re-signs `payload` (any bytes) with `key` under the manifest domain: what a holder of the
    /// signing key can produce, so the verifier's parse must not depend on the signer's goodwill.
    fn signed_payload(key: &PrivateKeyFile, payload: &str) -> SignedManifest {
        use super::super::signed::Signable as _;
        use base64::Engine as _;
        let mut bytes = Manifest::DOMAIN.to_vec();
        bytes.extend_from_slice(payload.as_bytes());
        let mut signed = Signed::sign(&manifest("0.0.1", "x", Timestamp::UNIX_EPOCH), key).unwrap();
        signed.payload = payload.to_owned();
        signed.signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&bytes).unwrap());
        signed
    }

    /// Red team (canonicalisation): a validly signed payload whose JSON is ambiguous or not the
    /// canonical form — a duplicated key (which parser wins?), reordered keys, whitespace, an
    /// escaped spelling, a trailing field — is refused, never interpreted.
    #[test]
    fn a_signed_but_non_canonical_manifest_is_refused() {
        let f = fixture();
        let current = v("0.1.0");
        let good = manifest("99.0.0", "x86_64-linux", f.later());
        let canonical = serde_json::to_string(&good).unwrap();
        // The canonical bytes signed this way verify: the helper is sound.
        let mut bundle = f.good();
        bundle.manifest = signed_payload(&f.signing, &canonical);
        assert!(verify_release(&f.roots(), &bundle, &checks(f.now, &current, false)).is_ok());
        let variants = [
            canonical.replacen("{\"version\":\"99.0.0\"", "{\"version\":\"0.0.1\",\"version\":\"99.0.0\"", 1),
            canonical.replacen(
                ",\"target\":\"x86_64-linux\"",
                ",\"target\":\"x86_64-linux\",\"target\":\"aarch64-linux\"",
                1,
            ),
            canonical.replace(',', ", "),
            canonical.replacen("x86_64-linux", "x86_64\\u002dlinux", 1),
            canonical.replacen('}', ",\"extra\":1}", 1),
            format!(" {canonical}"),
            {
                let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&canonical).unwrap();
                let version = value.remove("version").unwrap();
                value.insert("version".into(), version);
                serde_json::to_string(&value).unwrap()
            },
        ];
        for payload in variants {
            assert_ne!(payload, canonical);
            bundle.manifest = signed_payload(&f.signing, &payload);
            let err = verify_release(&f.roots(), &bundle, &checks(f.now, &current, false)).unwrap_err();
            assert_eq!(err.reason(), "malformed_manifest", "{payload}");
            assert!(verify_identity(&f.roots(), &bundle).is_err(), "{payload}");
        }
    }

    /// Red team (rollback disguised by ordering): `rc.10` → `rc.9` is a downgrade under semver;
    /// a string comparison of tags would have let it through without `allow_downgrade`.
    #[test]
    fn a_pre_release_downgrade_needs_the_approval_flag() {
        let f = fixture();
        let current = v("1.0.0-rc.10");
        let older = f.bundle(&manifest("1.0.0-rc.9", "x86_64-linux", f.later()));
        let err = verify_release(&f.roots(), &older, &checks(f.now, &current, false)).unwrap_err();
        assert_eq!(err.reason(), "downgrade");
        assert_eq!(verify_unrooted(&older, &checks(f.now, &current, false)).unwrap_err().reason(), "downgrade");
        assert!(verify_release(&f.roots(), &older, &checks(f.now, &current, true)).unwrap().downgrade);
        let newer = f.bundle(&manifest("1.0.0-rc.11", "x86_64-linux", f.later()));
        assert!(!verify_release(&f.roots(), &newer, &checks(f.now, &current, false)).unwrap().downgrade);
    }

    /// Red team (key confusion): a root key cannot stand in for a signing key unless a root
    /// certified it, and a signing key cannot certify another signing key (only roots do).
    #[test]
    fn tiers_do_not_substitute_for_each_other() {
        let f = fixture();
        let current = v("0.1.0");
        // The manifest signed by the root itself, with the good statement: not the certified key.
        let mut by_root = f.good();
        by_root.manifest = Signed::sign(&manifest("99.0.0", "x86_64-linux", f.later()), &f.root).unwrap();
        assert_eq!(
            verify_release(&f.roots(), &by_root, &checks(f.now, &current, false)).unwrap_err().reason(),
            "wrong_signing_key"
        );
        // A signing key certifying a second key of its own: its id is not a trusted root.
        let rogue = PrivateKeyFile::generate(KeyTier::Signing).unwrap();
        let statement = SigningKeyStatement {
            key_id: rogue.key_id().clone(),
            public_key: rogue.public_key().clone(),
            not_after: f.later(),
        };
        let chained = ReleaseBundle {
            statement: Signed::sign(&statement, &f.signing).unwrap(),
            manifest: Signed::sign(&manifest("99.0.0", "x86_64-linux", f.later()), &rogue).unwrap(),
        };
        assert_eq!(
            verify_release(&f.roots(), &chained, &checks(f.now, &current, false)).unwrap_err().reason(),
            "untrusted_root"
        );
        assert!(verify_identity(&f.roots(), &chained).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any one flipped byte anywhere in the stored bundle (statement, manifest, either
        /// signature, either key id) is refused: either it no longer parses or it no longer
        /// verifies. Never a different release.
        #[test]
        fn any_flipped_byte_is_refused(position in any::<prop::sample::Index>(), bit in 0u8..8) {
            let f = fixture();
            let current = v("0.1.0");
            let bundle = f.good();
            let mut bytes = serde_json::to_vec(&bundle).unwrap();
            let i = position.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(tampered) = serde_json::from_slice::<ReleaseBundle>(&bytes) {
                prop_assert_ne!(&tampered, &bundle);
                prop_assert!(verify_release(&f.roots(), &tampered, &checks(f.now, &current, false)).is_err());
            }
        }
    }
}
