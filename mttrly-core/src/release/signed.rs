//! A signed statement as it travels and is stored: the exact JSON payload, the signer's key id,
//! and the Ed25519 signature over a domain tag plus those bytes.
//!
//! The domain tag (`mttrly-release-manifest-v1\n`, ...) keeps a signature of one kind from ever
//! being accepted as another: a signing key's statement is not a manifest even if its bytes
//! happened to parse as one.

use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys::{KeyError, KeyId, PrivateKeyFile, PublicKey};
use super::manifest::{Manifest, SigningKeyStatement};

/// A type that can be signed: its JSON plus a domain tag is what the signature covers.
pub trait Signable: Serialize + DeserializeOwned {
    /// Prefixed to the payload before signing and verifying.
    const DOMAIN: &'static [u8];
}

/// A signed `T`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    /// The canonical JSON of the `T`, exactly the bytes signed.
    pub payload: String,
    /// The id of the key that signed it.
    pub key_id: KeyId,
    /// The Ed25519 signature, base64.
    pub signature: String,
    #[serde(skip)]
    kind: PhantomData<T>,
}

/// A root-signed signing-key statement (the signing key's certificate).
pub type SignedStatement = Signed<SigningKeyStatement>;
/// A signing-key-signed manifest.
pub type SignedManifest = Signed<Manifest>;

/// Why a signed statement was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenError {
    /// Not signed by the key it was checked against.
    WrongKey,
    /// The signature does not verify.
    BadSignature,
    /// It verifies, but the payload is not a canonical `T`.
    BadPayload,
}

impl<T: Signable> Signed<T> {
    /// Signs `value` with `key`.
    pub fn sign(value: &T, key: &PrivateKeyFile) -> Result<Self, KeyError> {
        let payload = serde_json::to_string(value).map_err(|_| KeyError::PrivateKey("value cannot be serialised"))?;
        let signature = key.sign(&signed_bytes::<T>(&payload))?;
        Ok(Self { payload, key_id: key.key_id().clone(), signature: STANDARD.encode(signature), kind: PhantomData })
    }

    /// The value, if `key` signed exactly these bytes and they are the canonical form of a `T`.
    pub(super) fn open(&self, key: &PublicKey) -> Result<T, OpenError> {
        if key.key_id() != self.key_id {
            return Err(OpenError::WrongKey);
        }
        let signature = STANDARD.decode(&self.signature).map_err(|_| OpenError::BadSignature)?;
        if !key.verifies(&signed_bytes::<T>(&self.payload), &signature) {
            return Err(OpenError::BadSignature);
        }
        let value: T = serde_json::from_str(&self.payload).map_err(|_| OpenError::BadPayload)?;
        // One byte form only: what the signer wrote is what serialising the value writes.
        if serde_json::to_string(&value).ok().as_deref() != Some(self.payload.as_str()) {
            return Err(OpenError::BadPayload);
        }
        Ok(value)
    }

    /// The payload parsed without checking the signature: for showing what a refused statement
    /// claimed (audit entries, listings). Never trust it for a decision.
    pub fn claimed(&self) -> Option<T> {
        serde_json::from_str(&self.payload).ok()
    }

    /// The envelope's JSON (what is stored and sent).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an envelope's JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn signed_bytes<T: Signable>(payload: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(T::DOMAIN.len() + payload.len());
    bytes.extend_from_slice(T::DOMAIN);
    bytes.extend_from_slice(payload.as_bytes());
    bytes
}
