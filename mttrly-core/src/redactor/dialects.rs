//! Key-aware redaction: the value of a secret-named key, in whichever dialect it is written.
//!
//! The engine hands over every place a credential word occurs (`pass`, `pwd`, `secret`, `token`,
//! `key`, `auth`, `cred`, `session`, `cookie`, `dsn`, `sig`). From there this module reads the
//! whole key around it, asks [`keys::classify`] whether it names a secret, finds the separator
//! and extracts the value the way the dialect delimits it:
//!
//! | dialect | key | separator | value |
//! |---|---|---|---|
//! | env, logfmt, INI, TOML, Java properties, YAML, `.env` | `KEY`, `db.password`, `"key"` | `=`, `:`, `:=`, `?=` | quoted (spaces kept) or up to the dialect's end; at line start the rest of the line |
//! | JSON, PHP/Ruby/Python maps | `"key"`, `'key'`, `\"key\"` | `:`, `=>` | quoted, escaped-quoted or scalar |
//! | XML | `<password>`, `key="password" value=…`, `name="…">` | `>` or `value=` | up to `<` or the quotes |
//! | URL query, connection strings | `?token=`, `;Password=` | `=` | up to `&`, `#` or `;Next=` |
//! | CLI flags | `--password X`, `--db-pass=X`, `-storepass X` | `=` or a space | the next word |
//! | HTTP headers, web-server configs | `Authorization: Bearer X`, `proxy_set_header Authorization "Basic X"` | `:` or a space | after the scheme word |
//! | directives | `bindpw X`, `requirepass X`, `ENV DB_PASS X`, SQL `PASSWORD 'x'` | a space | one word, or a quoted string |
//! | prose | `password FakeS65` | a space | one word that looks like a password |
//!
//! Placeholders, masks and references ([`keys::is_placeholder`]) are never replaced.

use super::Finding;
use super::keys::{self, KeyClass};
use super::lines;

/// Longest key name considered (longer runs are data, not a key).
const MAX_KEY: usize = 64;
/// Longest unquoted or quoted value read on one line.
pub(super) const MAX_VALUE: usize = 64 * 1024;
/// The longest tuple or list read as one value (`auth=("admin", "pw")`).
const MAX_TUPLE: usize = 4096;
/// How far before a key the word `variable` of a Terraform block is looked for.
const HCL_LOOK_BACK: usize = 128;
/// How far after a variable block's `{` its `default` is looked for.
const HCL_SPAN: usize = 16 * 1024;
/// The longest authorization scheme's name is far shorter ([`starts_with_scheme`]).
const MAX_SCHEME: usize = 32;
/// The longest rule name a marker may carry.
pub(super) const MAX_RULE_NAME: usize = 64;
/// The longest marker, `[REDACTED:rule]`.
const MARKER_MAX: usize = "[REDACTED:]".len() + MAX_RULE_NAME;

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Finds the values of secret keys around each credential word in `roots` (byte ranges, in any
/// order) and pushes one finding per value.
pub(super) fn scan(text: &str, roots: &mut [(usize, usize)], out: &mut Vec<Finding>) {
    roots.sort_unstable();
    let mut done_until = 0usize;
    for &(s, e) in roots.iter() {
        if s < done_until {
            continue;
        }
        let (ks, ke) = expand(text.as_bytes(), s, e);
        done_until = ke;
        // A run longer than any key name is data glued to a key (`…base64…--password=`): keep
        // its last whole words.
        let ks = if ke - ks > MAX_KEY {
            let b = text.as_bytes();
            match (ke - MAX_KEY..ke).find(|&i| matches!(b[i], b'-' | b'_' | b'.')) {
                Some(i) => i,
                None => continue,
            }
        } else {
            ks
        };
        // Else the word may name a secret whose value is another field's (`- name: DB_PASSWORD`
        // then `value: …`).
        if let Some(f) = value_of(text, ks, ke).or_else(|| super::pairs::value_after_name(text, s, e)) {
            out.push(f);
        }
    }
}

/// The key token around a credential word.
fn expand(b: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s > 0 && is_key_byte(b[s - 1]) {
        s -= 1;
    }
    while e < b.len() && is_key_byte(b[e]) {
        e += 1;
    }
    (s, e)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Plain(u8),
    Escaped,
}

/// How the value ends when it is not quoted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// One word: stops at whitespace and at a structural delimiter that closes something.
    Word,
    /// A URL query parameter: also at `&` and `#`.
    Query,
    /// The rest of the line (INI, YAML, `.env` at line start).
    Line,
    /// XML text: up to `<`.
    Xml,
}

/// Whether `text` ends with a `[REDACTED:rule]` marker.
fn ends_with_marker(text: &str) -> bool {
    // A marker is short: only its length of the text's end is searched.
    let tail = &text[text.floor_char_boundary(text.len().saturating_sub(MARKER_MAX))..];
    tail.strip_suffix(']').and_then(|t| t.rfind("[REDACTED:").map(|at| &t[at + 10..])).is_some_and(|rule| {
        !rule.is_empty() && rule.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn value_of(text: &str, ks: usize, ke: usize) -> Option<Finding> {
    // A flag glued to other text (`…data:LS0t…Eg--password=`): when the whole word is no key,
    // the flag at its end still is, read the same way whether or not the text before it was
    // already replaced by a marker (so a second pass finds nothing new).
    whole_key(text, ks, ke).or_else(|| {
        let raw = &text[ks..ke];
        let lead = raw.len() - raw.trim_start_matches(['-', '.']).len();
        raw[lead..].rfind("--").filter(|&at| at > 0).and_then(|at| value_of(text, ks + lead + at, ke))
    })
}

fn whole_key(text: &str, ks: usize, ke: usize) -> Option<Finding> {
    let bytes = text.as_bytes();
    // The key proper, without leading dashes (flags) or trailing dots (sentence ends).
    let raw = &text[ks..ke];
    let dashes = raw.len() - raw.trim_start_matches('-').len();
    let lead = raw.len() - raw.trim_start_matches(['-', '.']).len();
    let key_end = ks + raw.trim_end_matches(['-', '.']).len();
    if key_end <= ks + lead {
        return None;
    }
    let key = &text[ks + lead..key_end];
    if keys::is_random_run(key) || in_tool_prefix(text, ks, ke) {
        return None;
    }
    let before = if ks > 0 { bytes[ks - 1] } else { b'\n' };
    // References to a variable (`$DB_PASSWORD`, `${DB_PASSWORD}`, `%DB_PASS%`) assign nothing;
    // a `$name =` is an assignment all the same (PHP, Perl, PowerShell: `$db_password = "…";`).
    if (before == b'$' && !assigns(bytes, key_end))
        || before == b'%'
        || (before == b'{' && ks >= 2 && bytes[ks - 2] == b'$')
    {
        return None;
    }
    // The host of a URL (`http://auth:8080`, `user@session-store:6379`), not a key. A host name
    // has no `_` (`@…ghp_password: …` after base64 is a key, read the same once the base64 before
    // it is replaced); a service name that has one is followed by its port, which stays anyway.
    let host = !key.contains('_');
    if (before == b'@' && host) || (before == b'/' && ks >= 3 && &bytes[ks - 3..ks] == b"://") {
        return None;
    }
    // Inside a value (`arn:aws:secretsmanager:…:secret:db`, `a.b/token/x`), not a key; but an
    // XML element in a namespace (`<ns:password>`) is one.
    // (`before` is ASCII `:` when it is read, so `ks - 1` is a character boundary.)
    let ns_start = if before == b':' {
        text[..ks - 1].trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    } else {
        ""
    };
    let xml_ns = before == b':' && (ns_start.ends_with('<') || ns_start.ends_with("</"));
    // A marker this redactor wrote stands for the value text it replaced, so it counts as that
    // text here: otherwise redacting twice would find a key the first pass rightly did not.
    // (Only read when `before` is the ASCII `:`, so `ks - 1` is a character boundary.)
    let after_value = || ks >= 2 && (bytes[ks - 2].is_ascii_alphanumeric() || ends_with_marker(&text[..ks - 1]));
    if before == b':' && !xml_ns && after_value() && !behind_tool_prefix(text, ks, key_end) {
        return None;
    }
    if (before == b'/' && ks >= 2 && bytes[ks - 2] == b'<') || (xml_ns && ns_start.ends_with("</")) {
        return None; // a closing tag
    }
    let flag =
        dashes > 0 && (ks == 0 || bytes[ks - 1].is_ascii_whitespace() || matches!(bytes[ks - 1], b'"' | b'\'' | b'='));
    let quote = match before {
        b'"' if ks >= 2 && bytes[ks - 2] == b'\\' => Quote::Escaped,
        b'"' | b'\'' | b'`' => Quote::Plain(before),
        _ => Quote::None,
    };
    let xml_open = before == b'<' || (xml_ns && ns_start.ends_with('<') && !ns_start.ends_with("</"));
    let query = matches!(before, b'?' | b'&');
    // The line around the key. Every search from here on stops at a bound of its own (a value's
    // length, a scheme's, a marker's): a long line full of credential words (a minified JSON
    // answer) is read in linear time, not once per key.
    let ls = lines::start(text, ks);
    let le = lines::end(text, ke);
    // Inside `kubectl describe`'s reference to a Secret (`<set to the key 'password' in secret
    // 'db-credentials'>`): the names of a secret and its key, not values.
    let near = ls.max(ks.saturating_sub(256));
    let near = (near..ks).find(|&i| text.is_char_boundary(i)).unwrap_or(ks);
    if text[near..ks].rfind("<set to the key '").is_some_and(|open| !text[near + open..ks].contains('>')) {
        return None;
    }
    // What `grep` printed before the line (`path:12:`) is not part of it.
    let head = &text[ls..ks];
    let head = head[super::grep::prefix(head)..].trim_end_matches(['"', '\'', '\\', '<']).trim();
    // Comment leaders, and a unified diff's `+`/`-` marker: a diffed line is still at line start.
    let head = head.trim_start_matches(['#', '/', ';', '-', '+', ' ', '\t']).trim();
    let at_line_start =
        head.is_empty() || ["export", "set", "setenv", "ENV", "env", "declare -x", "local"].contains(&head);

    let mut pos = key_end;
    let mut key_text = key;
    let mut class = keys::classify(key);
    // `;PWD=` in an ODBC connection string is the password, not the shell's directory.
    if class == KeyClass::Plain && before == b';' && key.eq_ignore_ascii_case("pwd") {
        class = KeyClass::Secret;
    }
    // Close the key's quote.
    match quote {
        Quote::Plain(sep) if pos < bytes.len() && bytes[pos] == sep => pos += 1,
        Quote::Escaped if text[pos..].starts_with("\\\"") => pos += 2,
        _ => {}
    }
    // A subscript (`$config["db_pass"] =`, `app.config['SECRET_KEY'] =`).
    if quote != Quote::None && pos < bytes.len() && bytes[pos] == b']' {
        pos += 1;
    }
    let mut sep = skip_blanks(bytes, pos);
    // `Unseal Key 1: …`, `Recovery Key 3: …` (`vault operator init`): a numbered key. Only
    // those: `Pass 1: Checking inodes` (e2fsck) and `Session 2: started` number steps.
    let vault_key = key.eq_ignore_ascii_case("key") && {
        let before_key = text[ls..ks].trim_end().as_bytes();
        let ends_with = |word: &str| {
            before_key.len() >= word.len()
                && before_key[before_key.len() - word.len()..].eq_ignore_ascii_case(word.as_bytes())
        };
        ends_with("unseal") || ends_with("recovery")
    };
    if vault_key && quote == Quote::None && sep > pos && sep < le && bytes[sep].is_ascii_digit() {
        let digits = bytes[sep..le].iter().take_while(|c| c.is_ascii_digit()).count();
        let after = skip_blanks(bytes, sep + digits);
        if digits <= 3 && after < le && bytes[after] == b':' && !text[after..].starts_with("::") {
            pos = sep + digits;
            sep = after;
        }
    }
    // `AWS Secret Key: …`, `Client Secret = …`: up to two more words before the separator.
    let extended;
    if quote == Quote::None && sep > pos && sep < le && bytes[sep].is_ascii_alphabetic() {
        let mut r = sep;
        for _ in 0..2 {
            let w = r;
            while r < le && bytes[r].is_ascii_alphabetic() {
                r += 1;
            }
            let after = skip_blanks(bytes, r);
            // Only when the added words themselves name a credential (`AWS Secret Key`, `Client
            // Secret`): `ssl_session_cache shared:SSL:10m` is a directive and its value.
            if after < le
                && matches!(bytes[after], b':' | b'=')
                && !text[after..].starts_with("::")
                && r > w
                && keys::classify(&text[sep..r]) != KeyClass::Plain
            {
                extended = format!("{key} {}", &text[sep..r]);
                key_text = &extended;
                class = keys::classify(key_text);
                pos = r;
                sep = after;
                break;
            }
            if r == w || r >= le || bytes[r] != b' ' {
                break;
            }
            r += 1;
        }
    }
    if class == KeyClass::Plain {
        return None;
    }
    let authorization = keys::is_authorization(key_text);
    let rule = if authorization {
        "auth_header"
    } else if flag {
        "cli_secret_flag"
    } else if xml_open {
        "xml_secret"
    } else if query {
        "url_query_secret"
    } else {
        "secret_assignment"
    };

    // The separator.
    let rest = &text[sep..le];
    // Terraform `variable "db_password" { default = "…" }`: the default is the value.
    let hcl_variable = || {
        let tail = &head[head.floor_char_boundary(head.len().saturating_sub(HCL_LOOK_BACK))..];
        tail.split_whitespace().last().is_some_and(|w| w.trim_start_matches(['+', '-']) == "variable")
    };
    // Any other quoted key before ` {` opens a block: its own keys decide.
    if quote != Quote::None && rest.starts_with('{') {
        if !hcl_variable() {
            return None;
        }
        let (vs, ve) = hcl_default(text, sep + 1)?;
        let value = &text[vs..ve];
        let weak_miss = class == KeyClass::Weak && !keys::looks_random(value);
        return (!keys::is_placeholder(value) && !weak_miss).then_some(Finding {
            ctx: ks,
            start: vs,
            end: ve,
            rule,
            rank: super::RANK_KEY,
        });
    }
    let (v, ends) = if xml_open {
        // `<password>value</password>`
        if !rest.starts_with('>') {
            return None;
        }
        (sep + 1, Ends::Xml)
    } else if let Some(op) = ["=>", ":=", "?=", "+=", "=", ":"].iter().find(|s| rest.starts_with(**s)) {
        if rest.starts_with("::") || rest.starts_with("==") || rest.starts_with("://") {
            return None;
        }
        let v = skip_blanks(bytes, sep + op.len());
        let ends = if query {
            Ends::Query
        } else if at_line_start && quote == Quote::None && !flag {
            Ends::Line
        } else {
            Ends::Word
        };
        (v, ends)
    } else if quote != Quote::None
        && rest.starts_with(',')
        && matches!(bytes.get(skip_blanks(bytes, sep + 1)), Some(b'"' | b'\''))
        && matches!(text[..ks - 1].trim_end().as_bytes().last(), Some(b'(' | b'[' | b','))
    {
        // PHP `define('DB_PASSWORD', 'value')`, a pair in a list.
        (skip_blanks(bytes, sep + 1), Ends::Word)
    } else if sep > pos
        && rest.starts_with("- ")
        && matches!(bytes.get(skip_blanks(bytes, sep + 1)), Some(b'"' | b'\''))
    {
        // `token - 'value'`: a dash between a credential word and a quoted value (a listing, a
        // note, a test fixture). Quoted only: `token - refreshed` is prose.
        (skip_blanks(bytes, sep + 1), Ends::Word)
    } else if quote != Quote::None && (rest.starts_with('>') || rest.starts_with("\\>")) {
        // `<entry key="password">value</entry>`
        (sep + 1, Ends::Xml)
    } else if quote != Quote::None && sep > pos && attr_value(rest).is_some() {
        // `<add key="Password" value="…"/>`, `<property name="db.password" value="…"/>`
        (sep + attr_value(rest).unwrap_or(0), Ends::Word)
    } else if sep > pos && sep < le {
        // Space-separated dialects: a flag's value, a quoted value after a strong key or an
        // Authorization header (SQL `PASSWORD 'x'`, nginx `Authorization "Basic x"`), a scheme
        // after Authorization, or one word after a strong key (a directive, or password-like).
        let next = bytes[sep];
        let quoted = matches!(next, b'"' | b'\'');
        let strong = class == KeyClass::Secret && keys::is_strong(key_text);
        // A two-column table (`vault kv get`, `vault read`): `api_key    7c76fb…`, the key at
        // the line's start and one random-looking word after it ending the line.
        let table_row = at_line_start && quote == Quote::None && {
            let word = rest.split([' ', '\t']).next().unwrap_or_default();
            rest[word.len()..].trim().is_empty() && keys::looks_random(word)
        };
        let spaced = (flag && next != b'-')
            || ((strong || authorization) && quoted)
            || (authorization && starts_with_scheme(rest).is_some())
            || table_row
            || (strong && {
                // Inside a string (`"msg":"token refresh",…`, a docker record) the word ends
                // with the string.
                let stops: &[char] = if quote == Quote::None { &[' ', '\t'] } else { &[' ', '\t', '"', '\'', '\\'] };
                let word_end = rest.find(stops).map_or(le, |i| sep + i);
                let word = text[sep..word_end].trim_end_matches([';', ',', '.']);
                let only_word = text[word_end..le].trim().is_empty() || text[word_end..le].trim() == ";";
                // After a quoted key, `serializeAs="String"` is the element's next attribute.
                let attribute = quote != Quote::None && is_attribute(word);
                ((at_line_start && only_word) || keys::looks_like_password(word)) && !word.contains("://") && !attribute
            });
        if !spaced {
            return None;
        }
        (sep, Ends::Word)
    } else {
        return None;
    };
    // A YAML tag before the value: CloudFormation's references (`!Ref DbPassword`) name a
    // secret kept elsewhere; other tags (`!vault |`, `!!binary`) only say how the value is read.
    let v = match yaml_tag(&text[v.min(le)..le]) {
        Some((_, true)) => return None,
        Some((len, false)) => skip_blanks(bytes, v + len),
        None => v,
    };
    // `Authorization: Bearer X`, `token: Bearer X`: the scheme stays readable.
    let schemed = authorization || class == KeyClass::Secret;
    let mut digest = false;
    let (vs, ve) = match starts_with_scheme(&text[v.min(le)..le]) {
        Some(skip) if schemed && quote_at(bytes, v).is_none() => {
            // Unquoted, the credential runs to the end of the line or string (`Digest a=1, b=2`).
            let vs = v + skip;
            digest = text[v..vs].trim().eq_ignore_ascii_case("digest");
            // Digest parameters are quoted themselves (`realm="x", response="…"`): inside a JSON
            // record the string ends only where the record goes on (`","next":` or `"}`).
            let stop = if digest {
                // The first `"` followed by `,"` or `}`.
                let near = &bytes[vs..cap(text, vs, le)];
                memchr::memchr_iter(b'"', near)
                    .find(|&i| match near.get(i + 1) {
                        Some(b'}') => true,
                        Some(b',') => near.get(i + 2) == Some(&b'"'),
                        _ => false,
                    })
                    .map_or(le, |i| vs + i)
            } else {
                memchr::memchr3(b'"', b'\'', b'\\', &bytes[vs..cap(text, vs, le)]).map_or(le, |i| vs + i)
            };
            (vs, vs + text[vs..stop].trim_end().trim_end_matches(';').len())
        }
        _ => {
            let (vs, ve) = extract(text, v, le, ends)?;
            match starts_with_scheme(&text[vs..ve]) {
                Some(skip) if schemed => (vs + skip, ve),
                _ => (vs, ve),
            }
        }
    };
    // A JSON scalar (`"auth":true,"mfa":"totp"`) ends where the next quoted key starts.
    let ve = if quote != Quote::None && quote_at(bytes, vs).is_none() && !digest {
        text[vs..ve]
            .find([',', '}'])
            .filter(|&i| i > 0 && matches!(bytes.get(vs + i + 1), Some(b'"' | b'}' | b' ')))
            .map_or(ve, |i| vs + i)
    } else {
        ve
    };
    let value = &text[vs..ve];
    if vs >= ve || keys::is_placeholder(value) || keys::AUTH_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(value)) {
        return None;
    }
    // `host:port` (`server auth:9000`, `session-store:6379`): a port after a weak or plain word.
    if vs == sep + 1
        && bytes[sep] == b':'
        && value.len() <= 5
        && value.bytes().all(|c| c.is_ascii_digit())
        && !keys::is_strong(key_text)
    {
        return None;
    }
    if keys::ends_in_key(key_text) && keys::is_path(value) {
        return None;
    }
    // A name and its tag glued by `:`, not an assignment: an image or a path's last part
    // (`ghcr.io/org/auth:1.2.3`, `/var/log/auth.log:…` as `grep -r` prints it), a Debian
    // package and its architecture (`libsecret-1-0:amd64`).
    // A file named for a secret keeps one (`/run/secrets/db_password:…` is its content).
    // A tag is a version (`1.2.3`, `v2.4.1-alpine`, `2024.01.15`) or one of a few words; a log
    // file holds log lines.
    let tag = || {
        let release = value.strip_prefix('v').unwrap_or(value).split(['-', '+']).next().unwrap_or_default();
        let version =
            release.contains('.') && release.split('.').all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
        version || keys::is_in(value, IMAGE_TAGS)
    };
    let log_file = key_text.len() > 4 && key_text.as_bytes()[key_text.len() - 4..].eq_ignore_ascii_case(b".log");
    if bytes[sep] == b':'
        && vs == sep + 1
        && ((before == b'/' && (log_file || tag())) || keys::is_in(value, DEBIAN_ARCHITECTURES))
    {
        return None;
    }
    // The "value" is the key of the assignment that follows (`grep` run over an AWS credentials
    // file: `/root/.aws/credentials:aws_secret_access_key = …`): that key's own value is the
    // secret, found from its own credential word.
    if bytes[sep] == b':' && vs == sep + 1 && value.bytes().all(is_key_byte) && assigns(bytes, ve) {
        return None;
    }
    if class == KeyClass::Weak && !keys::looks_random(value) {
        return None;
    }
    // A nested structure (`"credentials": {`, `password:` then a list): its own keys decide.
    if ve == vs + 1 && matches!(bytes[vs], b'{' | b'[') {
        return None;
    }
    Some(Finding { ctx: ks, start: vs, end: ve, rule, rank: super::RANK_KEY })
}

/// The architectures `dpkg` and `apt` print after a package name (`libsecret-1-0:amd64`).
const DEBIAN_ARCHITECTURES: &[&str] =
    &["all", "any", "amd64", "arm64", "armel", "armhf", "i386", "mips64el", "mipsel", "ppc64el", "riscv64", "s390x"];

/// Image tags that are words (`ghcr.io/org/token-service:latest`).
const IMAGE_TAGS: &[&str] =
    &["latest", "stable", "dev", "edge", "main", "master", "nightly", "canary", "alpine", "slim"];

/// CloudFormation's intrinsic functions: the value is a reference, not a secret.
const REFERENCE_TAGS: &[&str] = &["!Ref", "!GetAtt", "!ImportValue", "!FindInMap"];

/// A leading YAML tag (`!vault `, `!!binary `, `!Ref `): its length with the blank after it, and
/// whether it makes the value a reference.
fn yaml_tag(v: &str) -> Option<(usize, bool)> {
    let b = v.as_bytes();
    if b.first() != Some(&b'!') {
        return None;
    }
    let len = b.iter().take_while(|c| !c.is_ascii_whitespace()).count();
    let name = &v[..len];
    let word = name.trim_start_matches('!');
    if word.is_empty() || !word.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'.')) {
        return None;
    }
    // A tag is followed by its value (or ends the line before a block).
    if len < b.len() && !matches!(b[len], b' ' | b'\t') {
        return None;
    }
    Some((len, REFERENCE_TAGS.contains(&name)))
}

/// Lines of a Terraform `variable` block searched for its `default`.
const MAX_HCL_LINES: usize = 32;

/// The `default = …` value inside the HCL block opened just before `from`: on the same line or
/// on the block's following lines, up to its closing `}`.
fn hcl_default(text: &str, from: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut at = from;
    let mut depth = 1usize;
    let limit = text.floor_char_boundary((from + HCL_SPAN).min(text.len()));
    for _ in 0..MAX_HCL_LINES {
        if at >= limit {
            return None;
        }
        let le = lines::end(text, at).min(limit);
        let line = &text[at..le];
        let mut search = 0;
        while let Some(i) = line[search..].find("default") {
            let k = at + search + i;
            let boundary = k == 0 || !is_key_byte(b[k - 1]);
            let after = skip_blanks(b, k + "default".len());
            if boundary && after < le && b[after] == b'=' && b.get(after + 1) != Some(&b'=') {
                let v = skip_blanks(b, after + 1);
                return extract(text, v, le, Ends::Word).filter(|(s, e)| s < e);
            }
            search += i + "default".len();
        }
        // Nested blocks (`validation { … }`) open and close inside; the variable's own `}` ends it.
        for c in line.bytes() {
            match c {
                b'{' => depth += 1,
                b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if depth == 0 || le >= text.len() {
            return None;
        }
        at = le + 1;
    }
    None
}

/// Whether the key ending at `at` is followed by a plain assignment (`=`, not `==` or `=>`).
/// Whether the key at `ks` (ending at `key_end`, right after a `:`) starts the line's text behind
/// a prefix a tool wrote at the head of the line: a search tool's (`grep -rn`'s `path:12:`,
/// `grep -n`'s `12:`: see `grep.rs`), or another run without blanks (Python logging's
/// `WARNING:app.db:`) when the key is followed by `=` or by `:` and a blank. Either may stand
/// behind a log's own frame.
/// Inside a value (`arn:aws:…:secret:db`) the `:` after the word is followed by more of the
/// value, never a blank, and no `=` follows.
/// Whether the would-be key at `ks..ke` is part of a search tool's prefix with a line number
/// (`src/auth.rs:88:`): a file's name, not a key. Without a number the prefix is the key itself
/// (`db.password:x` in a properties file, `/run/secrets/db_password:x` from `grep -r .`).
fn in_tool_prefix(text: &str, ks: usize, ke: usize) -> bool {
    // The prefix's `:` follows the name at once, or the name ran into a context line's `-12-`.
    if text.as_bytes().get(ke) != Some(&b':') && !text[ks..ke].contains('-') {
        return false;
    }
    let from = word_start(text, ks);
    let le = lines::end(text, ke);
    let p = super::grep::prefix(&text[from..le]);
    let numbered = p >= 2 && text.as_bytes()[from + p - 2].is_ascii_digit();
    numbered && p >= ke - from
}

/// Where the word holding `at` starts: after a blank or a quote, or at the start of the text.
/// Looked for at most twice the longest path back: a search tool's prefix is shorter than that,
/// so a longer word reads as no prefix from wherever it is cut, as it did whole.
fn word_start(text: &str, at: usize) -> usize {
    let from = text.floor_char_boundary(at.saturating_sub(2 * super::grep::MAX_PATH));
    // ASCII whitespace and quotes, found from the end with SIMD searches (a word can be kilobytes).
    let b = &text.as_bytes()[from..at];
    let last =
        [memchr::memrchr3(b' ', b'\t', b'\n', b), memchr::memrchr3(b'\r', b'\x0c', b'"', b), memchr::memrchr(b'\'', b)]
            .into_iter()
            .flatten()
            .max();
    last.map_or(from, |i| from + i + 1)
}

/// Where a value starting at `from` is read to at most: the end of its line `le`, or
/// [`MAX_VALUE`] bytes on, at a character boundary.
fn cap(text: &str, from: usize, le: usize) -> usize {
    text.floor_char_boundary(le.min(from + MAX_VALUE))
}

fn behind_tool_prefix(text: &str, ks: usize, key_end: usize) -> bool {
    // The prefix is the run of the key's word before it: from the line's start, or from a
    // blank or a quote (the line as a log or a docker record frames it).
    let from = word_start(text, ks);
    let prefix = &text[from..ks];
    // A word glued to (or holding) a marker began in the text the marker replaced, which a first pass read
    // whole (`LS0t…=/etc/app/app.env:12:` is no path); read as a path on a second pass, it would
    // find a key the first pass rightly did not.
    if ends_with_marker(&text[..from]) || prefix.contains("[REDACTED:") {
        return false;
    }
    if super::grep::prefix(prefix) == prefix.len() {
        return true;
    }
    if memchr::memchr3(b'=', b'<', b'>', prefix.as_bytes()).is_some() {
        return false;
    }
    let b = text.as_bytes();
    let sep = skip_blanks(b, key_end);
    match b.get(sep) {
        Some(b'=') => !matches!(b.get(sep + 1), Some(b'=')),
        Some(b':') => matches!(b.get(sep + 1), Some(b' ' | b'\t')) || b.get(sep + 1) == Some(&b'='),
        _ => false,
    }
}

fn assigns(b: &[u8], at: usize) -> bool {
    let i = skip_blanks(b, at);
    b.get(i) == Some(&b'=') && !matches!(b.get(i + 1), Some(b'=' | b'>'))
}

/// `value="` after an XML attribute holding the key name: the offset of the value.
/// Whether `word` starts as an XML or HTML attribute does (`serializeAs=`, `data-x=`).
fn is_attribute(word: &str) -> bool {
    let name = word.bytes().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'.')).count();
    name > 0 && word.as_bytes()[0].is_ascii_alphabetic() && word.as_bytes().get(name) == Some(&b'=')
}

fn attr_value(rest: &str) -> Option<usize> {
    for name in ["value", "content", "val"] {
        if rest.get(..name.len()).is_some_and(|h| h.eq_ignore_ascii_case(name)) {
            let after = rest[name.len()..].trim_start();
            if let Some(v) = after.strip_prefix('=') {
                return Some(rest.len() - v.trim_start().len());
            }
        }
    }
    None
}

/// The length of a leading authorization scheme and its blanks (`Bearer `), if any.
pub(super) fn starts_with_scheme(v: &str) -> Option<usize> {
    let word_len = v.bytes().take(MAX_SCHEME + 1).position(|c| c == b' ' || c == b'\t').filter(|&n| n > 0)?;
    let word = &v[..word_len];
    if !keys::AUTH_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(word)) {
        return None;
    }
    let after = v[word_len..].trim_start_matches([' ', '\t']);
    (!after.is_empty()).then(|| v.len() - after.len())
}

fn quote_at(b: &[u8], v: usize) -> Option<Quote> {
    match b.get(v) {
        Some(b'\\') if b.get(v + 1) == Some(&b'"') => Some(Quote::Escaped),
        Some(&q @ (b'"' | b'\'' | b'`')) => Some(Quote::Plain(q)),
        _ => None,
    }
}

/// The value's byte range starting at `v` (before the end of its line `le`).
fn extract(text: &str, v: usize, le: usize, ends: Ends) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    if v >= b.len() {
        return None;
    }
    match quote_at(b, v) {
        Some(Quote::Escaped) => {
            let start = v + 2;
            let bound = cap(text, start, le);
            let end = text[start..bound].find("\\\"").map_or(bound, |i| start + i);
            return Some((start, end));
        }
        Some(Quote::Plain(q)) => {
            let start = v + 1;
            let bound = cap(text, start, le);
            let mut i = start;
            while i < bound && b[i] != q {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            return Some((start, text.floor_char_boundary(i.min(bound))));
        }
        _ => {}
    }
    if v >= le {
        return None;
    }
    // A tuple or list on one line (`auth=("admin", "pw")`, `password: [a, b]`): all of it.
    if matches!(b[v], b'(' | b'[')
        && !text[v..].starts_with("[REDACTED:")
        && let Some(close) = matching_close(&b[v..le.min(v + MAX_TUPLE)])
    {
        // PAM's `password [success=1 default=ignore] pam_unix.so`: a control's options.
        if options(&text[v + 1..v + close]) {
            return None;
        }
        return (close > 1).then_some((v + 1, v + close));
    }
    // YAML block scalar (`password: |`): the more-indented lines below.
    let first = text[v..le].trim_end();
    if matches!(first, "|" | ">" | "|-" | ">-" | "|+" | ">+") {
        return block_scalar(text, v, le);
    }
    let end = match ends {
        Ends::Xml => {
            let bound = cap(text, v, le);
            memchr::memchr(b'<', &b[v..bound]).map_or(bound, |i| v + i)
        }
        Ends::Line => {
            let line = text[v..le].trim_end();
            // One word (`a&token_type=bearer` pairs are cut as in a word), or logfmt
            // (`password=x user=bob`): one word per value after all.
            let one_word = !line.contains([' ', '\t']);
            // A command run with the variable set (`PGPASSWORD=x pg_dump -h db …`): its flags
            // or a pipe or redirection say so, and the command stays readable.
            let command = line.split_whitespace().skip(1).any(|w| {
                (w.starts_with('-') && w[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '-'))
                    || matches!(w, "|" | "||" | "&&" | ";" | ">" | ">>" | "<" | "2>&1")
            });
            if one_word || command || line.split_whitespace().skip(1).any(|w| w.contains('=') && !w.starts_with('=')) {
                text.floor_char_boundary(word_end(b, v, le, false))
            } else {
                v + line.len()
            }
        }
        Ends::Word => text.floor_char_boundary(word_end(b, v, le, false)),
        Ends::Query => text.floor_char_boundary(word_end(b, v, le, true)),
    };
    Some((v, end))
}

/// Whether a bracketed list is of `word=value` options (`success=1 default=ignore`).
fn options(inner: &str) -> bool {
    let mut items = inner.split_whitespace().peekable();
    items.peek().is_some()
        && items.all(|w| {
            w.split_once('=').is_some_and(|(k, v)| {
                !v.is_empty() && !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            })
        })
}

fn block_scalar(text: &str, v: usize, le: usize) -> Option<(usize, usize)> {
    let ls = lines::start(text, v);
    // In a unified diff every line carries a one-character marker; indentation is read after it.
    let diff = super::blocks::diff_marked(text, ls, le);
    let skip = usize::from(diff);
    let unmark = |from: usize, to: usize| {
        let marked = skip > 0 && from < to && matches!(text.as_bytes()[from], b'+' | b'-' | b' ');
        &text[from + usize::from(marked)..to]
    };
    let key_line = unmark(ls, le);
    let indent = key_line.len() - key_line.trim_start_matches([' ', '\t']).len();
    let mut end = le;
    let mut at = le + 1;
    let start = at;
    while at < text.len() {
        let next_end = lines::end(text, at);
        let line = unmark(at, next_end);
        let ind = line.len() - line.trim_start_matches([' ', '\t']).len();
        if !line.trim().is_empty() && ind <= indent {
            break;
        }
        end = next_end;
        at = next_end + 1;
    }
    (start <= end && start < text.len()).then_some((start, end))
}

fn text_has_space(b: &[u8]) -> bool {
    b.contains(&b' ')
}

/// The offset of the bracket closing the one `b` opens, on the same line.
fn matching_close(b: &[u8]) -> Option<usize> {
    let (open, close) = (b[0], if b[0] == b'(' { b')' } else { b']' });
    let mut depth = 0usize;
    let mut quote = None::<u8>;
    for (i, &c) in b.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == open => depth += 1,
            None if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            Some(_) | None => {}
        }
    }
    None
}

/// The end of an unquoted one-word value: whitespace, or a delimiter that closes an enclosing
/// structure or starts the next `key=` pair. A delimiter *inside* the value (`x,Fake…`, `ab;cd`,
/// `x"y`, `a}b`) does not end it: values starting with punctuation are still whole.
fn word_end(b: &[u8], v: usize, le: usize, query: bool) -> usize {
    let end_of_value = |i: usize| i >= le || b[i].is_ascii_whitespace();
    // `;User Id=` in a connection string may hold a space; `,a=` and `&a=` may not.
    let next_pair = |i: usize| {
        let spaces = b[i - 1] == b';';
        let mut j = i;
        while j < le && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'.' | b'-') || (spaces && b[j] == b' '))
        {
            j += 1;
        }
        // A key with a space is words (`User Id`, `Persist Security Info`), not a token.
        let words_only = !text_has_space(&b[i..j]) || b[i..j].iter().all(|c| c.is_ascii_alphabetic() || *c == b' ');
        j > i && j < le && b[i].is_ascii_alphabetic() && b[j] == b'=' && words_only
    };
    // A value that opens a bracket (`<your-api-key>`, `{placeholder}`) keeps its closer.
    let own_closer = match b.get(v) {
        Some(b'<') => Some(b'>'),
        Some(b'{') => Some(b'}'),
        Some(b'(') => Some(b')'),
        Some(b'[') => Some(b']'),
        _ => None,
    };
    let mut i = v;
    while i < le && i < v + MAX_VALUE {
        let c = b[i];
        if c.is_ascii_whitespace() {
            break;
        }
        let stop = match c {
            b'&' | b'#' if query => true,
            b'&' | b';' | b',' => end_of_value(i + 1) || next_pair(i + 1),
            b'"' | b'\'' => {
                end_of_value(i + 1) || matches!(b[i + 1], b',' | b'}' | b':' | b';' | b')' | b']' | b'>' | b'&')
            }
            b'}' | b')' | b']' | b'>' if own_closer != Some(c) => {
                end_of_value(i + 1) || matches!(b[i + 1], b',' | b'"' | b'\'' | b';' | b'}' | b']' | b')' | b'>')
            }
            b'<' => b.get(i + 1) == Some(&b'/'),
            b'\\' => matches!(b.get(i + 1), Some(b'"' | b'n' | b'r' | b't' | b'\\')),
            _ => false,
        };
        if stop && i > v {
            break;
        }
        i += 1;
    }
    i
}
