//! Passwords for people who sign in without an identity provider: argon2id hashes in PHC string
//! form, and the length rules of NIST SP 800-63B (long passphrases welcome, no composition rules).
//!
//! Hashing costs ~20 ms of one core by design, so callers run it on the blocking pool. A sign-in
//! for an unknown name verifies against a fixed dummy hash, so the time taken does not tell which
//! names exist.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing work one request can ask for).
pub const MAX_BYTES: usize = 1024;

/// Why a new password is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefusal {
    /// Too short.
    #[error("a password needs at least {MIN_CHARS} characters (a passphrase of a few words is best)")]
    TooShort,
    /// Too long.
    #[error("a password may be at most {MAX_BYTES} bytes")]
    TooLong,
    /// Contains the user's own name.
    #[error("a password must not contain your user name")]
    ContainsName,
    /// Control characters (they do not survive every keyboard and terminal).
    #[error("a password must not contain control characters")]
    Control,
}

/// OWASP's argon2id baseline: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_else(|_| unreachable!("constant parameters are valid"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password for `user_name`.
pub fn check_new(password: &str, user_name: &str) -> Result<(), PasswordRefusal> {
    if password.len() > MAX_BYTES {
        return Err(PasswordRefusal::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordRefusal::TooShort);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordRefusal::Control);
    }
    if user_name.chars().count() >= 3 && password.to_lowercase().contains(&user_name.to_lowercase()) {
        return Err(PasswordRefusal::ContainsName);
    }
    Ok(())
}

/// Hashes `password` with a fresh salt from the operating system. Blocking (~20 ms).
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .unwrap_or_else(|_| unreachable!("hashing with valid parameters cannot fail"))
        .to_string()
}

/// Whether `password` matches `stored` (a PHC string written by [`hash`]). With `None` (no such
/// user), verifies against a dummy hash and returns false, taking the same time. Blocking.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("a password nobody has: the dummy for unknown names"));
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy.as_str(), false),
    };
    if password.len() > MAX_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("a stored password hash is not a PHC string; refusing the sign-in");
        return false;
    };
    // The parameters come from the stored string, so raising them later keeps old hashes valid.
    let ok = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash("correct horse battery staple");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", Some(&h)));
        assert!(!verify("correct horse battery stapl", Some(&h)));
        assert!(!verify("", Some(&h)));
        assert_ne!(hash("correct horse battery staple"), h, "a fresh salt each time");
    }

    #[test]
    fn unknown_users_and_broken_hashes_never_verify() {
        assert!(!verify("a password nobody has: the dummy for unknown names", None));
        assert!(!verify("anything", Some("not a phc string")));
        assert!(!verify("anything", Some("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$")));
    }

    #[test]
    fn the_rules_for_a_new_password() {
        assert_eq!(check_new("short", "bob"), Err(PasswordRefusal::TooShort));
        assert_eq!(check_new(&"x".repeat(MAX_BYTES + 1), "bob"), Err(PasswordRefusal::TooLong));
        assert_eq!(check_new("my name is BOB and more", "bob"), Err(PasswordRefusal::ContainsName));
        assert_eq!(check_new("twelve chars\u{7}x", "bob"), Err(PasswordRefusal::Control));
        assert_eq!(check_new("correct horse battery staple", "bob"), Ok(()));
        // Twelve characters, not twelve bytes.
        assert_eq!(check_new("ééééééééééé", "bob"), Err(PasswordRefusal::TooShort));
        assert_eq!(check_new("éééééééééééé", "bob"), Ok(()));
    }
}
