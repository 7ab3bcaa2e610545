//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, 6 digits, 30-second
//! steps, the parameters every authenticator app uses by default (and the only ones several of
//! them honour, which is why none of them is configurable).
//!
//! [`TotpSecret::verify`] accepts the current step and one step either side (clock drift between a
//! phone and the server), and never the step last accepted or an earlier one, so a code seen over
//! a shoulder or in a log cannot be used again — also across restarts, since the caller persists
//! the step it returns.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step (RFC 6238's default `X`).
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// `10^DIGITS`.
const MODULUS: u32 = 1_000_000;
/// Steps accepted on either side of the current one.
pub const SKEW_STEPS: u64 = 1;
/// Bytes of secret: 160 bits, RFC 4226's recommendation and SHA-1's block-friendly key size.
pub const SECRET_BYTES: usize = 20;

/// RFC 4648 base32 without padding, the alphabet `otpauth://` URIs and authenticator apps use.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A shared TOTP secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// Why a code was not accepted. The three cases are told apart for the audit log and the lockout,
/// never to the person typing (who sees one "wrong code" message: telling "replayed" from "wrong"
/// would confirm a guessed code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpRefusal {
    /// Not six ASCII digits (spaces between groups are allowed and ignored).
    #[error("a code is six digits")]
    Malformed,
    /// No step in the accepted window gives this code.
    #[error("wrong code")]
    Wrong,
    /// The code matches a step at or before the last accepted one.
    #[error("this code was already used")]
    Replayed,
}

/// Why a stored secret could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a TOTP secret is {SECRET_BYTES} bytes of RFC 4648 base32 (32 characters)")]
pub struct BadSecret;

impl TotpSecret {
    /// A secret from random bytes the caller drew from the operating system.
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes)
    }

    /// The secret in base32, as stored and as shown in the enrollment URI.
    pub fn to_base32(&self) -> String {
        let mut out = String::with_capacity(32);
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for &byte in &self.0 {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
            }
        }
        // 160 bits is a multiple of 5: nothing is left over.
        out
    }

    /// Reads a secret written by [`Self::to_base32`] (case-insensitive, as apps print it).
    pub fn from_base32(text: &str) -> Result<Self, BadSecret> {
        let mut bytes = [0u8; SECRET_BYTES];
        let mut buffer: u32 = 0;
        let mut bits = 0;
        let mut n = 0;
        for c in text.bytes() {
            let value = BASE32.iter().position(|&b| b == c.to_ascii_uppercase()).ok_or(BadSecret)?;
            buffer = (buffer << 5) | u32::try_from(value).map_err(|_| BadSecret)?;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                *bytes.get_mut(n).ok_or(BadSecret)? = ((buffer >> bits) & 0xff) as u8;
                n += 1;
            }
        }
        if n == SECRET_BYTES && bits == 0 { Ok(Self(bytes)) } else { Err(BadSecret) }
    }

    /// The `otpauth://totp/` URI an authenticator app scans (Google's Key URI Format): the issuer
    /// names the deployment, the account the person, so one phone can hold several centrals.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(account),
            self.to_base32()
        )
    }

    /// The code for `step` (RFC 4226 §5.3: dynamic truncation of HMAC-SHA1 over the big-endian
    /// step counter).
    pub fn code_at(&self, step: u64) -> u32 {
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let binary = (u32::from(digest[offset] & 0x7f) << 24)
            | (u32::from(digest[offset + 1]) << 16)
            | (u32::from(digest[offset + 2]) << 8)
            | u32::from(digest[offset + 3]);
        binary % MODULUS
    }

    /// Checks `code` at Unix time `now` against the steps `now ± SKEW_STEPS`, refusing any step at
    /// or before `last_accepted`. Returns the step that matched: the caller must persist it as the
    /// new `last_accepted` in the same transaction that acts on the sign-in, or a replay within the
    /// window would pass.
    pub fn verify(&self, code: &str, now_unix: u64, last_accepted: Option<u64>) -> Result<u64, TotpRefusal> {
        let wanted = parse_code(code)?;
        let current = now_unix / STEP_SECONDS;
        let mut replayed = false;
        // Every step in the window is computed and compared, whatever matched, so the time taken
        // does not tell which step (or whether any) matched.
        let mut matched = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
            if constant_time_eq(self.code_at(step), wanted) {
                if last_accepted.is_some_and(|last| step <= last) {
                    replayed = true;
                } else if matched.is_none() {
                    matched = Some(step);
                }
            }
        }
        match (matched, replayed) {
            (Some(step), _) => Ok(step),
            (None, true) => Err(TotpRefusal::Replayed),
            (None, false) => Err(TotpRefusal::Wrong),
        }
    }
}

/// Six ASCII digits, allowing spaces or a dash between groups as apps display them ("123 456").
fn parse_code(code: &str) -> Result<u32, TotpRefusal> {
    let mut value = 0u32;
    let mut digits = 0;
    for c in code.trim().chars() {
        match c {
            '0'..='9' => {
                digits += 1;
                if digits > DIGITS {
                    return Err(TotpRefusal::Malformed);
                }
                value = value * 10 + (c as u32 - '0' as u32);
            }
            ' ' | '-' => {}
            _ => return Err(TotpRefusal::Malformed),
        }
    }
    if digits == DIGITS { Ok(value) } else { Err(TotpRefusal::Malformed) }
}

fn constant_time_eq(a: u32, b: u32) -> bool {
    std::hint::black_box(a ^ b) == 0
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed, "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors_truncated_to_six_digits() {
        // (time, eight-digit TOTP from the RFC); six digits are the last six.
        let vectors = [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (time, eight) in vectors {
            assert_eq!(rfc_secret().code_at(time / STEP_SECONDS), eight % 1_000_000, "t = {time}");
        }
    }

    #[test]
    fn the_window_is_one_step_either_side_and_no_more() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / STEP_SECONDS;
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = format!("{:06}", s.code_at(step.checked_add_signed(offset).unwrap()));
            let result = s.verify(&code, now, None);
            // A code from a far step can collide with one in the window by chance (1 in 10^6):
            // these fixed values do not.
            assert_eq!(result.is_ok(), ok, "offset {offset}: {result:?}");
        }
    }

    #[test]
    fn a_code_is_never_accepted_twice_nor_an_older_one_after_a_newer() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / STEP_SECONDS;
        let code = format!("{:06}", s.code_at(step));
        let accepted = s.verify(&code, now, None).unwrap();
        assert_eq!(accepted, step);
        assert_eq!(s.verify(&code, now, Some(accepted)), Err(TotpRefusal::Replayed));
        assert_eq!(s.verify(&code, now + 29, Some(accepted)), Err(TotpRefusal::Replayed));
        let older = format!("{:06}", s.code_at(step - 1));
        assert_eq!(s.verify(&older, now, Some(accepted)), Err(TotpRefusal::Replayed));
        let newer = format!("{:06}", s.code_at(step + 1));
        assert_eq!(s.verify(&newer, now, Some(accepted)), Ok(step + 1));
    }

    #[test]
    fn malformed_codes_are_refused_before_any_comparison() {
        let s = rfc_secret();
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６", "123456\0", "+123456", "0x1234"] {
            assert_eq!(s.verify(bad, 59, None), Err(TotpRefusal::Malformed), "{bad:?}");
        }
        let code = format!("{:06}", s.code_at(1));
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(s.verify(&spaced, 59, None).is_ok());
    }

    #[test]
    fn base32_round_trips_and_rejects_anything_else() {
        let s = rfc_secret();
        assert_eq!(s.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_base32(&s.to_base32()).unwrap(), s);
        assert_eq!(TotpSecret::from_base32(&s.to_base32().to_lowercase()).unwrap(), s);
        for bad in [
            "",
            "GEZDGNBVGY3TQOJQ",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQA",
            "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ=",
        ] {
            assert_eq!(TotpSecret::from_base32(bad), Err(BadSecret), "{bad:?}");
        }
    }

    #[test]
    fn the_enrollment_uri_follows_the_key_uri_format_and_escapes_names() {
        let uri = rfc_secret().otpauth_uri("mttrly prod", "bob@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/mttrly%20prod:bob%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=mttrly%20prod&algorithm=SHA1&digits=6&period=30"
        );
        let hostile = rfc_secret().otpauth_uri("a?secret=AAAA&x=", "b/c:d");
        assert_eq!(hostile.matches("secret=").count(), 1, "{hostile}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret(..)");
    }

    proptest::proptest! {
        #[test]
        fn any_secret_round_trips_through_base32(bytes: [u8; SECRET_BYTES]) {
            let s = TotpSecret::from_bytes(bytes);
            proptest::prop_assert_eq!(TotpSecret::from_base32(&s.to_base32()).unwrap(), s);
        }

        #[test]
        fn the_current_code_always_verifies_and_only_once(bytes: [u8; SECRET_BYTES], now in 60u64..4_000_000_000) {
            let s = TotpSecret::from_bytes(bytes);
            let code = format!("{:06}", s.code_at(now / STEP_SECONDS));
            let step = s.verify(&code, now, None).unwrap();
            proptest::prop_assert!(step.abs_diff(now / STEP_SECONDS) <= SKEW_STEPS);
            proptest::prop_assert!(s.verify(&code, now, Some(now / STEP_SECONDS + SKEW_STEPS)).is_err());
        }

        #[test]
        fn verify_never_panics(code in "\\PC{0,12}", now: u64, last: Option<u64>) {
            let _ = rfc_secret().verify(&code, now, last);
        }
    }
}
