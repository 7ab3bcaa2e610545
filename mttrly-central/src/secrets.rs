//! Bearer secrets: generation and hashing.
//!
//! Every secret is 256 random bits, base64url, behind a prefix that says what it is (so secret
//! scanners and humans can tell an install token from an admin token). Central stores only the
//! SHA-256 of a secret; the plaintext is shown once, at creation.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// What a secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A human's CLI token.
    Human,
    /// An assistant's bearer token.
    Assistant,
    /// A single-use agent install token.
    Install,
    /// An agent's long-lived credential.
    Agent,
    /// An OAuth client id (public, not a secret, but unguessable).
    OAuthClient,
    /// A single-use OAuth authorization code.
    OAuthCode,
    /// An OAuth access token (short-lived, bound to the MCP resource).
    OAuthAccess,
    /// An OAuth refresh token (rotated on every use).
    OAuthRefresh,
}

impl SecretKind {
    const fn prefix(self) -> &'static str {
        match self {
            Self::Human => "mttrly_h_",
            Self::Assistant => "mttrly_a_",
            Self::Install => "mttrly_i_",
            Self::Agent => "mttrly_s_",
            Self::OAuthClient => "mttrly_c_",
            Self::OAuthCode => "mttrly_k_",
            Self::OAuthAccess => "mttrly_o_",
            Self::OAuthRefresh => "mttrly_r_",
        }
    }
}

/// A fresh secret of `kind`.
pub fn generate(kind: SecretKind) -> String {
    let mut bytes = [0u8; 32];
    // The OS RNG failing is unrecoverable: no secret may ever be predictable.
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    format!("{}{}", kind.prefix(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_unique_and_hash_stably() {
        let a = generate(SecretKind::Install);
        let b = generate(SecretKind::Install);
        assert!(a.starts_with("mttrly_i_"));
        assert_eq!(a.len(), "mttrly_i_".len() + 43);
        assert_ne!(a, b);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }
}
