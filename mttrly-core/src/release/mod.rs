//! Signed agent releases: two Ed25519 tiers, in Tailscale's model.
//!
//! A **root key** (kept offline; its public half compiled into the agent or listed in the owner's
//! root-owned policy) signs a [`SigningKeyStatement`]: "this public key may sign releases until
//! `not_after`". A **signing key** (rotated, kept where releases are built) signs a
//! [`Manifest`]: "this binary, for this target, with this SHA-256 and size, valid until
//! `expires_at`". The agent accepts a release only when the whole chain verifies
//! ([`verify_release`]); any single failure is a typed [`ReleaseRefusal`] with a seed error code.
//!
//! Signatures cover the exact bytes that travel ([`Signed::payload`]): the verifier never
//! re-serialises what it checks, so there is exactly one byte form of every signed statement and
//! a flipped byte anywhere is a refusal, never a reinterpretation.

mod keys;
mod manifest;
mod signed;
mod verify;
mod version;

pub use keys::{KeyError, KeyId, KeyTier, PrivateKeyFile, PublicKey};
pub use manifest::{Manifest, SigningKeyStatement};
pub use signed::{Signed, SignedManifest, SignedStatement};
pub use verify::{
    ReleaseBundle, ReleaseChecks, ReleaseRefusal, TrustedRoots, VerifiedRelease, verify_identity, verify_release,
    verify_unrooted,
};
pub use version::{ReleaseVersion, VersionError};

/// The target triple this build runs on (`x86_64-linux`, `aarch64-linux`, ...): what an agent
/// asks for and what a manifest must name.
pub fn this_target() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The owner's `[updates]` policy section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdatesPolicy {
    /// Root public keys (`ed25519:<base64>`) trusted besides the compiled-in ones.
    pub trusted_root_keys: Vec<PublicKey>,
}
