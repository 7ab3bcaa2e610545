//! The redactor: applied to everything that leaves a server (file contents, search hits, diffs,
//! command output, env files) and to everything central stores (audit rows, action results),
//! before it is stored or returned.
//!
//! Three kinds of rules, all data, every match naming its rule (`[REDACTED:aws_access_key]`):
//! - token rules ([`RULES`], `rules.rs`): secrets recognisable by their own shape (a provider's
//!   prefix, a command's credential flag, a password hash), each with the keywords that must occur
//!   for it to be worth running;
//! - key-aware redaction (`keys.rs` decides which key names hold secrets and which values are
//!   placeholders; `dialects.rs` reads the value in env, YAML, JSON, XML, PHP, URL, CLI, header …
//!   syntax);
//! - line-shaped secrets (`blocks.rs`): private key containers and their lone body lines,
//!   `.pgpass` lines, Kubernetes Secret data. Certificates and public keys stay.
//!
//! Speed: one case-insensitive Aho-Corasick pass finds every keyword of every rule; a token rule
//! runs only on the lines holding one of its keywords, key-aware redaction only where a
//! credential word occurs. Ordinary log text costs that one pass plus a cheap per-line check.
//!
//! Findings are merged (overlaps become one replacement, named by the most specific rule) and a
//! replacement never spans a newline: a multi-line secret becomes one marker per line, so line
//! numbers and counts of a tail or a search stay true. Redacting redacted text changes nothing.

mod announce;
mod blocks;
mod dialects;
mod echoes;
mod env;
mod grep;
mod json;
mod keys;
mod lines;
mod pairs;
mod rules;
mod stream;
mod views;

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;
use serde::Serialize;

pub use env::{SECRET_KEY_PARTS, env_values};
pub use json::redact_json;
pub use rules::RULES;
pub use stream::StreamRedactor;

/// A check a token rule's match must also pass (shapes a pattern alone cannot express).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The pattern is enough.
    Any,
    /// Letters and digits both: a random token, not a word or a path.
    Mixed,
    /// Base64 of `user:password`.
    Base64Credentials,
    /// Reads like a password, not a word or a number: letters with digits or inner capitals.
    PasswordLike,
    /// Anything but a placeholder or a reference (`$CR_PAT`, `${{ secrets.X }}`).
    NotPlaceholder,
    /// Letters and digits both, and not a SHA-1 in hex (a commit id printed beside a key id).
    MixedNotHex,
}

/// One token rule.
pub struct RedactionRule {
    /// Stable id, shown in the replacement and in counts.
    pub id: &'static str,
    /// What it catches.
    pub description: &'static str,
    /// Case-insensitive keywords, one of which occurs in every match.
    pub keywords: &'static [&'static str],
    /// The pattern, run on the lines holding a keyword.
    pub pattern: &'static str,
    /// The capture group holding the secret; 0 for the whole match.
    pub group: usize,
    /// What the match must also satisfy.
    pub check: Check,
}

/// The rules that are not a single pattern: their ids and what they catch.
pub static ENGINE_RULES: &[(&str, &str)] = &[
    ("private_key", "Private key blocks: PEM, OpenSSH, PGP, SSH2, encrypted; escaped \\n in JSON; unterminated"),
    ("putty_private_key", "PuTTY key files' Private-Lines"),
    ("base64_private_key", "Base64-wrapped PEM private keys (kubeconfig client-key-data, Secret tls.key)"),
    ("k8s_secret_data", "Values under data:/stringData: of a Kubernetes Secret"),
    ("private_key_body", "Key body lines seen without their BEGIN line (a tail window, a search hit)"),
    ("pgpass", ".pgpass lines (host:port:db:user:password)"),
    ("auth_header", "Credentials after an Authorization-style key and its scheme"),
    ("cli_secret_flag", "Values of secret-named command-line flags (--password X, --db-pass=X)"),
    ("xml_secret", "XML elements and attributes naming a secret"),
    ("url_query_secret", "Secret-named URL query parameters (?token=, &sig=)"),
    ("secret_assignment", "Values of secret-named keys in env, YAML, JSON, TOML/INI, properties, PHP, SQL, directives"),
];

// Ranks: which rule names a merged replacement (lower wins) and the order hits are listed in.
const RANK_PRIVATE_KEY: u16 = 0;
const RANK_PUTTY: u16 = 1;
const RANK_B64_PEM: u16 = 2;
const RANK_K8S: u16 = 3;
const RANK_RULES: u16 = 10;
const RANK_BODY: u16 = 500;
const RANK_PGPASS: u16 = 501;
const RANK_KEY: u16 = 1000;

/// One secret found: a byte range of the input and the rule that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Finding {
    /// Where the text the rule read starts (the whole match, the key): at or before `start`.
    ctx: usize,
    start: usize,
    end: usize,
    rule: &'static str,
    rank: u16,
}

/// What a keyword means to the engine.
#[derive(Clone, Copy)]
enum Use {
    /// Run token rule `i` on this line.
    Rule(u16),
    /// A credential word: key-aware redaction looks around it.
    Root,
    /// `-----BEGIN` / `-----END`: private key blocks and protected public blocks.
    Marker,
    /// PuTTY `…-Lines:`.
    Putty,
    /// Base64 of `-----BEGIN`.
    Base64Pem,
    /// `kind`: maybe a Kubernetes Secret.
    Kind,
    /// `[REDACTED:`: an earlier replacement, never redacted again.
    Replaced,
}

/// Credential words key-aware redaction starts from (whole keys are read around them).
const ROOTS: &[&str] = &[
    "pass",
    "pwd",
    "pw",
    "psw",
    "secret",
    "token",
    "key",
    "auth",
    "cred",
    "session",
    "sessid",
    "cookie",
    "dsn",
    "sig",
    "seed",
    "phrase",
    "mnemonic",
    "psk",
    "community",
];

struct Engine {
    ac: AhoCorasick,
    uses: Vec<Use>,
    /// One slot per token rule, compiled the first time the rule's keyword occurs: most text
    /// meets a few rules, and compiling all of them up front cost every process (central, each
    /// agent) memory and a slow first redaction for rules it may never run.
    regexes: Box<[OnceLock<Regex>]>,
    /// The same rules' variants that also start after an escape ([`compile_escaped`]).
    escaped: Box<[OnceLock<Regex>]>,
}

/// The most one rule's pattern may compile to (the regex crate's estimate of its program).
///
/// Why: a Unicode class under a counted repetition (`[\w-]{43}`: every letter of every script,
/// 43 times) compiles to hundreds of kilobytes. The table once held ten such rules and its
/// patterns took 38 MB of resident memory and ~150 ms at the first redaction; spelled in ASCII (a
/// token body is ASCII by its format) they take 7 MB and ~18 ms (BENCHMARKS.md, "The redactor's
/// memory"). A rule over the bound fails the tests (`every_rule_compiles_within_its_bound`).
pub(crate) const RULE_SIZE_LIMIT: usize = 256 * 1024;

/// Compiles token rule `rule`'s pattern within [`RULE_SIZE_LIMIT`].
pub(crate) fn compile(rule: &RedactionRule) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(rule.pattern).size_limit(RULE_SIZE_LIMIT).build()
}

/// Compiles the variant of a token rule that starts at a word boundary (`None` for other rules)
/// which also starts right after an escape ending in a word character: `%3D` in a URL-encoded
/// query (`?next=%2Fapi%3Ftoken%3Dghp_…`), `\n`, `\t` and `\u003d` in a JSON string
/// (`"msg":"created:\nghp_…"`), a terminal colour code (`ESC[32mghp_…`). Read as text, the
/// escape's last character glues itself to the token and hides the boundary. The escape is part
/// of this variant's match, and [`escape_len`] takes it off the finding again. The engine runs it
/// only on lines that hold an escape's first character: the plain pattern keeps the regex
/// crate's literal prefilter (the variant measured ~15 % slower on the redactor bench when it
/// ran everywhere).
pub(crate) fn compile_escaped(rule: &RedactionRule) -> Option<Result<Regex, regex::Error>> {
    let (flags, rest) = word_start(rule.pattern)?;
    let pattern = format!("{flags}(?:{WORD_START}|{ESCAPE}){rest}");
    Some(regex::RegexBuilder::new(&pattern).size_limit(RULE_SIZE_LIMIT).build())
}

/// Whether `window` holds the first character of an escape [`compile_escaped`] reads.
fn has_escape(window: &str) -> bool {
    window.bytes().any(|c| matches!(c, b'%' | b'\\' | 0x1b))
}

/// How a token rule says its token starts at a word boundary.
const WORD_START: &str = r"(?-u:\b)";

/// A pattern that starts at [`WORD_START`], after its flags (`(?i)`): the flags and what
/// follows the boundary.
fn word_start(pattern: &str) -> Option<(&str, &str)> {
    let flags = if pattern.starts_with("(?i)") { 4 } else { 0 };
    pattern[flags..].strip_prefix(WORD_START).map(|rest| (&pattern[..flags], rest))
}

/// The escapes [`compile`] lets stand for a word boundary before a token: a percent-encoded
/// byte, a JSON string escape, an ANSI colour sequence.
const ESCAPE: &str =
    r"%[0-9A-Fa-f]{2}|\\u001[bB]\[[0-9;:]*[A-Za-z]|\\(?:[nrtbf]|u[0-9A-Fa-f]{4})|\x1b\[[0-9;:]*[A-Za-z]";

/// The length of the escape (see [`ESCAPE`]) at the start of a match, 0 when there is none: a
/// token itself never starts with `%`, `\` or ESC.
fn escape_len(s: &str) -> usize {
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| b.get(r).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
    match b.first() {
        Some(b'%') if hex(1..3) => 3,
        Some(b'\\') => match b.get(1) {
            Some(b'u') if s[2..].starts_with("001b[") || s[2..].starts_with("001B[") => {
                csi(&b[7..]).map_or(6, |n| 7 + n)
            }
            Some(b'u') if hex(2..6) => 6,
            Some(b'n' | b'r' | b't' | b'b' | b'f') => 2,
            _ => 0,
        },
        Some(0x1b) if b.get(1) == Some(&b'[') => csi(&b[2..]).map_or(0, |n| 2 + n),
        _ => 0,
    }
}

/// The length of a terminal control sequence's parameters and final letter (`01;31m`, `K`).
fn csi(b: &[u8]) -> Option<usize> {
    let params = b.iter().take_while(|c| c.is_ascii_digit() || matches!(c, b';' | b':')).count();
    b.get(params).filter(|c| c.is_ascii_alphabetic()).map(|_| params + 1)
}

impl Engine {
    /// Token rule `idx`'s pattern for `window`, compiled on first use: the variant that also
    /// starts after an escape when the window holds one (see [`compile_escaped`]).
    fn regex(&self, idx: usize, window: &str) -> (&Regex, bool) {
        let rule = &RULES[idx];
        // The table is a constant every pattern of which the tests compile; a failure here is a
        // programming error.
        let failed = |e: regex::Error| -> Regex { panic!("redaction rule {}: {e}", rule.id) };
        if word_start(rule.pattern).is_some() && has_escape(window) {
            let re = self.escaped[idx]
                .get_or_init(|| compile_escaped(rule).unwrap_or_else(|| compile(rule)).unwrap_or_else(failed));
            return (re, true);
        }
        (self.regexes[idx].get_or_init(|| compile(rule).unwrap_or_else(failed)), false)
    }
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut patterns: Vec<&str> = Vec::new();
        let mut uses = Vec::new();
        for (i, rule) in RULES.iter().enumerate() {
            for k in rule.keywords {
                patterns.push(k);
                uses.push(Use::Rule(u16::try_from(i).unwrap_or(u16::MAX)));
            }
        }
        for w in keys::provider_roots() {
            patterns.push(w);
            uses.push(Use::Root);
        }
        let fixed: [(&[&str], Use); 6] = [
            (ROOTS, Use::Root),
            (&["-----begin", "---- begin", "-----end", "---- end"], Use::Marker),
            (&["-lines:"], Use::Putty),
            (&["ls0tls1crudjti"], Use::Base64Pem),
            (&["kind"], Use::Kind),
            (&["[redacted:"], Use::Replaced),
        ];
        for (words, u) in fixed {
            for w in words {
                patterns.push(w);
                uses.push(u);
            }
        }
        // The tables are constants checked by the tests; a failure here is a programming error.
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .unwrap_or_else(|e| panic!("redactor keywords: {e}"));
        let regexes = RULES.iter().map(|_| OnceLock::new()).collect();
        let escaped = RULES.iter().map(|_| OnceLock::new()).collect();
        Engine { ac, uses, regexes, escaped }
    })
}

/// How many times one rule fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleHits {
    /// The rule.
    pub rule: &'static str,
    /// How many replacements it made.
    pub count: u32,
}

/// Redacted text and what was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    /// The text with every secret replaced by `[REDACTED:rule]`.
    pub text: Cow<'a, str>,
    /// The rules that fired, most specific first.
    pub hits: Vec<RuleHits>,
}

/// Where one secret was found (for `policy redact --explain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    /// The rule that names it.
    pub rule: &'static str,
    /// 1-based line of its first byte.
    pub line: usize,
    /// Byte range in the input.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

fn line_bounds(text: &str, s: usize, e: usize) -> (usize, usize) {
    (lines::start(text, s), lines::end(text, e))
}

fn passes(check: Check, secret: &str) -> bool {
    use base64::Engine as _;
    match check {
        Check::Any => true,
        Check::PasswordLike => keys::looks_like_password(secret) && !keys::is_placeholder(secret),
        Check::NotPlaceholder => !keys::is_placeholder(secret.trim_matches(['"', '\''])),
        Check::MixedNotHex => {
            secret.bytes().any(|c| c.is_ascii_digit())
                && secret.bytes().any(|c| c.is_ascii_alphabetic())
                && !secret.bytes().all(|c| c.is_ascii_hexdigit())
        }
        Check::Mixed => secret.bytes().any(|c| c.is_ascii_digit()) && secret.bytes().any(|c| c.is_ascii_alphabetic()),
        Check::Base64Credentials => base64::engine::general_purpose::STANDARD
            .decode(
                secret.trim_end_matches('=').to_owned() + &"=".repeat((4 - secret.trim_end_matches('=').len() % 4) % 4),
            )
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .is_some_and(|s| s.contains(':') && !s.chars().any(char::is_control)),
    }
}

/// Whether a span holds nothing but earlier replacements (so redacting twice changes nothing).
fn only_markers(s: &str) -> bool {
    let mut rest = s.trim();
    while let Some(after) = rest.strip_prefix("[REDACTED:") {
        match after.find(']') {
            Some(i) => rest = after[i + 1..].trim_start(),
            None => return false,
        }
    }
    rest.trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';')).is_empty()
}

/// Every secret in `text`, merged: sorted, non-overlapping, each named by its most specific rule.
/// Every secret in `text`: read as written, and read again decoded (see `views.rs`), an encoding
/// deeper each time, when it holds escapes, with what a decoded reading finds mapped back onto
/// the original bytes.
///
/// Then every other occurrence of a distinctive value found is redacted too (`echoes.rs`), as is
/// every occurrence of an `earlier` value (one a stream's earlier chunk or a document's other
/// string held).
fn analyse(text: &str) -> Vec<Finding> {
    analyse_with(text, &[])
}

fn analyse_with(text: &str, earlier: &[echoes::Known]) -> Vec<Finding> {
    let mut found = analyse_decoded(text);
    let mut known = echoes::values(text, &found);
    for k in earlier {
        if !known.iter().any(|e| e.value == k.value) {
            known.push(k.clone());
        }
    }
    if echoes::find(text, &known, &mut found) { merge(text, found) } else { found }
}

/// What the rules find in `text` and in its decoded views.
fn analyse_decoded(text: &str) -> Vec<Finding> {
    let mut found = analyse_text(text);
    let mut more = false;
    for view in views::decode_all(text) {
        let decoded = analyse_text(&view.text);
        let before = found.len();
        found.extend(decoded.into_iter().filter_map(|f| {
            // What only a percent-decoded reading finds must read like a credential: a query
            // decoded reads as prose whose words pair up as keys and values (`sort=session%3Adesc`,
            // `q=%7B%20viewer%20%7B%20sessionToken%20expiresAt`), and a word alone there is a
            // setting. And a finding stays inside one string of the original: a raw `"` in its
            // range is where a JSON record's string ended or began (`…\npassword = x","level":…}`),
            // so the longest part between quotes is kept.
            let value = &view.text[f.start..f.end];
            let (start, end) = view.original(f.start, f.end);
            let ctx = view.original_start(f.ctx).min(start);
            let read = &text[ctx..end];
            let percent_only = read.contains('%') && !read.contains(['\\', '\u{1b}']);
            let credential = !percent_only || value.len() >= 12 || value.bytes().any(|c| !c.is_ascii_alphabetic());
            // (An escaped `\"` is part of the string, not its end.)
            let b = text.as_bytes();
            let quotes = (start..end).filter(|&i| b[i] == b'"' && (i == 0 || b[i - 1] != b'\\'));
            let (start, end) = std::iter::once(start)
                .chain(quotes.clone().map(|q| q + 1))
                .zip(quotes.chain(std::iter::once(end)))
                .max_by_key(|(s, e)| e - s)?;
            (credential && start < end).then(|| Finding { ctx: ctx.min(start), start, end, rule: f.rule, rank: f.rank })
        }));
        more |= found.len() > before;
    }
    if more { merge(text, found) } else { found }
}

/// Every secret in `text` as written.
fn analyse_text(text: &str) -> Vec<Finding> {
    if text.is_empty() {
        return Vec::new();
    }
    lines::indexed(text, || analyse_indexed(text))
}

/// [`analyse_text`], with the line bounds of `text` indexed.
fn analyse_indexed(text: &str) -> Vec<Finding> {
    let eng = engine();
    let mut windows: Vec<(u16, usize, usize)> = Vec::new();
    let mut last_end = vec![0usize; RULES.len()];
    let mut covered = vec![false; RULES.len()];
    let mut roots: Vec<(usize, usize)> = Vec::new();
    let (mut marker, mut putty, mut b64, mut kind) = (false, false, false, false);
    let mut replaced: Vec<(usize, usize)> = Vec::new();
    for m in eng.ac.find_overlapping_iter(text) {
        match eng.uses[m.pattern().as_usize()] {
            Use::Rule(i) => {
                let idx = usize::from(i);
                if covered[idx] && m.start() < last_end[idx] {
                    continue;
                }
                let (ls, le) = line_bounds(text, m.start(), m.end());
                covered[idx] = true;
                last_end[idx] = le;
                windows.push((i, ls, le));
            }
            Use::Root => roots.push((m.start(), m.end())),
            Use::Marker => marker = true,
            Use::Putty => putty = true,
            Use::Base64Pem => b64 = true,
            Use::Kind => kind = true,
            Use::Replaced => {
                if let Some(close) = text[m.end()..].find(']').filter(|&i| i <= 64) {
                    replaced.push((m.start(), m.end() + close + 1));
                }
            }
        }
    }
    let mut found: Vec<Finding> = Vec::new();
    for (i, ls, le) in windows {
        let idx = usize::from(i);
        let rule = &RULES[idx];
        let window = &text[ls..le];
        let (re, escaped) = eng.regex(idx, window);
        let rank = RANK_RULES + i;
        // A match that reads an earlier replacement is dropped (see `clip`); the search then
        // resumes after that replacement rather than after the match, so a second secret the
        // dropped match swallowed (`curl -u a:[REDACTED:x]curl -u a:SECRET`) is still tried.
        // Resuming past the replacement keeps the scan linear: the position only moves forward.
        let mut pos = 0;
        while pos <= window.len() {
            let Some(c) = re.captures_at(window, pos) else { break };
            let Some(all) = c.get(0) else { break };
            let mut next = if all.end() > all.start() { all.end() } else { all.end() + 1 };
            if let Some(m) = c.get(rule.group) {
                let skip = if escaped { escape_len(m.as_str()) } else { 0 };
                let (ctx, start, end) = (ls + all.start() + skip, ls + m.start() + skip, ls + m.end());
                if let Some(r) = reads_replacement(&replaced, ctx, end) {
                    next = (r.1 - ls).max(all.start() + 1);
                } else if passes(rule.check, &m.as_str()[skip..]) {
                    found.push(Finding { ctx, start, end, rule: rule.id, rank });
                }
            }
            pos = next;
            while pos < window.len() && !window.is_char_boundary(pos) {
                pos += 1;
            }
        }
    }
    if !roots.is_empty() {
        announce::next_line(text, &roots, &mut found);
        dialects::scan(text, &mut roots, &mut found);
    }
    let mut protected: Vec<(usize, usize)> = Vec::new();
    let mut reserved: Vec<(usize, usize)> = Vec::new();
    if marker {
        blocks::markers(text, &mut found, &mut protected, &mut reserved);
    }
    if putty {
        blocks::putty(text, &mut found, &mut protected);
    }
    if b64 {
        blocks::base64_pem(text, &mut found, &mut protected);
    }
    if kind {
        blocks::k8s_secret(text, &mut found);
    }
    protected.sort_unstable();
    let mut merged_protected: Vec<(usize, usize)> = Vec::with_capacity(protected.len());
    for p in protected {
        match merged_protected.last_mut() {
            Some(last) if p.0 <= last.1 => last.1 = last.1.max(p.1),
            _ => merged_protected.push(p),
        }
    }
    blocks::lines(text, &merged_protected, &mut found);
    merge(text, clip(reserve(found, &reserved), &replaced))
}

/// Cuts PEM marker lines out of every finding that ran into one (`reserved` is sorted): the part
/// before the marker stays a finding, or else the part after it.
fn reserve(found: Vec<Finding>, reserved: &[(usize, usize)]) -> Vec<Finding> {
    if reserved.is_empty() {
        return found;
    }
    found
        .into_iter()
        .filter_map(|mut f| {
            let first = reserved.partition_point(|r| r.1 <= f.start);
            if let Some(&(ms, me)) = reserved.get(first).filter(|r| r.0 < f.end) {
                if ms > f.start {
                    f.end = ms;
                } else {
                    f.start = me;
                    f.ctx = f.ctx.max(me);
                    let next = reserved.get(first + 1).map_or(f.end, |r| r.0);
                    f.end = f.end.min(next);
                }
            }
            (f.start < f.end).then_some(f)
        })
        .collect()
}

/// The earlier replacement (sorted, non-overlapping) that the text read at `ctx..end` runs into.
fn reads_replacement(replaced: &[(usize, usize)], ctx: usize, end: usize) -> Option<(usize, usize)> {
    let first = replaced.partition_point(|r| r.1 <= ctx);
    replaced.get(first).filter(|r| r.0 < end).copied()
}

/// Drops every finding whose match overlaps an earlier replacement, so redacting redacted text changes
/// nothing however a pattern happens to straddle a marker (`https://[REDACTED:github_token]@…`
/// read as userinfo, `-p[REDACTED:mysql_password]<tail>` read as one word): a pattern that ran
/// into a marker was reading the marker. Text that merely sits next to a marker is still read.
fn clip(found: Vec<Finding>, replaced: &[(usize, usize)]) -> Vec<Finding> {
    if replaced.is_empty() {
        return found;
    }
    found.into_iter().filter(|f| reads_replacement(replaced, f.ctx, f.end).is_none()).collect()
}

fn merge(text: &str, mut found: Vec<Finding>) -> Vec<Finding> {
    found.retain(|f| f.start < f.end && !only_markers(&text[f.start..f.end]));
    found.sort_unstable_by_key(|f| (f.start, f.rank));
    let mut merged: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        match merged.last_mut() {
            Some(last) if f.start < last.end => {
                last.end = last.end.max(f.end);
                if f.rank < last.rank {
                    last.rank = f.rank;
                    last.rule = f.rule;
                }
            }
            _ => merged.push(f),
        }
    }
    merged
}

/// Redacts `text`.
pub fn redact(text: &str) -> Redacted<'_> {
    apply(text, &analyse(text))
}

/// `text` with `found` (sorted, merged) replaced.
fn apply<'a>(text: &'a str, found: &[Finding]) -> Redacted<'a> {
    if found.is_empty() {
        return Redacted { text: Cow::Borrowed(text), hits: Vec::new() };
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut counts: Vec<(u16, &'static str, u32)> = Vec::new();
    for f in found {
        out.push_str(&text[last..f.start]);
        replace(&text[f.start..f.end], f.rule, &mut out);
        last = f.end;
        match counts.iter_mut().find(|c| c.1 == f.rule) {
            Some(c) => c.2 += 1,
            None => counts.push((f.rank, f.rule, 1)),
        }
    }
    out.push_str(&text[last..]);
    counts.sort_by_key(|c| c.0);
    Redacted {
        text: Cow::Owned(out),
        hits: counts.into_iter().map(|(_, rule, count)| RuleHits { rule, count }).collect(),
    }
}

/// One marker per line of the secret; newlines, indentation and CRs stay where they were.
fn replace(secret: &str, rule: &str, out: &mut String) {
    for (i, segment) in secret.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = segment.trim_end_matches('\r');
        let content = body.trim_start_matches([' ', '\t']);
        if content.trim().is_empty() {
            out.push_str(segment);
            continue;
        }
        out.push_str(&body[..body.len() - content.len()]);
        out.push_str("[REDACTED:");
        out.push_str(rule);
        out.push(']');
        out.push_str(&segment[body.len()..]);
    }
}

/// Where each secret in `text` is, and which rule names it.
pub fn locate(text: &str) -> Vec<Located> {
    let mut line = 1;
    let mut at = 0;
    analyse(text)
        .into_iter()
        .map(|f| {
            line += text[at..f.start].bytes().filter(|b| *b == b'\n').count();
            at = f.start;
            Located { rule: f.rule, line, start: f.start, end: f.end }
        })
        .collect()
}

/// Every rule id the redactor can name, with what it catches: the token rules, then the others.
pub fn rule_ids() -> impl Iterator<Item = (&'static str, &'static str)> {
    RULES.iter().map(|r| (r.id, r.description)).chain(ENGINE_RULES.iter().copied())
}

#[cfg(test)]
mod tests;
