//! Text for humans: what an approver reads must be what is there.
//!
//! Anything a human reads (the CLI, approval prompts, webhooks, later chat and the dashboard) may
//! hold text an assistant or a server chose: a command, a file path, a server name, the
//! assistant's reason. A terminal obeys control sequences (ESC moves the cursor, CR rewrites the
//! line, `\n` draws a fake field below) and bidi overrides reorder what is shown, so such text can
//! *display* as something other than what runs. This module decides from positive knowledge: a
//! character is shown as itself only when it is on an allowlist of plainly visible characters;
//! everything else is shown as a visible escape (`\x1b`, `\r`, `\u{202e}`), never dropped, so the
//! approver sees that something was there.
//!
//! Two strengths:
//! - [`exact`] for what runs and what identifies (commands, paths, content, ids, hashes): only
//!   printable ASCII is shown as itself. Commands are ASCII in practice, and a letter from a
//!   right-to-left script can reorder its neighbours, so nothing else is trusted there.
//! - [`text`] for names and prose: printable ASCII, letters and digits of any script, and common
//!   punctuation and symbols. Still one line: `\n` is escaped too.
//!
//! Text an assistant wrote is shown through [`assistant_text`]: one line, labelled as unverified,
//! capped, and placed after the facts central owns, so it can neither pose as a fact nor push the
//! facts off screen.

use std::borrow::Cow;
use std::fmt::Write as _;

/// How an assistant's own words are labelled wherever a human reads them.
pub const ASSISTANT_LABEL: &str = "assistant's reason (unverified)";

/// The most characters of assistant-written text shown on one line.
pub const ASSISTANT_TEXT_MAX: usize = 300;

/// Non-ASCII blocks of punctuation and symbols shown as themselves in [`text`]: visible glyphs
/// with no control or layout effect. Anything outside these (and outside letters and digits) is
/// escaped.
const VISIBLE_SYMBOLS: &[(char, char)] = &[
    ('\u{a1}', '\u{ac}'),       // ¡ … ¬ (U+00AD SOFT HYPHEN is invisible: not here)
    ('\u{ae}', '\u{bf}'),       // ® … ¿
    ('\u{d7}', '\u{d7}'),       // ×
    ('\u{f7}', '\u{f7}'),       // ÷
    ('\u{2010}', '\u{2027}'),   // dashes, quotes, bullets, ellipsis (U+2028/2029 separators: not here)
    ('\u{2030}', '\u{205e}'),   // per mille, primes, guillemets … (U+205F space, U+2060+ format: not here)
    ('\u{20a0}', '\u{20c0}'),   // currency signs
    ('\u{2100}', '\u{214f}'),   // letterlike symbols
    ('\u{2190}', '\u{23ff}'),   // arrows, mathematical operators, technical
    ('\u{2460}', '\u{24ff}'),   // enclosed alphanumerics
    ('\u{2500}', '\u{27bf}'),   // box drawing, blocks, shapes, symbols, dingbats
    ('\u{2900}', '\u{2bff}'),   // supplemental arrows and symbols
    ('\u{3001}', '\u{303f}'),   // CJK punctuation (U+3000 ideographic space: not here)
    ('\u{ff01}', '\u{ff60}'),   // fullwidth forms
    ('\u{1f300}', '\u{1faff}'), // pictographs and emoji
];

/// Letters that render as nothing at all (Hangul fillers): alphabetic by Unicode, invisible on
/// screen, so never shown as themselves.
const INVISIBLE_LETTERS: &[char] = &['\u{115f}', '\u{1160}', '\u{3164}', '\u{ffa0}'];

/// Whether `c` is shown as itself in [`exact`] contexts.
const fn plain_ascii(c: char) -> bool {
    matches!(c, ' '..='~')
}

/// Whether `c` is shown as itself in [`text`] contexts.
fn visible(c: char) -> bool {
    if plain_ascii(c) {
        return true;
    }
    if c.is_ascii() || c.is_control() || INVISIBLE_LETTERS.contains(&c) {
        return false;
    }
    c.is_alphanumeric() || VISIBLE_SYMBOLS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Appends the visible escape for `c`.
fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        // C0, DEL and C1 as bytes, the way terminals people know them (`\x1b`, `\x9b`).
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.char_indices().find(|&(_, c)| !keep(c)).map(|(i, _)| i) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if keep(c) {
            out.push(c);
        } else {
            push_escape(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// What runs or identifies, for a human: printable ASCII as itself, everything else (controls,
/// newlines, tabs, any non-ASCII character) as a visible escape. One line.
pub fn exact(s: &str) -> Cow<'_, str> {
    escape_with(s, plain_ascii)
}

/// Names and prose, for a human: letters, digits and common symbols of any script as themselves;
/// controls, format and bidi characters, separators and invisible characters as visible escapes.
/// One line.
pub fn text(s: &str) -> Cow<'_, str> {
    escape_with(s, visible)
}

/// A block of lines (command output) for a human: each line through [`text`], joined by real
/// line breaks. A CR, ESC or bidi character inside a line stays visible as an escape.
pub fn lines(s: &str) -> String {
    s.split('\n').map(text).collect::<Vec<_>>().join("\n")
}

/// At most `max` characters of `s` (already escaped), ending in `…` when cut.
pub fn cap(s: &str, max: usize) -> Cow<'_, str> {
    if s.char_indices().nth(max).is_none() {
        return Cow::Borrowed(s);
    }
    let kept: String = s.chars().take(max.saturating_sub(1)).collect();
    Cow::Owned(format!("{kept}…"))
}

/// Text an assistant wrote (a reason), for a human: one line, escaped, capped at
/// [`ASSISTANT_TEXT_MAX`] characters. Callers print it after the facts and under
/// [`ASSISTANT_LABEL`].
pub fn assistant_text(s: &str) -> String {
    // Runs of spaces, tabs and newlines (what a fake block needs) fold into one space first, so
    // thirty blank lines cost one character, not a screen. Anything else (CR, separators,
    // controls) is escaped visibly by `text`.
    let folded = s.split([' ', '\t', '\n']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
    cap(&text(&folded), ASSISTANT_TEXT_MAX).into_owned()
}

/// `label: text` for an assistant's reason, or `None` when there is none.
pub fn labelled_reason(reason: Option<&str>) -> Option<String> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty())?;
    Some(format!("{ASSISTANT_LABEL}: {}", assistant_text(reason)))
}

/// The longest name an MCP client may give itself.
pub const CLIENT_NAME_MAX: usize = 64;

/// An MCP client's self-reported name (`initialize`'s `clientInfo.name`) as it is recorded and
/// shown: one token of ASCII letters, digits, `.`, `_` and `-` (anything else becomes `-`, runs
/// of them one), at most [`CLIENT_NAME_MAX`] characters, `mcp-client` when nothing is left. The
/// name is the client's claim and is shown beside people's names (`assistant NAME for alice`):
/// as a single token it cannot read as more facts (`claude for alice (approved by carol)`).
pub fn client_name(raw: &str) -> String {
    let mut name = String::new();
    for c in raw.chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let c = if keep { c } else { '-' };
        if c == '-' && (name.is_empty() || name.ends_with('-')) {
            continue;
        }
        name.push(c);
        if name.len() >= CLIENT_NAME_MAX {
            break;
        }
    }
    let name = name.trim_end_matches('-');
    if name.is_empty() { "mcp-client".to_owned() } else { name.to_owned() }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Unicode's format characters (general category Cf, Unicode 16), line and paragraph
    /// separators, and other characters that render as nothing: an independent oracle, so the
    /// allowlist is tested against the class it must exclude rather than against itself.
    const MUST_ESCAPE: &[(u32, u32)] = &[
        (0x0, 0x1f),
        (0x7f, 0x9f),
        (0xad, 0xad),
        (0x600, 0x605),
        (0x61c, 0x61c),
        (0x6dd, 0x6dd),
        (0x70f, 0x70f),
        (0x890, 0x891),
        (0x8e2, 0x8e2),
        (0x115f, 0x1160),
        (0x180b, 0x180f),
        (0x200b, 0x200f),
        (0x2028, 0x202e),
        (0x205f, 0x206f),
        (0x3000, 0x3000),
        (0x3164, 0x3164),
        (0xfe00, 0xfe0f),
        (0xfeff, 0xfeff),
        (0xffa0, 0xffa0),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
        (0xe0100, 0xe01ef),
    ];

    fn must_escape(c: char) -> bool {
        let u = u32::from(c);
        MUST_ESCAPE.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
    }

    #[test]
    fn every_control_format_and_invisible_character_is_escaped_in_both_strengths() {
        for c in (0..=0x10_ffff).filter_map(char::from_u32).filter(|&c| must_escape(c)) {
            let s = c.to_string();
            assert_ne!(text(&s), s.as_str(), "text() shows U+{:04X} raw", u32::from(c));
            assert_ne!(exact(&s), s.as_str(), "exact() shows U+{:04X} raw", u32::from(c));
        }
    }

    #[test]
    fn the_probe_attacks_become_visible() {
        let ansi = "touch /tmp/x #\x1b[2K\x1b[1Gwhat:        Run `uptime`\x1b[8m";
        assert_eq!(exact(ansi), "touch /tmp/x #\\x1b[2K\\x1b[1Gwhat:        Run `uptime`\\x1b[8m");
        assert_eq!(text("rm -rf /\rls"), "rm -rf /\\rls");
        assert_eq!(text("ls \u{202e}txt.exe"), "ls \\u{202e}txt.exe");
        assert_eq!(text("a\u{9b}31m"), "a\\x9b31m");
        let fake = format!("ok{}exactly: {{\"command\":\"df -h\"}}", "\n".repeat(30));
        let shown = assistant_text(&fake);
        assert_eq!(shown, "ok exactly: {\"command\":\"df -h\"}");
        assert_eq!(labelled_reason(Some("disk\nfull")).as_deref(), Some("assistant's reason (unverified): disk full"));
        assert_eq!(labelled_reason(Some("  \n ")), None);
        assert_eq!(assistant_text("a\r\n\u{2028}b"), "a\\r \\u{2028}b");
    }

    #[test]
    fn names_in_any_script_stay_readable_but_commands_stay_ascii() {
        assert_eq!(text("web-1 — café 東京 ✓ ÷"), "web-1 — café 東京 ✓ ÷");
        assert_eq!(exact("café"), "caf\\u{e9}");
        assert_eq!(text("ｌｓ"), "ｌｓ");
        assert_eq!(exact("ｌｓ"), "\\u{ff4c}\\u{ff53}");
    }

    #[test]
    fn assistant_text_is_capped_with_an_ellipsis() {
        let long = "x".repeat(1000);
        let shown = assistant_text(&long);
        assert_eq!(shown.chars().count(), ASSISTANT_TEXT_MAX);
        assert!(shown.ends_with('…'));
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("abcd", 3), "ab…");
    }

    #[test]
    fn output_blocks_keep_their_lines_and_escape_the_rest() {
        assert_eq!(lines("a\r\nb\x1b[31m\n"), "a\\r\nb\\x1b[31m\n");
    }

    proptest! {
        #[test]
        fn output_never_holds_a_control_or_format_character(s in any::<String>()) {
            for shown in [text(&s).into_owned(), exact(&s).into_owned(), assistant_text(&s)] {
                prop_assert!(shown.chars().all(|c| !c.is_control() && !must_escape(c)), "{shown:?}");
            }
            prop_assert!(exact(&s).chars().all(|c| c.is_ascii_graphic() || c == ' '));
        }

        #[test]
        fn plain_ascii_text_is_unchanged(s in "[ -~]{0,200}") {
            prop_assert_eq!(text(&s), s.as_str());
            prop_assert_eq!(exact(&s), s.as_str());
        }

        #[test]
        fn nothing_is_dropped_escapes_only_grow(s in any::<String>()) {
            prop_assert!(text(&s).chars().count() >= s.chars().count());
        }
    }

    #[test]
    fn a_client_name_is_one_plain_token() {
        assert_eq!(client_name("claude-code"), "claude-code");
        assert_eq!(client_name("Claude Desktop 1.2"), "Claude-Desktop-1.2");
        assert_eq!(client_name("claude for alice (approved by carol)"), "claude-for-alice-approved-by-carol");
        assert_eq!(client_name("\u{202e}\u{1b}[31m"), "31m");
        assert_eq!(client_name("  \n "), "mcp-client");
        assert_eq!(client_name(&"x".repeat(500)).len(), CLIENT_NAME_MAX);
    }

    proptest! {
        #[test]
        fn client_names_hold_only_the_token_characters(raw in ".{0,200}") {
            let name = client_name(&raw);
            prop_assert!(!name.is_empty() && name.len() <= CLIENT_NAME_MAX);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')), "{}", name);
        }
    }
}
