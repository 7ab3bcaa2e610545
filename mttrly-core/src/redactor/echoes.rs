//! A secret found once is a secret wherever else the same text prints it.
//!
//! Why: the rules read a secret where its context says so (`token = '…'`, `--password …`,
//! `Authorization: Bearer …`), but output often prints the same value again without that
//! context: a shell trace echoing what it exported, a config dump followed by the command line
//! built from it, a client's debug log quoting the header it sent, a tool listing `'…' | '…'`. So
//! once a value is found, every other occurrence of it is redacted too, under the same rule.
//!
//! Only *distinctive* values are looked for again: a password such as `postgres` or `admin` is
//! still redacted where a rule finds it, but the same word elsewhere (a user, a database, a
//! process name) is ordinary text.

use aho_corasick::{AhoCorasick, MatchKind};

use super::Finding;

/// At most this many distinct values are looked for in one text (the first ones found): a text
/// holding more secrets than this is a dump, and its repeats cost one pass per value otherwise.
const MAX_VALUES: usize = 256;
/// Longer values are not looked for again (a signed JWT with claims runs to a few kilobytes).
const MAX_LEN: usize = 8192;

/// A value already found, and the rule that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) value: String,
    pub(super) rule: &'static str,
    pub(super) rank: u16,
}

/// Whether `v` is worth looking for elsewhere: long enough, one line, and not a word (`postgres`,
/// `changeme`) or a number a text prints for other reasons.
pub(super) fn distinctive(v: &str) -> bool {
    let n = v.len();
    if !(8..=MAX_LEN).contains(&n) || v.contains(['\n', '\r']) || v.contains("[REDACTED:") {
        return false;
    }
    let letters = v.bytes().filter(u8::is_ascii_alphabetic).count();
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let spaces = v.bytes().filter(u8::is_ascii_whitespace).count();
    if spaces > 0 {
        // A phrase: only a long one is its own (`correct horse battery staple`), and prose a
        // rule swallowed as a value (`$DB_PASS  # do not share`) is not printed twice.
        return n >= 20 && letters > 0;
    }
    if letters == 0 {
        // Digits and symbols: a PIN or a port list reads like many other numbers; twenty digits
        // and more are an account's token, not a count or a time.
        return n >= 20 || (n >= 16 && digits < n);
    }
    if letters + v.bytes().filter(|&b| b == b'-' || b == b'_' || b == b'.').count() == n {
        // Letters (and word separators) only: a word or a name unless it is long.
        return n >= 12;
    }
    true
}

/// The distinctive values of `found` (findings in `text`), in order of first appearance.
pub(super) fn values(text: &str, found: &[Finding]) -> Vec<Known> {
    let mut out: Vec<Known> = Vec::new();
    for f in found {
        let value = trim(&text[f.start..f.end]);
        if distinctive(value) && !out.iter().any(|k| k.value == value) {
            out.push(Known { value: value.to_owned(), rule: f.rule, rank: f.rank });
            if out.len() == MAX_VALUES {
                break;
            }
        }
    }
    out
}

/// A finding's value without the quotes and spaces a rule may have kept around it.
fn trim(v: &str) -> &str {
    v.trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
}

/// Adds a finding for every occurrence in `text` of a known value that no finding in `found`
/// (sorted, merged) covers yet. An occurrence inside a longer word (`abc123` in `xabc123y`) is a
/// different string and stays. Returns whether anything was added (`found` is then unsorted).
pub(super) fn find(text: &str, known: &[Known], found: &mut Vec<Finding>) -> bool {
    let known: Vec<&Known> = known.iter().filter(|k| text.len() >= k.value.len()).collect();
    if known.is_empty() {
        return false;
    }
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let covered_until = found.len();
    let mut added = false;
    for (k, start, end) in occurrences(text, &known) {
        let k = known[k];
        let glued_before = start > 0 && word(b[start - 1]) && word(b[start]) && !after_escape(b, start);
        if glued_before || (end < b.len() && word(b[end]) && word(b[end - 1])) {
            continue;
        }
        let first = found[..covered_until].partition_point(|f| f.end <= start);
        if found[..covered_until].get(first).is_some_and(|f| f.start < end) {
            continue;
        }
        found.push(Finding { ctx: start, start, end, rule: k.rule, rank: k.rank });
        added = true;
    }
    added
}

/// Every non-overlapping occurrence of a known value in `text` (leftmost, longest first), as
/// (index into `known`, start, end), in order.
///
/// Why two ways: a text usually holds a few secrets, and one SIMD substring search per value
/// (`memmem`) runs at memory speed; an Aho-Corasick automaton over a few patterns picks two
/// "rare" bytes to skip to, which in log text are not rare (it cost 12 % of the redactor bench's
/// throughput). Past a handful of values one automaton pass is cheaper than a pass per value.
fn occurrences(text: &str, known: &[&Known]) -> Vec<(usize, usize, usize)> {
    const SEPARATE: usize = 8;
    let mut all: Vec<(usize, usize, usize)> = Vec::new();
    if known.len() <= SEPARATE {
        for (i, k) in known.iter().enumerate() {
            let n = k.value.len();
            all.extend(memchr::memmem::find_iter(text.as_bytes(), k.value.as_bytes()).map(|s| (i, s, s + n)));
        }
        all.sort_unstable_by_key(|&(_, s, e)| (s, std::cmp::Reverse(e)));
        let mut last_end = 0;
        all.retain(|&(_, s, e)| {
            let keep = s >= last_end;
            if keep {
                last_end = e;
            }
            keep
        });
        return all;
    }
    let Ok(ac) = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(known.iter().map(|k| &k.value))
    else {
        return all;
    };
    ac.find_iter(text).map(|m| (m.pattern().as_usize(), m.start(), m.end())).collect()
}

/// Whether `b[..at]` ends with an escape whose last byte is a word character: a percent-encoded
/// byte (`%27`), a C or JSON escape (`\n`, `\t`, `\u0027`) or a terminal colour code
/// (`ESC[0m`). What follows it starts a new word, as after the character it stands for.
fn after_escape(b: &[u8], at: usize) -> bool {
    let hex = |c: u8| c.is_ascii_hexdigit();
    (at >= 3 && b[at - 3] == b'%' && hex(b[at - 2]) && hex(b[at - 1]))
        || (at >= 2 && b[at - 2] == b'\\' && b"ntrfvbe0".contains(&b[at - 1]))
        || (at >= 6 && b[at - 6] == b'\\' && b[at - 5] == b'u' && b[at - 4..at].iter().all(|&c| hex(c)))
        || (b[at - 1].is_ascii_alphabetic() && {
            let from = at.saturating_sub(16);
            b[from..at - 1].iter().rposition(|&c| c == 0x1b).is_some_and(|esc| {
                let seq = &b[from + esc + 1..at - 1];
                seq.first() == Some(&b'[') && seq[1..].iter().all(|c| c.is_ascii_digit() || *c == b';')
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_distinctive_values_are_looked_for_again() {
        for v in [
            "vZrEclFwOqeA1",
            "hunter22",
            "S3cr3t!x",
            "correct horse battery staple",
            "abcdefghijkl",
            "1234-5678-9012-3456",
            "97347413371939051267",
        ] {
            assert!(distinctive(v), "{v}");
        }
        for v in [
            "postgres",
            "changeme",
            "admin",
            "secret",
            "12345678",
            "1733490000123456",
            "password",
            "do not share",
            "[REDACTED:x]",
            "two\nlines",
            "db-admin",
        ] {
            assert!(!distinctive(v), "{v}");
        }
    }

    #[test]
    fn an_occurrence_inside_a_longer_word_is_a_different_string() {
        let known = [Known { value: "abc123xyz".into(), rule: "r", rank: 5 }];
        let text = "xabc123xyz abc123xyz abc123xyzq _abc123xyz 'abc123xyz' =abc123xyz&";
        let mut found = Vec::new();
        assert!(find(text, &known, &mut found));
        let spans: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(spans.len(), 3, "{found:?}");
        assert_eq!(found.iter().map(|f| f.start).collect::<Vec<_>>(), vec![11, 44, 56]);
    }

    #[test]
    fn an_occurrence_right_after_an_escape_starts_a_word() {
        let known = [Known { value: "abc123xyz".into(), rule: "r", rank: 5 }];
        let text = "q=%27abc123xyz%27 \\nabc123xyz \\u0027abc123xyz \u{1b}[1;31mabc123xyz\u{1b}[0m Xnabc123xyz";
        let mut found = Vec::new();
        assert!(find(text, &known, &mut found));
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().all(|f| &text[f.start..f.end] == "abc123xyz"));
    }

    #[test]
    fn both_searches_find_the_same_occurrences() {
        let values: Vec<Known> = (0..12).map(|i| Known { value: format!("tok{i}Xq9zW"), rule: "r", rank: 1 }).collect();
        let text = (0..40).fold(String::new(), |mut t, i| {
            t.push_str(&format!("a tok{}Xq9zW b tok1Xq9zWtok11Xq9zW ", i % 12));
            t
        });
        let few: Vec<&Known> = values.iter().take(8).collect();
        let many: Vec<&Known> = values.iter().collect();
        // The same eight values through the automaton (the list padded past the threshold with
        // values that never occur) and through one substring search each.
        let absent: Vec<Known> =
            (0..4).map(|i| Known { value: format!("absent{i}zzzz"), rule: "r", rank: 1 }).collect();
        let padded: Vec<&Known> = few.iter().copied().chain(absent.iter()).collect();
        let by_search: Vec<(usize, usize)> = occurrences(&text, &few).into_iter().map(|(_, s, e)| (s, e)).collect();
        let by_automaton: Vec<(usize, usize)> =
            occurrences(&text, &padded).into_iter().map(|(_, s, e)| (s, e)).collect();
        assert_eq!(by_search, by_automaton);
        assert!(!by_search.is_empty());
        // Longest first where two values start at the same place (`tok1…` inside `tok11…`).
        let all = occurrences(&text, &many);
        assert!(all.windows(2).all(|w| w[0].2 <= w[1].1), "non-overlapping, in order");
    }

    #[test]
    fn a_covered_occurrence_is_not_found_twice() {
        let known = [Known { value: "abc123xyz".into(), rule: "r", rank: 5 }];
        let text = "k=abc123xyz then abc123xyz";
        let mut found = vec![Finding { ctx: 0, start: 2, end: 11, rule: "r", rank: 5 }];
        assert!(find(text, &known, &mut found));
        assert_eq!(found.len(), 2);
        assert_eq!((found[1].start, found[1].end), (17, 26));
    }
}
