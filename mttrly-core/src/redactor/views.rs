//! The decoded view of a text: the same text as a reader sees it once its encodings are undone.
//!
//! Output reaches the redactor encoded in ways that hide a secret's shape from every rule at
//! once: a JSON string logged inside JSON (`\"name\":\"DB_PASSWORD\",\"value\":\"…\"`, a
//! separator written `\u003d`), a multi-line message whose lines are `\n` escapes, a query string
//! inside a query string (`next=%2Fapi%3Ftoken%3D…`), `grep --color` and other terminal colours
//! between a key and its value (`DB_PASSWORD ESC[m ESC[K=…`), a configuration shown in an HTML
//! page with its quotes as entities (`{&quot;password&quot;:&quot;…&quot;}`, `?a=1&amp;token=…`). Teaching each rule each encoding
//! would fix one rule at a time; instead the whole redactor also reads the decoded view, and what
//! it finds there maps back to the original bytes (a finding covers every escape that spells
//! it). Only texts that hold such an encoding get a view, so plain text costs one scan.

/// A decoded text and, for each of its bytes, the original bytes it came from.
pub(super) struct View {
    pub(super) text: String,
    /// `units[i]`: the original range that byte `i` of `text` decodes from.
    units: Vec<(u32, u32)>,
}

impl View {
    /// The original range of the view's range `start..end` (`start < end`).
    pub(super) fn original(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.units[start].0 as usize;
        let last = self.units[end - 1].1 as usize;
        (first, last)
    }

    /// `inner`, a view of this view's text, mapped onto this view's original instead.
    fn beneath(&self, inner: View) -> View {
        let units =
            inner.units.iter().map(|&(s, e)| (self.units[s as usize].0, self.units[e as usize - 1].1)).collect();
        View { text: inner.text, units }
    }

    /// The original position of the view's position `at` (a match's context start).
    pub(super) fn original_start(&self, at: usize) -> usize {
        self.units.get(at).map_or_else(|| self.units.last().map_or(0, |u| u.1 as usize), |u| u.0 as usize)
    }
}

/// How many times an encoding inside an encoding is undone (`%253D` in a redirect inside a
/// redirect, JSON escaped inside a JSON string inside a log record).
const LEVELS: usize = 3;

/// The decoded views of `text`, each an encoding deeper than the one before and each mapped onto
/// `text`'s bytes; none when it holds nothing to decode.
pub(super) fn decode_all(text: &str) -> Vec<View> {
    let mut views: Vec<View> = Vec::new();
    while views.len() < LEVELS {
        let next = match views.last() {
            None => decode(text),
            Some(last) => decode(&last.text).map(|v| last.beneath(v)),
        };
        match next {
            Some(v) => views.push(v),
            None => break,
        }
    }
    views
}

/// The decoded view of `text`, or `None` when it holds nothing to decode (or is too long to map
/// with 32-bit offsets, far beyond what one redaction is given).
fn decode(text: &str) -> Option<View> {
    if u32::try_from(text.len()).is_err() {
        return None;
    }
    // HTML character references are undone alone, a level before the other escapes: a page shows
    // a command's text as written (`printf &#39;%s\n&#39;`), whose `\n` is no line break.
    let html = has_reference(text.as_bytes());
    if !html && !has_escape(text.as_bytes()) {
        return None;
    }
    let escapes = unescape(text, html);
    let source = escapes.as_ref().map_or(text, |v| v.text.as_str());
    let plain = strip_terminal(source);
    match (escapes, plain) {
        (None, None) => None,
        (Some(v), None) => Some(v),
        (None, Some(p)) => Some(p),
        (Some(v), Some(p)) => Some(v.beneath(p)),
    }
}

/// Whether `b` holds an HTML character reference (a SIMD scan for `&`).
fn has_reference(b: &[u8]) -> bool {
    memchr::memchr_iter(b'&', b).any(|i| entity(b, i).is_some())
}

/// A cheap look for the first byte of another encoding the view undoes (a SIMD scan: plain log
/// text pays it and nothing else).
fn has_escape(b: &[u8]) -> bool {
    memchr::memchr3_iter(0x1b, b'\\', b'%', b).any(|i| match b[i] {
        b'\\' => b
            .get(i + 1)
            .is_some_and(|n| matches!(n, b'"' | b'\\' | b'/' | b'\'' | b'n' | b'r' | b't' | b'u' | b'x' | b'e' | b'0')),
        b'%' => percent_char(b, i).is_some(),
        _ => true,
    })
}

/// Builds a view byte by byte.
struct Builder {
    text: String,
    units: Vec<(u32, u32)>,
    changed: bool,
}

impl Builder {
    fn new(len: usize) -> Self {
        Self { text: String::with_capacity(len), units: Vec::with_capacity(len), changed: false }
    }

    /// `c`, decoded from the original `start..end` (offsets fit in `u32`: [`decode`] checked).
    fn push(&mut self, c: char, start: usize, end: usize) {
        self.text.push(c);
        let unit = (u32::try_from(start).unwrap_or(u32::MAX), u32::try_from(end).unwrap_or(u32::MAX));
        self.units.resize(self.text.len(), unit);
    }

    fn finish(self) -> Option<View> {
        self.changed.then_some(View { text: self.text, units: self.units })
    }
}

/// The ASCII byte a `%XX` escape at `i` spells: printable characters, the whitespace a line
/// holds, and ESC (a colour code, which the view then strips). Escapes of other bytes stay as written (a view must stay UTF-8, and `%0A` splitting a
/// line would move the line-shaped rules).
fn percent_byte(b: &[u8], i: usize) -> Option<u8> {
    let hex = b.get(i + 1..i + 3)?;
    let s = std::str::from_utf8(hex).ok()?;
    let v = u8::from_str_radix(s, 16).ok()?;
    (v == b'\t' || v == 0x1b || (0x20..0x7f).contains(&v)).then_some(v)
}

/// The character a run of `%XX` escapes at `i` spells: an ASCII one (see [`percent_byte`]) or
/// the escapes of one UTF-8 encoded character (`%D0%BA`), with the run's length.
fn percent_char(b: &[u8], i: usize) -> Option<(char, usize)> {
    let byte = |at: usize| -> Option<u8> {
        (b.get(at) == Some(&b'%')).then_some(())?;
        let s = std::str::from_utf8(b.get(at + 1..at + 3)?).ok()?;
        u8::from_str_radix(s, 16).ok()
    };
    let lead = byte(i)?;
    let len = match lead {
        0x00..0x80 => return percent_byte(b, i).map(|v| (char::from(v), 3)),
        0xC2..0xE0 => 2,
        0xE0..0xF0 => 3,
        0xF0..0xF5 => 4,
        _ => return None,
    };
    let mut buf = [0u8; 4];
    for (k, slot) in buf.iter_mut().enumerate().take(len) {
        *slot = byte(i + 3 * k)?;
    }
    let c = std::str::from_utf8(&buf[..len]).ok()?.chars().next()?;
    Some((c, 3 * len))
}

/// Four hex digits at `i` as a number.
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// JSON and C string escapes (`\"`, `\\`, `\/`, `\n`, `\t`, `\u003d`, surrogate pairs, `\x1b`,
/// `\e`, `\033`) and percent-encoded ASCII decoded; or, when `html`, HTML character references
/// only.
fn unescape(text: &str, html: bool) -> Option<View> {
    let b = text.as_bytes();
    let mut out = Builder::new(text.len());
    let mut i = 0;
    while i < b.len() {
        let decoded = match b[i] {
            b'&' if html => entity(b, i),
            b'\\' if !html => backslash(b, i),
            b'%' if !html => percent_char(b, i),
            _ => None,
        };
        if let Some((c, len)) = decoded {
            out.push(c, i, i + len);
            out.changed = true;
            i += len;
        } else {
            // `i` is always at a character boundary: escapes are ASCII.
            let Some(c) = text[i..].chars().next() else { break };
            out.push(c, i, i + c.len_utf8());
            i += c.len_utf8();
        }
    }
    out.finish()
}

/// The character an HTML character reference at `i` spells (`&quot;`, `&amp;`, `&#61;`,
/// `&#x3D;`), and its length. Only printable ASCII and the whitespace a line holds: a reference
/// to anything else stays as written, as a percent escape does.
fn entity(b: &[u8], i: usize) -> Option<(char, usize)> {
    const NAMED: &[(&[u8], char)] = &[
        (b"quot;", '"'),
        (b"apos;", '\''),
        (b"amp;", '&'),
        (b"lt;", '<'),
        (b"gt;", '>'),
        (b"equals;", '='),
        (b"colon;", ':'),
        (b"sol;", '/'),
        (b"nbsp;", ' '),
        (b"NonBreakingSpace;", ' '),
        (b"Tab;", '\t'),
        (b"lowbar;", '_'),
        (b"UnderBar;", '_'),
    ];
    /// HTML's legacy references, also read in capitals (`&QUOT;`).
    const LEGACY: &[&[u8]] = &[b"quot;", b"amp;", b"lt;", b"gt;"];
    let rest = b.get(i + 1..)?;
    let named = |name: &[u8]| {
        rest.get(..name.len())
            .is_some_and(|head| head == name || (LEGACY.contains(&name) && head.eq_ignore_ascii_case(name)))
    };
    if let Some(&(name, decoded)) = NAMED.iter().find(|(name, _)| named(name)) {
        return Some((decoded, 1 + name.len()));
    }
    let digits = rest.strip_prefix(b"#")?;
    let (hex, digits) = match digits.first() {
        Some(b'x' | b'X') => (true, &digits[1..]),
        _ => (false, digits),
    };
    // Zero padding may be any length (`&#0000000061;`); the number itself is at most eight digits.
    let zeros = digits.iter().take_while(|d| **d == b'0').count().saturating_sub(1);
    let digits = &digits[zeros..];
    let len =
        digits.iter().take(8).take_while(|d| if hex { d.is_ascii_hexdigit() } else { d.is_ascii_digit() }).count();
    if len == 0 || digits.get(len) != Some(&b';') {
        return None;
    }
    let number = std::str::from_utf8(&digits[..len]).ok()?;
    let code = u32::from_str_radix(number, if hex { 16 } else { 10 }).ok()?;
    let decoded = char::from_u32(code).filter(|d| *d == '\t' || (' '..='~').contains(d))?;
    Some((decoded, 2 + usize::from(hex) + zeros + len + 1))
}

/// The character a backslash escape at `i` spells, and the escape's length.
fn backslash(b: &[u8], i: usize) -> Option<(char, usize)> {
    let simple = match *b.get(i + 1)? {
        c @ (b'"' | b'\\' | b'/' | b'\'') => char::from(c),
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'e' => '\u{1b}',
        b'0' if b.get(i + 2..i + 4) == Some(b"33") => return Some(('\u{1b}', 4)),
        b'x' => {
            let s = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
            let v = u8::from_str_radix(s, 16).ok().filter(u8::is_ascii)?;
            return Some((char::from(v), 4));
        }
        b'u' => {
            let unit = hex4(b, i + 2)?;
            if (0xD800..0xDC00).contains(&unit) {
                // A surrogate pair spells one character; a lone surrogate spells none.
                if b.get(i + 6..i + 8) != Some(b"\\u") {
                    return None;
                }
                let low = hex4(b, i + 8).filter(|l| (0xDC00..0xE000).contains(l))?;
                let c = char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?;
                return Some((c, 12));
            }
            return char::from_u32(unit).map(|c| (c, 6));
        }
        _ => return None,
    };
    Some((simple, 2))
}

/// `text` without its terminal control sequences: CSI (`ESC[01;31m`, `ESC[K`), OSC up to BEL or
/// ST (`ESC]8;;file://…ESC\`, the hyperlinks `ls` and `grep` print), and two-byte escapes.
fn strip_terminal(text: &str) -> Option<View> {
    let b = text.as_bytes();
    if !b.contains(&0x1b) {
        return None;
    }
    let mut out = Builder::new(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0x1b {
            i += control_len(b, i);
            // Sequences are ASCII; a malformed one never ends inside a character.
            while i < b.len() && !text.is_char_boundary(i) {
                i += 1;
            }
            out.changed = true;
            continue;
        }
        let Some(c) = text[i..].chars().next() else { break };
        out.push(c, i, i + c.len_utf8());
        i += c.len_utf8();
    }
    out.finish()
}

/// The length of the control sequence starting with the ESC at `i` (at least 1).
fn control_len(b: &[u8], i: usize) -> usize {
    match b.get(i + 1) {
        Some(b'[') => {
            let mut j = i + 2;
            while b.get(j).is_some_and(|c| (0x20..0x40).contains(c)) {
                j += 1;
            }
            match b.get(j) {
                Some(c) if (0x40..0x7f).contains(c) => j + 1 - i,
                _ => j - i,
            }
        }
        Some(b']') => {
            // Bounded, so an unterminated OSC does not hide the rest of the text.
            let end = b.len().min(i + 2 + 512);
            let mut j = i + 2;
            while j < end {
                match b[j] {
                    0x07 => return j + 1 - i,
                    0x1b if b.get(j + 1) == Some(&b'\\') => return j + 2 - i,
                    b'\n' => break,
                    _ => j += 1,
                }
            }
            2
        }
        // A character set designation (`ESC(B`): ESC, the bracket and one ASCII byte.
        Some(b'(' | b')') => 2 + usize::from(b.get(i + 2).is_some_and(u8::is_ascii)),
        Some(c) if (0x40..0x60).contains(c) => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> String {
        decode(s).map_or_else(|| s.to_owned(), |v| v.text)
    }

    /// HTML character references: named ones a page writes for quotes and brackets, decimal
    /// and hex ones of printable ASCII; anything else (no `;`, a control character, a non-ASCII
    /// one) stays as written. They are undone a level before backslash escapes.
    #[test]
    fn html_references_are_read_and_others_stay() {
        let cases = [
            ("&quot;", Some(('"', 6))),
            ("&amp;", Some(('&', 5))),
            ("&#61;", Some(('=', 5))),
            ("&#x3D;", Some(('=', 6))),
            ("&#X3d;", Some(('=', 6))),
            ("&#39;", Some(('\'', 5))),
            ("&amp", None),
            ("&#;", None),
            ("&#0;", None),
            ("&#x1F600;", None),
            ("&#61", None),
            ("&copy;", None),
            ("&QUOT;", Some(('"', 6))),
            ("&Tab;", Some(('\t', 5))),
            ("&lowbar;", Some(('_', 8))),
            ("&#0000000034;", Some(('"', 13))),
            ("&#x00000003D;", Some(('=', 13))),
            ("&#00;", None),
        ];
        for (text, want) in cases {
            assert_eq!(entity(text.as_bytes(), 0), want, "{text}");
        }
        assert_eq!(view("{&quot;password&quot;:&quot;x&quot;}"), r#"{"password":"x"}"#);
        // A command shown in a page: its `\n` is no line break in the first view.
        assert_eq!(view(r"printf &#39;%s\n&#39;"), r"printf '%s\n'");
        assert_eq!(decode_all(r"printf &#39;%s\n&#39;")[1].text, "printf '%s\n'");
    }

    #[test]
    fn every_encoding_decodes_and_maps_back_to_its_bytes() {
        assert_eq!(view(r#"{\"a\":\"b\\c\/d\"}"#), r#"{"a":"b\c/d"}"#);
        assert_eq!(view(r"x\u003dy\nz\tw"), "x=y\nz\tw");
        assert_eq!(view(r"\ud83d\ude00 and \ud83d alone"), "\u{1F600} and \\ud83d alone");
        assert_eq!(view("next=%2Fapi%3Ftoken%3Dabc%0Adef%ZZ%20x"), "next=/api?token=abc%0Adef%ZZ x");
        assert_eq!(view("%D0%BA%E3%81%A7 %D0 %FF%1B[1mx"), "кで %D0 %FFx");
        assert_eq!(view("K\x1b[m\x1b[K=v \x1b[01;31mred\x1b[0m"), "K=v red");
        assert_eq!(view(r"\u001b[32mgreen\x1b[0m \e[1mb\033[0m"), "green b");
        assert_eq!(view("\x1b]8;;file:///etc/x\x1b\\x\x1b]8;;\x07 done"), "x done");
        assert!(decode("plain text, 50% off, C:\\Windows").is_none());
        let nested = decode_all(r#"{"log":"{\"msg\":\"a\\u003db\"}"} next=%253D"#);
        assert_eq!(
            nested.iter().map(|v| v.text.as_str()).collect::<Vec<_>>(),
            [r#"{"log":"{"msg":"a\u003db"}"} next=%3D"#, r#"{"log":"{"msg":"a=b"}"} next=="#,]
        );
        let (s, e) = nested[1].original(17, 18);
        assert_eq!(&r#"{"log":"{\"msg\":\"a\\u003db\"}"} next=%253D"#[s..e], r"\\u003d");
        let text = "pw\x1b[m\x1b[K\\u003dsecret";
        let v = decode(text).expect("a view");
        assert_eq!(v.text, "pw=secret");
        let (s, e) = v.original(2, 3);
        assert_eq!(&text[s..e], "\\u003d");
        let (s, e) = v.original(1, 4);
        assert_eq!(&text[s..e], "w\x1b[m\x1b[K\\u003ds");
    }

    #[test]
    fn truncated_escapes_decode_to_themselves() {
        for s in ["\\", "\\u12", "\\ud800", "%4", "\x1b", "\x1b[", "\x1b[12", "\x1b]8;;x", "\\x1", "\\03"] {
            let v = view(s);
            assert!(v.len() <= s.len(), "{s:?} -> {v:?}");
        }
    }
}
