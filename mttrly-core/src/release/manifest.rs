//! What the two tiers sign: a signing key's statement (signed by a root) and a release's manifest
//! (signed by a signing key). Fields are serialised in declaration order with no whitespace; that
//! JSON is the canonical form ([`super::Signed`] signs it and keeps it byte for byte).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::keys::{KeyId, PublicKey};
use super::signed::Signable;
use super::version::ReleaseVersion;

/// A root's word that a signing key may sign releases until `not_after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyStatement {
    /// The signing key's id (must be the id of `public_key`).
    pub key_id: KeyId,
    /// The signing key's public half.
    pub public_key: PublicKey,
    /// After this instant the root no longer vouches for the key.
    pub not_after: Timestamp,
}

impl Signable for SigningKeyStatement {
    const DOMAIN: &'static [u8] = b"mttrly-release-signing-key-v1\n";
}

/// One release of the agent for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The release's version.
    pub version: ReleaseVersion,
    /// The target it runs on (`x86_64-linux`, see [`super::this_target`]).
    pub target: String,
    /// SHA-256 of the binary, 64 lowercase hex digits.
    pub sha256: String,
    /// The binary's size in bytes.
    pub size: u64,
    /// The oldest central this agent works with.
    pub min_central: ReleaseVersion,
    /// After this instant the manifest is refused: an old manifest cannot be replayed forever.
    pub expires_at: Timestamp,
}

impl Signable for Manifest {
    const DOMAIN: &'static [u8] = b"mttrly-release-manifest-v1\n";
}

impl Manifest {
    /// Whether `sha256` is 64 lowercase hex digits (the only spelling compared against).
    pub fn sha256_is_well_formed(&self) -> bool {
        self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}
