//! Ed25519 release keys: public halves as `ed25519:<base64>` (how the owner's policy and the
//! build-time root list spell them), key ids derived from the public key (never chosen, so a
//! statement cannot claim another key's id), and private halves as a small JSON file.
//!
//! The Ed25519 implementation is `ring`'s (RFC 8032; already in every binary through rustls), so
//! signing adds no crate to the agent it has to carry.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The prefix of a public key's text form.
const PREFIX: &str = "ed25519:";
/// The private-key file's format tag.
const FORMAT: &str = "mttrly-release-key-v1";

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not `ed25519:` followed by the base64 of 32 bytes.
    #[error("`{0}` is not an Ed25519 public key (expected ed25519:<base64 of 32 bytes>)")]
    PublicKey(String),
    /// The private-key file is not one `releases keygen` wrote, or its halves disagree.
    #[error("not a release private key: {0}")]
    PrivateKey(&'static str),
    /// The system's random source failed.
    #[error("the system random source failed")]
    Random,
}

/// An Ed25519 public key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's id: the first 8 bytes of SHA-256 of the key, hex.
    pub fn key_id(&self) -> KeyId {
        KeyId(hex::encode(&sha2::Sha256::digest(self.0)[..8]))
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0).verify(message, signature).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(self.0))
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || KeyError::PublicKey(s.chars().take(80).collect());
        let b64 = s.trim().strip_prefix(PREFIX).ok_or_else(bad)?;
        let bytes = STANDARD.decode(b64).map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A key's id (16 hex digits), derived from its public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which tier a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyTier {
    /// Signs signing-key statements; its public half is what agents trust.
    Root,
    /// Signs release manifests, certified by a root until its statement's `not_after`.
    Signing,
}

impl fmt::Display for KeyTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Root => "root",
            Self::Signing => "signing",
        })
    }
}

/// A private key as `releases keygen` writes it (mode 0600): the PKCS#8 document plus the public
/// half and id, so a file can be checked for what it is without using it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateKeyFile {
    format: String,
    tier: KeyTier,
    key_id: KeyId,
    public_key: PublicKey,
    pkcs8: String,
}

impl fmt::Debug for PrivateKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private half, not even in a debug log.
        f.debug_struct("PrivateKeyFile").field("tier", &self.tier).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl PrivateKeyFile {
    /// A fresh key of `tier` from the system's random source.
    pub fn generate(tier: KeyTier) -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
        let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(|_| KeyError::Random)?;
        let public_key = public_of(&pair);
        Ok(Self {
            format: FORMAT.to_owned(),
            tier,
            key_id: public_key.key_id(),
            public_key,
            pkcs8: STANDARD.encode(document.as_ref()),
        })
    }

    /// Reads a key file's JSON, checking that its private and public halves belong together.
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let file: Self = serde_json::from_str(text).map_err(|_| KeyError::PrivateKey("not a key file's JSON"))?;
        if file.format != FORMAT {
            return Err(KeyError::PrivateKey("unknown format"));
        }
        let pair = file.pair()?;
        if public_of(&pair) != file.public_key || file.public_key.key_id() != file.key_id {
            return Err(KeyError::PrivateKey("its public half or key id does not match its private half"));
        }
        Ok(file)
    }

    /// The file's JSON (write it with mode 0600).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The key's tier.
    pub fn tier(&self) -> KeyTier {
        self.tier
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The key's id.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.pair()?.sign(message).as_ref().to_vec())
    }

    fn pair(&self) -> Result<Ed25519KeyPair, KeyError> {
        let der = STANDARD.decode(&self.pkcs8).map_err(|_| KeyError::PrivateKey("its private half is not base64"))?;
        Ed25519KeyPair::from_pkcs8(&der).map_err(|_| KeyError::PrivateKey("its private half is not an Ed25519 key"))
    }
}

fn public_of(pair: &Ed25519KeyPair) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(pair.public_key().as_ref());
    PublicKey(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_and_signs() {
        let key = PrivateKeyFile::generate(KeyTier::Root).unwrap();
        let again = PrivateKeyFile::from_json(&key.to_json()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let sig = again.sign(b"hello").unwrap();
        assert!(key.public_key().verifies(b"hello", &sig));
        assert!(!key.public_key().verifies(b"hellp", &sig));
        let text = key.public_key().to_string();
        assert!(text.starts_with("ed25519:"));
        assert_eq!(text.parse::<PublicKey>().unwrap(), *key.public_key());
        assert_eq!(key.key_id().as_str().len(), 16);
        assert!(!format!("{key:?}").contains(&key.pkcs8));
    }

    #[test]
    fn mismatched_halves_are_refused() {
        let a = PrivateKeyFile::generate(KeyTier::Signing).unwrap();
        let b = PrivateKeyFile::generate(KeyTier::Signing).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        value["public_key"] = serde_json::Value::String(b.public_key().to_string());
        assert!(PrivateKeyFile::from_json(&value.to_string()).is_err());
        for bad in ["", "ed25519:", "ed25519:AAAA", "rsa:AAAA", "ed25519:!!!"] {
            assert!(bad.parse::<PublicKey>().is_err(), "{bad}");
        }
    }
}
