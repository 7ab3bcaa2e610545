//! Recovery codes: what a person types when their phone is gone. Each is single-use and stored
//! only as a hash.
//!
//! A code carries 80 random bits, written in Crockford's base32 as four groups of four characters
//! (`7hq2-m0xd-9c4e-kt1w`): no `u`, and `i`/`l` read as `1`, `o` as `0`, so a code survives being
//! read aloud or copied from paper. With that much entropy a fast hash (SHA-256) is enough: slow
//! password hashes protect guessable secrets, and these are not guessable.

use std::fmt;

use sha2::{Digest, Sha256};

/// Random bytes per code.
pub const CODE_BYTES: usize = 10;
/// How many codes a person gets at enrollment.
pub const CODES_PER_ENROLLMENT: usize = 10;
/// Symbols per code (80 bits / 5).
const SYMBOLS_PER_CODE: usize = 16;

/// Crockford's base32 alphabet, lower case.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A recovery code in the clear: shown once, at enrollment. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

/// The stored form of a recovery code: hex SHA-256 of its canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecoveryCodeHash(pub String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

impl fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl RecoveryCode {
    /// A code from random bytes the caller drew from the operating system.
    pub fn from_bytes(bytes: [u8; CODE_BYTES]) -> Self {
        let mut symbols = String::with_capacity(SYMBOLS_PER_CODE);
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for byte in bytes {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                symbols.push(char::from(CROCKFORD[((buffer >> bits) & 31) as usize]));
            }
        }
        Self(group(&symbols))
    }

    /// The stored hash of this code.
    pub fn hash(&self) -> RecoveryCodeHash {
        hash_canonical(&self.0)
    }
}

/// Hashes what a person typed, after undoing what humans change when they copy a code: case,
/// spaces, dashes in or out of place, and Crockford's look-alikes (`o` → `0`, `i`/`l` → `1`).
/// Anything else gives `None`, so a malformed entry is refused without a lookup.
pub fn hash_typed(typed: &str) -> Option<RecoveryCodeHash> {
    let mut symbols = String::with_capacity(SYMBOLS_PER_CODE);
    for c in typed.trim().chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c if c.is_ascii() && CROCKFORD.contains(&(c as u8)) => c,
            _ => return None,
        };
        if symbols.len() == SYMBOLS_PER_CODE {
            return None;
        }
        symbols.push(c);
    }
    (symbols.len() == SYMBOLS_PER_CODE).then(|| hash_canonical(&group(&symbols)))
}

/// `abcdefghjkmnpqrs` → `abcd-efgh-jkmn-pqrs`.
fn group(symbols: &str) -> String {
    let mut out = String::with_capacity(symbols.len() + symbols.len() / 4);
    for (i, c) in symbols.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

fn hash_canonical(text: &str) -> RecoveryCodeHash {
    RecoveryCodeHash(hex::encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_four_groups_of_four_crockford_symbols() {
        let code = RecoveryCode::from_bytes([0xff; CODE_BYTES]).to_string();
        assert_eq!(code, "zzzz-zzzz-zzzz-zzzz");
        let code = RecoveryCode::from_bytes([0; CODE_BYTES]).to_string();
        assert_eq!(code, "0000-0000-0000-0000");
        let code = RecoveryCode::from_bytes(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23").to_string();
        assert_eq!(code.len(), 19);
        assert!(code.chars().all(|c| c == '-' || CROCKFORD.contains(&(c as u8))), "{code}");
    }

    #[test]
    fn what_people_do_to_a_code_when_copying_it_still_matches() {
        let code = RecoveryCode::from_bytes(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23");
        let text = code.to_string();
        let stored = code.hash();
        let variants = [
            text.clone(),
            text.to_uppercase(),
            text.replace('-', ""),
            text.replace('-', " "),
            format!("  {text}\n"),
            text.replace('0', "o").replace('1', "l"),
        ];
        for typed in variants {
            assert_eq!(hash_typed(&typed), Some(stored.clone()), "{typed:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_without_a_lookup() {
        let text = RecoveryCode::from_bytes([7; CODE_BYTES]).to_string();
        for bad in [
            "",
            "abcd",
            &format!("{text}0"),
            &text.replace('-', "_"),
            &format!("{}u", &text[..18]),
            "ｚzzz-zzzz-zzzz-zzzz",
        ] {
            assert_eq!(hash_typed(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_code() {
        assert_eq!(format!("{:?}", RecoveryCode::from_bytes([1; CODE_BYTES])), "RecoveryCode(..)");
    }

    proptest::proptest! {
        #[test]
        fn every_code_matches_its_own_hash_and_no_other(a: [u8; CODE_BYTES], b: [u8; CODE_BYTES]) {
            let (ca, cb) = (RecoveryCode::from_bytes(a), RecoveryCode::from_bytes(b));
            proptest::prop_assert_eq!(hash_typed(&ca.to_string()), Some(ca.hash()));
            proptest::prop_assert_eq!(ca.hash() == cb.hash(), a == b);
        }

        #[test]
        fn hash_typed_never_panics(typed in "\\PC{0,40}") {
            let _ = hash_typed(&typed);
        }
    }
}
