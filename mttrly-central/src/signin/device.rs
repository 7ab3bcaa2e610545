//! RFC 8628 user codes: what a person reads off their terminal and types into the browser.
//!
//! Eight characters from RFC 8628 §6.1's suggested alphabet of twenty consonants (no vowels, so no
//! words; no look-alikes), shown as `WDJB-MJHT`: 20^8 ≈ 2^34.6 codes. With a 10-minute lifetime
//! and the sign-in page's own rate limit, guessing a live code is out of reach. What the person
//! types is normalised (case, dashes, spaces) before it is compared.

/// RFC 8628 §6.1: "BCDFGHJKLMNPQRSTVWXZ".
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a code.
pub const LENGTH: usize = 8;

/// A user code from random bytes (rejection sampling keeps every letter equally likely). Returns
/// `None` if the bytes ran out first, in which case the caller draws more.
pub fn user_code(random: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(LENGTH + 1);
    let mut n = 0;
    for &b in random {
        // 240 = 12 × 20: values at or above it would favour the first letters.
        if b >= 240 {
            continue;
        }
        if n == LENGTH / 2 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b % 20)]));
        n += 1;
        if n == LENGTH {
            return Some(out);
        }
    }
    None
}

/// What a person typed, in the stored form (`WDJB-MJHT`), or `None` if it cannot be a code.
pub fn normalise(typed: &str) -> Option<String> {
    let mut letters = String::with_capacity(LENGTH);
    for c in typed.chars() {
        match c {
            '-' | ' ' => {}
            c if c.is_ascii_alphabetic() && ALPHABET.contains(&(c.to_ascii_uppercase() as u8)) => {
                if letters.len() == LENGTH {
                    return None;
                }
                letters.push(c.to_ascii_uppercase());
            }
            _ => return None,
        }
    }
    (letters.len() == LENGTH).then(|| format!("{}-{}", &letters[..LENGTH / 2], &letters[LENGTH / 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_consonant_alphabet_in_two_groups() {
        let code = user_code(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        assert_eq!(code, "BCDF-GHJK");
        assert_eq!(user_code(&[19; 8]).unwrap(), "ZZZZ-ZZZZ");
        assert_eq!(user_code(&[255, 250, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap(), "BCDF-GHJK", "biased bytes are skipped");
        assert_eq!(user_code(&[255; 64]), None);
    }

    #[test]
    fn typing_variants_normalise_and_anything_else_is_refused() {
        for typed in ["wdjb-mjht", "WDJBMJHT", " wdjb mjht ", "WdJb-MjHt"] {
            assert_eq!(normalise(typed).as_deref(), Some("WDJB-MJHT"), "{typed:?}");
        }
        for bad in ["", "WDJB-MJH", "WDJB-MJHTX", "WDJB-MJH1", "AEIO-UUUU", "WDJB_MJHT", "ＷDJB-MJHT"] {
            assert_eq!(normalise(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_letter_is_reachable_and_equally_likely() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let mut counts = [0usize; 20];
        for chunk in bytes.chunks(8) {
            if let Some(code) = user_code(chunk) {
                for c in code.bytes().filter(|c| *c != b'-') {
                    counts[ALPHABET.iter().position(|a| *a == c).unwrap()] += 1;
                }
            }
        }
        // Bytes 0..240 map 12 to each letter; the last chunks are partly ≥ 240 and are dropped.
        assert!(counts.iter().all(|c| (10..=12).contains(c)), "{counts:?}");
    }
}
