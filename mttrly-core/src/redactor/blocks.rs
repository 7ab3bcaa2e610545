//! Secrets shaped by lines rather than by a prefix: private key containers (PEM, OpenSSH, PGP,
//! SSH2, PuTTY, base64-wrapped PEM, PEM with escaped `\n` inside a JSON string), key body lines
//! seen without their `BEGIN` line (a tail window, one search hit), `.pgpass` lines and the
//! values of a Kubernetes Secret's `data:`.
//!
//! Certificates and public keys are public: their blocks (and their lines, when the window shows
//! where they belong) are *protected* and stay byte-identical.

use std::sync::OnceLock;

use base64::Engine as _;
use regex::Regex;

use super::{Finding, RANK_B64_PEM, RANK_BODY, RANK_K8S, RANK_PGPASS, RANK_PRIVATE_KEY, RANK_PUTTY};

/// Most key body lines followed after an unterminated `BEGIN` (a key is a few hundred lines at
/// most; a log that merely mentions a marker must not lose the rest of the file).
const MAX_BODY_LINES: usize = 512;
/// Shortest line taken for a key body line on its own (PEM and PuTTY lines are 64 wide, OpenSSH
/// 70, `base64 -w76` 76; only a key's last line is shorter).
const MIN_BODY_WIDTH: usize = 48;
/// An AWS secret access key's width (40 base64 characters).
const AWS_SECRET_WIDTH: usize = 40;
/// Longest line taken for one (a key on one line, base64-encoded).
const MAX_BODY_WIDTH: usize = 16 * 1024;

struct Patterns {
    marker: Regex,
    putty: Regex,
    b64_pem: Regex,
    kind_secret: Regex,
    yaml_data: Regex,
    json_data: Regex,
    json_pair: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("redactor block pattern {p}: {e}"));
        Patterns {
            // Labels are upper case by RFC 7468; OpenVPN's `-----BEGIN OpenVPN Static key V1-----`
            // is not.
            marker: re(r"-{4,5} ?(BEGIN|END) ([A-Za-z0-9][A-Za-z0-9 _-]{0,60}?) ?-{4,5}"),
            putty: re(r"(?m)^[-+ ]?(Private|Public)-Lines:[ \t]*(\d{1,4})[ \t]*\r?$"),
            b64_pem: re(r"(?m)LS0tLS1CRUdJTi[A-Za-z0-9+/=]*(?:\r?\n[ \t]*[A-Za-z0-9+/=]{4,}\r?$)*"),
            kind_secret: re(r#"(?m)^[-+]?[ \t]*"?kind"?[ \t]*:[ \t]*"?Secret"?[ \t]*,?[ \t]*(?:#[^\n]*)?\r?$"#),
            yaml_data: re(r"(?m)^[-+]?([ \t]*)(?:data|stringData):[ \t]*\r?$"),
            json_data: re(r#""(?:data|stringData)"\s*:\s*\{"#),
            json_pair: re(r#""(?:[^"\\]|\\.)*"\s*:\s*"((?:[^"\\]|\\.)*)""#),
        }
    })
}

fn is_private_label(label: &str) -> bool {
    let label = label.to_ascii_uppercase();
    label.contains("PRIVATE KEY") || label.contains("SECRET KEY") || label.contains("STATIC KEY")
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='
}

/// One marker line: where it is, whether it opens, and what it names.
struct Marker<'a> {
    start: usize,
    end: usize,
    begin: bool,
    label: &'a str,
}

/// Private key blocks (redacted, markers kept readable) and public blocks (protected).
///
/// The marker lines themselves go to `reserved`: no other rule may swallow them (a pattern that
/// ran into `-----BEGIN …` would unpair the block and change what the next pass sees).
pub(super) fn markers(
    text: &str,
    out: &mut Vec<Finding>,
    protected: &mut Vec<(usize, usize)>,
    reserved: &mut Vec<(usize, usize)>,
) {
    let p = patterns();
    let all: Vec<Marker<'_>> = p
        .marker
        .captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            Some(Marker { start: m.start(), end: m.end(), begin: &c[1] == "BEGIN", label: c.get(2)?.as_str() })
        })
        .collect();
    reserved.extend(all.iter().map(|m| (m.start, m.end)));
    let mut i = 0;
    while i < all.len() {
        let m = &all[i];
        let private = is_private_label(m.label);
        if m.begin {
            // Closed by the very next marker when that is an END; a BEGIN before any END means
            // this block is cut off (and the next one is judged on its own).
            let close = all.get(i + 1).filter(|n| !n.begin).map(|_| i + 1);
            let body_end = match close {
                Some(k) => all[k].start,
                None => walk_body(text, m.end),
            };
            // Mismatched labels: private if either end says so.
            let private = private || close.is_some_and(|k| is_private_label(all[k].label));
            if private {
                if text[m.end..body_end].trim().is_empty() {
                    // An empty or unterminated-but-bodiless marker: nothing to hide.
                } else {
                    out.push(Finding {
                        ctx: m.end,
                        start: m.end,
                        end: body_end,
                        rule: "private_key",
                        rank: RANK_PRIVATE_KEY,
                    });
                }
            } else {
                protected.push((m.start, close.map_or(body_end, |k| all[k].end)));
            }
            i = close.map_or(i + 1, |k| k + 1);
        } else {
            // An END whose BEGIN is outside the window: the body lines just above it.
            let start = walk_back(text, m.start);
            if private {
                if !text[start..m.start].trim().is_empty() {
                    out.push(Finding { ctx: start, start, end: m.start, rule: "private_key", rank: RANK_PRIVATE_KEY });
                }
            } else {
                protected.push((start, m.end));
            }
            i += 1;
        }
    }
}

/// The end of the key body that starts at `from` when no END marker follows: lines (real, or
/// escaped `\n` inside a JSON string) of base64 or `Header: value`, stopping at anything else.
fn walk_body(text: &str, from: usize) -> usize {
    let b = text.as_bytes();
    let mut i = from;
    let mut end = from;
    for _ in 0..MAX_BODY_LINES {
        let sep = separator(text, i);
        if sep == 0 {
            break;
        }
        i += sep;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let header = header_len(&text[i..]);
        if header > 0 {
            i += header;
            end = i;
            continue;
        }
        let run = b[i..].iter().take_while(|c| is_b64(**c)).count();
        i += run;
        if separator(text, i) == 0 {
            // The last segment: whole when the text or its JSON string ends right after it.
            if run > 0 && (i == b.len() || matches!(b[i], b'"' | b'\'' | b'\\')) {
                end = i;
            }
            break;
        }
        if run > 0 {
            end = i;
        }
    }
    end
}

/// The length of a line separator at `i`: a newline, or an escaped one inside a JSON string.
fn separator(text: &str, i: usize) -> usize {
    let rest = &text[i..];
    if rest.starts_with('\n') {
        1
    } else if rest.starts_with("\r\n") {
        2
    } else if rest.starts_with("\\r\\n") {
        4
    } else if rest.starts_with("\\n") {
        2
    } else {
        0
    }
}

/// Length of a PEM header line's content (`Proc-Type: 4,ENCRYPTED`, `Comment: "…"`), up to the
/// end of the line or an escaped newline.
fn header_len(s: &str) -> usize {
    let name = s.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'-').count();
    if name < 4 || !s[name..].starts_with(": ") {
        return 0;
    }
    let line = s.find(['\n', '\r']).unwrap_or(s.len());
    s[..line].find("\\n").unwrap_or(line)
}

/// The start of the body lines just above `to` (the line an END marker is on).
fn walk_back(text: &str, to: usize) -> usize {
    let mut start = text[..to].rfind('\n').map_or(0, |i| i + 1);
    // Text before the marker on its own line must itself be body, or nothing above counts.
    let own = text[start..to].trim();
    if !own.is_empty() && !own.bytes().all(is_b64) && !is_frame(own) {
        return to;
    }
    let mut lines = 0;
    while start > 0 && lines < MAX_BODY_LINES {
        let prev_end = start - 1;
        let prev_start = text[..prev_end].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[prev_start..prev_end];
        // Another marker's line ends the body: a header-looking line that carries a marker
        // (`Name: v-----END …`) belongs to that marker's block, not to this one.
        if !body_above(line) || patterns().marker.is_match(line) {
            break;
        }
        start = prev_start;
        lines += 1;
    }
    start
}

/// PuTTY key files: `Private-Lines: N` hides the next N lines; `Public-Lines: N` protects them.
pub(super) fn putty(text: &str, out: &mut Vec<Finding>, protected: &mut Vec<(usize, usize)>) {
    for c in patterns().putty.captures_iter(text) {
        let (Some(all), Some(kind), Some(n)) = (c.get(0), c.get(1), c.get(2)) else { continue };
        let count = n.as_str().parse::<usize>().unwrap_or(0).min(MAX_BODY_LINES);
        let start = text[all.end()..].find('\n').map_or(text.len(), |i| all.end() + i + 1);
        let mut end = start;
        for _ in 0..count {
            if end >= text.len() {
                break;
            }
            end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        }
        let end = if end > start && text.as_bytes()[end - 1] == b'\n' { end - 1 } else { end };
        if end <= start {
            continue;
        }
        if kind.as_str() == "Private" {
            out.push(Finding { ctx: start, start, end, rule: "putty_private_key", rank: RANK_PUTTY });
        } else {
            protected.push((start, end));
        }
    }
}

/// Base64-wrapped PEM (kubeconfig `client-key-data`, Secret `tls.key`): decoded just enough to
/// read its BEGIN line. Private keys are redacted whole; certificates are protected.
pub(super) fn base64_pem(text: &str, out: &mut Vec<Finding>, protected: &mut Vec<(usize, usize)>) {
    for m in patterns().b64_pem.find_iter(text) {
        let head: Vec<u8> = m.as_str().bytes().filter(|c| is_b64(*c) && *c != b'=').take(96).collect();
        let usable = head.len() - head.len() % 4;
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&head[..usable]).unwrap_or_default();
        let decoded = String::from_utf8_lossy(&decoded);
        let (start, end) = (m.start(), m.start() + m.as_str().trim_end().len());
        // Public only when the decoded header says so; a truncated or unreadable one is treated as a key.
        let public = ["CERTIFICATE", "PUBLIC KEY", "PUBLIC KEY BLOCK", "X509 CRL", "PGP SIGNATURE"]
            .iter()
            .any(|p| decoded.contains(p));
        if public && !is_private_label(&decoded) {
            protected.push((start, end));
        } else {
            out.push(Finding { ctx: start, start, end, rule: "base64_private_key", rank: RANK_B64_PEM });
        }
    }
}

/// The values under `data:` / `stringData:` of a Kubernetes Secret (YAML or JSON), whatever
/// their keys are called.
pub(super) fn k8s_secret(text: &str, out: &mut Vec<Finding>) {
    let p = patterns();
    if !p.kind_secret.is_match(text) && !text.contains("\"kind\":\"Secret\"") && !text.contains("\"kind\": \"Secret\"")
    {
        return;
    }
    for c in p.yaml_data.captures_iter(text) {
        let (Some(all), Some(indent)) = (c.get(0), c.get(1)) else { continue };
        let parent = indent.as_str().len();
        let diff = diff_marked(text, all.start(), all.end());
        let mut next = text[all.end()..].find('\n').map_or(text.len(), |i| all.end() + i + 1);
        let mut child = None::<usize>;
        while next < text.len() {
            let le = text[next..].find('\n').map_or(text.len(), |i| next + i);
            // A diffed line's marker is not indentation.
            let at =
                if diff && next < le && matches!(text.as_bytes()[next], b'+' | b'-' | b' ') { next + 1 } else { next };
            let line = text[at..le].trim_end_matches('\r');
            let ind = line.len() - line.trim_start().len();
            if !line.trim().is_empty() {
                if ind <= parent {
                    break;
                }
                let first_child = *child.get_or_insert(ind);
                let content_start = at + ind;
                let content = line.trim();
                let value = if ind > first_child {
                    Some((content_start, at + line.len()))
                } else {
                    content.find(':').map(|k| {
                        let v = content[k + 1..].trim_start();
                        let vs = at + line.len() - v.len();
                        (vs, at + line.len())
                    })
                };
                if let Some((vs, ve)) = value {
                    let v = text[vs..ve].trim().trim_matches(['"', '\'']);
                    if !v.is_empty() && !matches!(v, "|" | ">" | "|-" | ">-") && !super::keys::is_placeholder(v) {
                        out.push(Finding { ctx: vs, start: vs, end: ve, rule: "k8s_secret_data", rank: RANK_K8S });
                    }
                }
            }
            next = le + 1;
        }
    }
    for m in p.json_data.find_iter(text) {
        let close = text[m.end()..].find('}').map_or(text.len(), |i| m.end() + i);
        for c in p.json_pair.captures_iter(&text[m.end()..close]) {
            if let Some(v) = c.get(1)
                && !super::keys::is_placeholder(v.as_str())
            {
                out.push(Finding {
                    ctx: m.end() + v.start(),
                    start: m.end() + v.start(),
                    end: m.end() + v.end(),
                    rule: "k8s_secret_data",
                    rank: RANK_K8S,
                });
            }
        }
    }
}

/// Every line: key body lines on their own, and `.pgpass` lines. `protected` is sorted by start
/// and its ranges do not overlap.
pub(super) fn lines(text: &str, protected: &[(usize, usize)], out: &mut Vec<Finding>) {
    let mut start = 0;
    let mut guard = 0;
    let mut prev_body = false;
    while start <= text.len() {
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = &text[start..end];
        while guard < protected.len() && protected[guard].1 < start {
            guard += 1;
        }
        let shielded = guard < protected.len() && protected[guard].0 <= end;
        let mut body = false;
        if !shielded && !line.is_empty() {
            let cuts = super::grep::cuts(line);
            if let Some((s, e)) = behind_grep(line, cuts, |l| body_line(l, prev_body)) {
                out.push(Finding {
                    ctx: start + s,
                    start: start + s,
                    end: start + e,
                    rule: "private_key_body",
                    rank: RANK_BODY,
                });
                body = true;
            } else if let Some((s, e)) = behind_grep(line, cuts, pgpass) {
                out.push(Finding {
                    ctx: start + s,
                    start: start + s,
                    end: start + e,
                    rule: "pgpass",
                    rank: RANK_PGPASS,
                });
            }
        }
        prev_body = body;
        if end == text.len() {
            break;
        }
        start = end + 1;
    }
}

/// `find` on the line, or else on what follows a search tool's prefix (`grep -rn`'s `path:12:`:
/// see `grep.rs`; `cuts` are the line's): a `.pgpass` line itself can look like one
/// (`db.example.com:5432:…`), so the whole line is read first.
fn behind_grep(line: &str, cuts: [usize; 2], find: impl Fn(&str) -> Option<(usize, usize)>) -> Option<(usize, usize)> {
    find(line)
        .or_else(|| cuts.into_iter().filter(|&p| p > 0).find_map(|p| find(&line[p..]).map(|(s, e)| (p + s, p + e))))
}

/// A line that is key body on its own: only base64, 48 or more characters (or shorter right
/// after another body line: a key's last line), letters of both cases and digits, not hex.
/// Returns the body's range within the line (quotes, a trailing comma and a `grep -n`-style
/// `path:line:` prefix stay).
fn body_line(line: &str, prev_body: bool) -> Option<(usize, usize)> {
    let b = line.as_bytes();
    let min = if prev_body { 4 } else { MIN_BODY_WIDTH };
    if b.len() < min.min(AWS_SECRET_WIDTH) || b.len() > MAX_BODY_WIDTH + 64 {
        return None;
    }
    let (s, e) = payload(line, min.min(AWS_SECRET_WIDTH))?;
    let body = &b[s..e];
    // 40 exactly: an AWS secret access key on its own line (a SHA-1 in hex is caught below).
    let aws_width = body.len() == AWS_SECRET_WIDTH && !prev_body;
    if (body.len() < min && !aws_width) || body.len() > MAX_BODY_WIDTH {
        return None;
    }
    let trimmed = body.iter().rposition(|c| *c != b'=').map_or(0, |k| k + 1);
    if body.len() - trimmed > 2
        || body[..trimmed].iter().any(|c| !(c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/'))
    {
        return None;
    }
    let upper = body.iter().any(u8::is_ascii_uppercase);
    let lower = body.iter().any(u8::is_ascii_lowercase);
    let digit = body.iter().any(u8::is_ascii_digit);
    let non_hex = body.iter().any(|c| !c.is_ascii_hexdigit() && *c != b'=');
    if prev_body && body.len() < MIN_BODY_WIDTH && body.len() != AWS_SECRET_WIDTH {
        return (non_hex || body.iter().all(|c| *c == b'=')).then_some((s, e));
    }
    let mut seen = [false; 128];
    let mut distinct = 0;
    for c in body {
        if !seen[usize::from(*c & 0x7f)] {
            seen[usize::from(*c & 0x7f)] = true;
            distinct += 1;
        }
    }
    (upper && lower && digit && non_hex && distinct >= 16 && !encodes_text(body)).then_some((s, e))
}

/// The part of a line a tool or a log wrapped it in: a unified diff's `+`/`-` marker, a docker
/// json-file record (`{"log":"…\\n",…}`), or a prefix [`LOG_FRAMING`] recognises (syslog and
/// journal headers, RFC 3339 timestamps of `docker logs -t` / `kubectl logs --timestamps` / CRI
/// files, kubectl's `[pod/…]`, compose's `web-1  | `). Returns the byte range of what the line
/// carries, blanks around it trimmed. A key or a `.pgpass` line printed to a log, or shown in a
/// diff, is the same line behind such a frame.
///
/// `candidate` is asked about the last word first: the framing pattern runs only where the line
/// could be what the caller looks for (most log lines end in an ordinary word).
pub(super) fn unframe(line: &str, candidate: impl Fn(&str) -> bool) -> (usize, usize) {
    let b = line.as_bytes();
    let (mut s, mut e) = (0, b.len());
    while e > s && matches!(b[e - 1], b' ' | b'\t' | b'\r') {
        e -= 1;
    }
    while s < e && matches!(b[s], b' ' | b'\t') {
        s += 1;
    }
    // Frames nest (an application's own timestamp inside a docker record inside a syslog line,
    // any of them in a diff; a diff of a patch file has two markers).
    let mut markers = 0;
    for _ in 0..MAX_FRAMES {
        while markers < 2 && s < e && matches!(b[s], b'+' | b'-') {
            s += 1;
            markers += 1;
        }
        if let Some(open) = docker_record(&line[s..e]) {
            s += open;
            let rest = &line[s..e];
            let b = rest.as_bytes();
            let len = (0..b.len()).find(|&i| b[i] == b'"' && (i == 0 || b[i - 1] != b'\\')).unwrap_or(b.len());
            e = s + rest[..len].trim_end_matches("\\n").trim_end_matches("\\r").len();
            continue;
        }
        let Some(blank) = line[s..e].rfind([' ', '\t']) else { break };
        let word = line[s + blank + 1..e].trim_start_matches(['+', '-']);
        if !candidate(word) && !line[s..e].contains(DOCKER_LOG) {
            break;
        }
        // An earlier replacement is where a secret was, never a frame (`[pod/…]` looks alike):
        // read as one, text beside it would be judged differently on a second pass.
        match log_framing().find(&line[s..=(s + blank)]) {
            Some(m) if m.end() > 0 && !m.as_str().starts_with("[REDACTED:") => s += m.end(),
            _ => break,
        }
        while s < e && matches!(b[s], b' ' | b'\t') {
            s += 1;
        }
    }
    while s < e && matches!(b[s], b' ' | b'\t') {
        s += 1;
    }
    (s, e)
}

/// Where a line's would-be key body is, once its frame ([`unframe`]), quotes, a trailing comma
/// and a `grep -n`-style `path:12:` prefix are set aside.
fn payload(line: &str, min: usize) -> Option<(usize, usize)> {
    let b = line.as_bytes();
    let (mut s, mut e) = unframe(line, |word| {
        let word = word.trim_matches(['"', '\'', ',']);
        let body = word.rsplit(':').next().unwrap_or(word);
        body.len() >= min && body.bytes().all(is_b64)
    });
    while e > s && matches!(b[e - 1], b',' | b' ' | b'\t') {
        e -= 1;
    }
    if e > s + 1 && matches!(b[s], b'"' | b'\'') && b[e - 1] == b[s] {
        s += 1;
        e -= 1;
    }
    let t = &line[s..e];
    if t.contains([' ', '\t']) {
        return None;
    }
    // `path:12:BODY` or `12:BODY`.
    match t.rfind(':') {
        Some(colon)
            if t[..colon]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-' | b':')) =>
        {
            Some((s + colon + 1, e))
        }
        Some(_) => None,
        None => Some((s, e)),
    }
}

/// Whether the line holding `ls..le` is part of a unified diff: it starts with a `+`/`-` marker
/// and the line after it starts with a marker or a context blank.
pub(super) fn diff_marked(text: &str, ls: usize, le: usize) -> bool {
    let b = text.as_bytes();
    let ls = text[..ls].rfind('\n').map_or(0, |i| i + 1);
    let next = text[le..].find('\n').map_or(text.len(), |i| le + i + 1);
    matches!(b.get(ls), Some(b'+' | b'-')) && matches!(b.get(next), Some(b'+' | b'-' | b' '))
}

/// Most frames taken off one line.
const MAX_FRAMES: usize = 4;

/// The start of a docker json-file log record (`{"log":"`, or `{"log": "` as re-serialised).
const DOCKER_LOG: &str = "{\"log\":";

/// The length of a docker json-file record's opening up to its log string, if `t` starts one.
fn docker_record(t: &str) -> Option<usize> {
    let rest = t.strip_prefix(DOCKER_LOG)?.trim_start_matches([' ', '\t']);
    rest.strip_prefix('"')?;
    Some(t.len() - rest.len() + 1)
}

/// Whether `prefix` is nothing but a frame ([`unframe`]): the text before a marker on its line.
pub(super) fn is_frame(prefix: &str) -> bool {
    let probe = format!("{} A", prefix.trim_end());
    let (a, z) = unframe(&probe, |_| true);
    &probe[a..z] == "A"
}

/// Whether a line above an END marker belongs to the key: blank, base64 or a header, once its
/// frame is set aside.
fn body_above(line: &str) -> bool {
    let (a, z) = unframe(line, |_| true);
    let p = &line[a..z];
    p.is_empty() || p.bytes().all(is_b64) || header_len(p) > 0
}

/// Prefixes logs put before each line, anchored at its start (one frame; frames nest).
const LOG_FRAMING: &str = concat!(
    r"^(?:",
    // A timestamp: syslog's `Nov 21 12:00:01`, or RFC 3339 / ISO 8601.
    r"(?:[A-Z][a-z]{2} [ 0-9]?\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)",
    // … then a syslog host and tag, or a CRI stream and flag, or nothing.
    r"(?: \S+ [^\s:]+(?:\[\d+\])?:| (?:stdout|stderr) [FP])?",
    // kubectl logs --prefix, docker compose logs.
    r"|\[[^\]\s]+\]|[\w.-]+ *\|",
    // … and the blank that ends the frame.
    r")[ \t]"
);

fn log_framing() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(LOG_FRAMING).unwrap_or_else(|e| panic!("log framing pattern: {e}")))
}

/// Whether base64 `body` decodes to text (base64 of a JSON document, a config, a name): key
/// material is binary DER or packet data, never text. A body whose first byte is not on a
/// 4-character boundary of its encoding decodes to noise and is still taken for a key.
fn encodes_text(body: &[u8]) -> bool {
    let clean = body.iter().rposition(|c| *c != b'=').map_or(0, |k| k + 1);
    let usable = clean - clean % 4;
    let Ok(decoded) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&body[..usable]) else {
        return false;
    };
    std::str::from_utf8(&decoded).is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_ascii_whitespace()))
}

/// A `.pgpass` line, `host:port:database:user:password` (port a number or `*`): the password.
fn pgpass(line: &str) -> Option<(usize, usize)> {
    let (start, end) = unframe(line, |word| word.matches(':').count() >= 4);
    let framed = &line[start..end];
    // Behind a log's frame, a search tool's prefix of its own (the caller tries the line's).
    let cuts = if start > 0 { super::grep::cuts(framed) } else { [0, 0] };
    behind_grep(framed, cuts, pgpass_fields).map(|(s, e)| (start + s, start + e))
}

/// The password's range in an unframed `.pgpass` line.
fn pgpass_fields(line: &str) -> Option<(usize, usize)> {
    let t = line.trim_end_matches('\r');
    if t.len() > 512 || t.is_empty() || t.bytes().any(|c| c.is_ascii_whitespace()) || t.starts_with('#') {
        return None;
    }
    let mut cuts = [0usize; 4];
    let mut n = 0;
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() && n < 4 {
        match b[i] {
            b'\\' => i += 1,
            b':' => {
                cuts[n] = i;
                n += 1;
            }
            _ => {}
        }
        i += 1;
    }
    if n < 4 {
        return None;
    }
    let host = &t[..cuts[0]];
    let port = &t[cuts[0] + 1..cuts[1]];
    let db = &t[cuts[1] + 1..cuts[2]];
    let user = &t[cuts[2] + 1..cuts[3]];
    let pass = &t[cuts[3] + 1..];
    let fieldish = |f: &str| {
        !f.is_empty()
            && f.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'*' | b'$' | b'@'))
    };
    // `MD5:16:27:ac:…` fingerprints, not a database and a user.
    let fingerprint = [db, user].iter().all(|f| f.len() == 2 && f.bytes().all(|c| c.is_ascii_hexdigit()));
    let hex_only = [host, port, db, user, pass].iter().all(|f| f.bytes().all(|c| c.is_ascii_hexdigit()));
    let ok = fieldish(host)
        && host.bytes().any(|c| c.is_ascii_alphabetic() || c == b'.' || c == b'*')
        && (port == "*" || (!port.is_empty() && port.len() <= 5 && port.bytes().all(|c| c.is_ascii_digit())))
        && fieldish(db)
        && fieldish(user)
        && !pass.is_empty()
        && !hex_only
        && !fingerprint
        && !super::keys::is_placeholder(pass);
    ok.then_some((cuts[3] + 1, t.len()))
}
