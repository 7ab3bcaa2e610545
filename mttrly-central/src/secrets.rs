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
    /// A device code of `mttrly-cli login` (RFC 8628): the CLI polls with it, nothing else takes it.
    DeviceCode,
}

impl SecretKind {
    /// Every kind.
    pub const ALL: [SecretKind; 9] = [
        Self::Human,
        Self::Assistant,
        Self::Install,
        Self::Agent,
        Self::OAuthClient,
        Self::OAuthCode,
        Self::OAuthAccess,
        Self::OAuthRefresh,
        Self::DeviceCode,
    ];

    /// The kind a presented secret claims by its prefix, or `None` for anything central never
    /// issued. A claim only: the secret still has to match a stored hash.
    pub fn of(secret: &str) -> Option<SecretKind> {
        Self::ALL.into_iter().find(|k| secret.starts_with(k.prefix()))
    }

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
            Self::DeviceCode => "mttrly_d_",
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

    #[test]
    fn a_secret_claims_the_kind_it_was_generated_as_and_nothing_else_claims_one() {
        for kind in SecretKind::ALL {
            assert_eq!(SecretKind::of(&generate(kind)), Some(kind));
        }
        for other in ["", "mttrly_", "MTTRLY_H_abc", "mttrly_x_abc", "Bearer mttrly_h_abc", " mttrly_h_abc", "ghp_abc"]
        {
            assert_eq!(SecretKind::of(other), None, "{other:?}");
        }
    }
}
