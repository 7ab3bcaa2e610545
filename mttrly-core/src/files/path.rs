//! The requested path string, judged as it was given, before anything resolves or normalises it.
//!
//! A path arrives from an assistant. What it may contain is decided from positive knowledge: the
//! characters a real file name on a server is made of (printable ASCII, and letters or digits of
//! any script), nothing else. So control characters (NUL, newline, CR, ESC, DEL, C1), invisible
//! formatting and bidi characters, line/paragraph separators, odd spaces and private-use or
//! unassigned code points are all refused without having to be listed. The string is taken
//! literally: nothing is percent-decoded or Unicode-normalised, so `%2e%2e` is a name and `é`
//! written as `e` + U+0301 is refused rather than folded into another file's name.

use crate::error::{ErrorCode, MttrlyError};

/// Linux `PATH_MAX`: the kernel refuses a path of this many bytes or more (it counts the NUL).
pub const PATH_MAX: usize = 4096;
/// Linux `NAME_MAX`: the longest single component, in bytes.
pub const NAME_MAX: usize = 255;

/// Glob metacharacters: a read path names one file, it is not a pattern (the search tool takes
/// its pattern as a separate argument).
const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}'];

/// Unicode's `Default_Ignorable_Code_Point` ranges: characters that render as nothing. Most are
/// not letters and fail the allowlist anyway; a few (the Hangul fillers) are letters that draw
/// nothing, so an invisible name could otherwise pass. Kept whole as data, from the standard.
const DEFAULT_IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1_BCA0, 0x1_BCA3),
    (0x1_D173, 0x1_D17A),
    (0xE_0000, 0xE_0FFF),
];

/// Whether `c` may appear in a path: printable ASCII (space included), or a visible letter or
/// digit of another script.
pub fn allowed_char(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let code = u32::from(c);
    c.is_alphanumeric() && !DEFAULT_IGNORABLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code))
}

/// `path` made safe to echo in a message or a terminal: every character [`allowed_char`] refuses
/// is written as `\u{XXXX}`, and it is cut at 512 characters.
pub fn shown(path: &str) -> String {
    let mut out = String::new();
    for (i, c) in path.chars().enumerate() {
        if i == 512 {
            out.push('…');
            break;
        }
        if allowed_char(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        }
    }
    out
}

/// A short name for a refused character, for the reason given back.
fn describe(c: char) -> &'static str {
    let code = u32::from(c);
    match c {
        '\0' => "a NUL byte",
        '\n' => "a newline",
        '\r' => "a carriage return",
        '\u{1b}' => "an escape character",
        _ if c.is_ascii_control() || (0x80..=0x9F).contains(&code) => "a control character",
        _ if DEFAULT_IGNORABLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code)) => {
            "an invisible formatting or bidi character"
        }
        '\u{2028}' | '\u{2029}' => "a line or paragraph separator",
        _ if c.is_whitespace() => "a space other than the ASCII space",
        _ => "a character that is neither printable ASCII nor a letter or digit",
    }
}

fn refuse(message: String, requested: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message).with_detail("path", shown(requested))
}

/// Checks the raw path string. Every refusal is `POLICY_DENIED` (the agent's path rules refuse
/// it, as they refuse a path outside the allowlist) and names the reason.
pub fn validate(requested: &str) -> Result<(), MttrlyError> {
    if requested.is_empty() {
        return Err(refuse("the path is empty".to_owned(), requested));
    }
    if let Some((at, c)) = requested.chars().enumerate().find(|(_, c)| !allowed_char(*c)) {
        return Err(refuse(
            format!(
                "`{}` contains {} (U+{:04X}) at character {at}: paths are printable ASCII or letters and digits, \
                 taken literally",
                shown(requested),
                describe(c),
                u32::from(c)
            ),
            requested,
        ));
    }
    if requested.starts_with('~') {
        return Err(refuse(
            format!("`{requested}` starts with `~`: home directories are not expanded; give an absolute path"),
            requested,
        ));
    }
    if !requested.starts_with('/') {
        return Err(refuse(format!("`{requested}` is not an absolute path (it must start with /)"), requested));
    }
    if requested.len() >= PATH_MAX {
        return Err(refuse(
            format!("the path is {} bytes long; the limit is {} (PATH_MAX)", requested.len(), PATH_MAX - 1),
            requested,
        ));
    }
    if let Some(long) = requested.split('/').find(|part| part.len() > NAME_MAX) {
        return Err(refuse(
            format!("a component of the path is {} bytes long; the limit is {NAME_MAX} (NAME_MAX)", long.len()),
            requested,
        ));
    }
    if let Some(meta) = requested.chars().find(|c| GLOB_META.contains(c)) {
        return Err(refuse(
            format!(
                "`{requested}` contains the glob character `{meta}`: a read names one file \
                 (mttrly_search_files takes a glob to filter by)"
            ),
            requested,
        ));
    }
    Ok(())
}
