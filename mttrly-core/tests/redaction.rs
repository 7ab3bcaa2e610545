//! The redaction corpus, both ways, and properties of the redactor.
//!
//! `redaction/leak.tsv`: `rule<TAB>input<TAB>secret`: the secret must vanish and the named rule
//! must fire. `redaction/keep.txt`: inputs that must come back byte-identical (placeholders,
//! masks, public high-entropy things, ordinary logs). In both, `⏎` stands for a newline and `→`
//! for a tab. Every secret in them is fake, with a realistic shape.
//!
//! cargo test -p mttrly-core --test redaction

use std::fmt::Write as _;

use mttrly_core::redactor::{StreamRedactor, redact, redact_json};
use proptest::prelude::*;

fn unescape(s: &str) -> String {
    s.replace('⏎', "\n").replace('→', "\t")
}

fn leak_rows() -> Vec<(String, String, String)> {
    include_str!("redaction/leak.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let rule = parts.next().unwrap_or_default().to_owned();
            let input = unescape(parts.next().unwrap_or_default());
            let secret = unescape(parts.next().unwrap_or_default());
            assert!(!secret.is_empty() && input.contains(&secret), "malformed corpus row: {l}");
            (rule, input, secret)
        })
        .collect()
}

fn keep_rows() -> Vec<String> {
    include_str!("redaction/keep.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(unescape).collect()
}

#[test]
fn corpus_is_large_in_both_directions() {
    assert!(leak_rows().len() >= 300, "{}", leak_rows().len());
    assert!(keep_rows().len() >= 200, "{}", keep_rows().len());
}

#[test]
fn every_leak_row_loses_its_secret_and_names_its_rule() {
    let mut failures = Vec::new();
    for (rule, input, secret) in leak_rows() {
        let r = redact(&input);
        let marker = format!("[REDACTED:{rule}]");
        if r.text.contains(&secret) || !r.text.contains(&marker) || !r.hits.iter().any(|h| h.rule == rule) {
            failures.push(format!("{rule}: {input:?}\n   -> {:?}", r.text));
        }
    }
    assert!(failures.is_empty(), "{} leak rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_keep_row_is_byte_identical() {
    let mut failures = Vec::new();
    for input in keep_rows() {
        let r = redact(&input);
        if r.text != input || !r.hits.is_empty() {
            failures.push(format!("{input:?}\n   -> {:?}", r.text));
        }
    }
    assert!(failures.is_empty(), "{} keep rows changed:\n{}", failures.len(), failures.join("\n"));
}

/// How tools and logs frame every line they pass on: a diff's removed, added and context lines,
/// a syslog header, a container runtime's timestamp, a docker json-file record.
const FRAMINGS: &[(&str, &str)] = &[
    ("-", ""),
    ("+", ""),
    (" ", ""),
    ("Nov 21 12:00:01 web-1 app[812]: ", ""),
    ("2026-11-21T12:00:01.123456789Z stdout F ", ""),
    ("{\"log\":\"", "\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-21T12:00:01.1Z\"}"),
];

#[test]
fn every_leak_row_framed_line_by_line_loses_its_secret() {
    let mut failures = Vec::new();
    for (rule, input, secret) in leak_rows() {
        // Structures read across lines by indentation (a YAML block scalar, a Secret's `data:`)
        // are read unframed or in a diff only: a log's frame on every line hides the indentation.
        let indented = matches!(rule.as_str(), "secret_assignment" | "k8s_secret_data") && input.contains('\n');
        for (before, after) in FRAMINGS {
            if indented && before.len() > 1 {
                continue;
            }
            // A docker record escapes quotes and backslashes; the secret would read differently.
            if before.starts_with('{') && (input.contains(['"', '\\']) || secret.contains(['"', '\\'])) {
                continue;
            }
            let framed = input.lines().fold(String::new(), |mut out, l| {
                let _ = writeln!(out, "{before}{l}{after}");
                out
            });
            let r = redact(&framed);
            if r.text.contains(&secret) {
                failures.push(format!("{rule} framed by {before:?}: {framed:?}\n   -> {:?}", r.text));
            }
        }
    }
    assert!(failures.is_empty(), "{} framed rows leaked:\n{}", failures.len(), failures.join("\n"));
}

/// Command output arrives in chunks of whole lines: every leak row, cut at every line boundary
/// (the agent's `StreamRedactor` sees the lines before the cut only as context), loses its secret.
#[test]
fn every_leak_row_streamed_in_two_chunks_loses_its_secret() {
    let mut failures = Vec::new();
    for (rule, input, secret) in leak_rows() {
        // A Secret's `kind` may come after its `data:`; what a stream sent cannot be taken back.
        if rule == "k8s_secret_data" {
            continue;
        }
        let text = format!("{input}\n");
        let cuts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).filter(|&i| i < text.len()).collect();
        for cut in cuts {
            let mut stream = StreamRedactor::new();
            let out = format!("{}{}", stream.redact_chunk(&text[..cut]).text, stream.redact_chunk(&text[cut..]).text);
            if out.contains(&secret) {
                failures.push(format!("{rule} cut at {cut}: {text:?}\n   -> {out:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} streamed rows leaked:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn redaction_is_idempotent_on_the_corpus() {
    for (_, input, _) in leak_rows() {
        let once = redact(&input).text.into_owned();
        let twice = redact(&once);
        assert_eq!(twice.text, once, "not idempotent on {input:?}");
        assert!(twice.hits.is_empty(), "{:?} fired again on {once:?}", twice.hits);
    }
}

#[test]
fn line_structure_survives_redaction() {
    for (_, input, _) in leak_rows() {
        let out = redact(&input).text.into_owned();
        assert_eq!(out.lines().count(), input.lines().count(), "lines changed: {input:?} -> {out:?}");
    }
}

#[test]
fn secrets_in_json_documents_are_redacted_by_key_and_by_content() {
    for (rule, input, secret) in leak_rows() {
        let mut doc = serde_json::json!({ "output": input, "nested": [{ "line": input }] });
        let hits = redact_json(&mut doc);
        let strings =
            [doc["output"].as_str().unwrap_or_default(), doc["nested"][0]["line"].as_str().unwrap_or_default()];
        assert!(strings.iter().all(|s| !s.contains(&secret)), "{rule}: {secret:?} survived in {doc}");
        assert!(!hits.is_empty(), "{rule}: no hits for {input:?}");
    }
    let mut doc = serde_json::json!({
        "password": "hunter2", "db": { "pass": "a b c" }, "headers": { "Authorization": "Bearer abc.def" },
        "pin": 123_456, "secretName": "db-creds", "token_type": "Bearer", "max_token_age_seconds": 3600,
        "placeholder": { "password": "${DB_PASSWORD}" }
    });
    let hits = redact_json(&mut doc);
    assert_eq!(doc["password"], "[REDACTED:secret_assignment]");
    assert_eq!(doc["db"]["pass"], "[REDACTED:secret_assignment]");
    assert_eq!(doc["headers"]["Authorization"], "Bearer [REDACTED:auth_header]");
    assert_eq!(doc["pin"], 123_456, "pin is not a credential word");
    assert_eq!(doc["secretName"], "db-creds");
    assert_eq!(doc["token_type"], "Bearer");
    assert_eq!(doc["max_token_age_seconds"], 3600);
    assert_eq!(doc["placeholder"]["password"], "${DB_PASSWORD}");
    assert_eq!(hits.iter().map(|h| h.count).sum::<u32>(), 3);
}

/// Ordinary log lines to bury secrets in.
const NOISE: &[&str] = &[
    "10.0.3.9 - - [21/Nov/2026:12:00:01 +0000] \"GET /api/v1/items/7?page=2 HTTP/1.1\" 200 512 \"-\" \"curl/8.5\"",
    "Nov 21 12:00:02 web-1 systemd[1]: Started session 42 of user deploy.",
    "{\"level\":\"info\",\"msg\":\"request done\",\"request_id\":\"7f9c2ba4-e88f-4f3a-9b8e-2c5d1a0b3c4d\",\"duration_ms\":12}",
    "2026-11-21 12:00:03,114 WARN  [worker-3] retrying job 3f786850e387550fdab836ed7e6dc881de23001b (attempt 2/5)",
    "",
    "    at com.example.Service.handle(Service.java:42)",
];

/// The pieces secrets are made of.
const FRAGMENTS: &[&str] = &[
    "password",
    "PASS",
    "token",
    "key",
    "auth",
    "Authorization",
    "Bearer ",
    "=",
    ": ",
    "=>",
    "\"",
    "'",
    "\\\"",
    "\\n",
    "\n",
    " ",
    "<password>",
    "</password>",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "-----BEGIN CERTIFICATE-----",
    "LS0tLS1CRUdJTiBSU0Eg",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    "Private-Lines: 3",
    "kind: Secret",
    "data:",
    "  x: ",
    "${X}",
    "--password",
    "mysql -p",
    "curl -u a:",
    "://u:",
    "@h",
    "é",
    "€",
    "\r\n",
    "[REDACTED:x]",
    "ghp_",
    "AKIA",
    "sk-ant-api03-",
    "|",
    "+",
    "-",
    "password: |",
    "variable \"db_password\" {",
    "default = ",
    "<ns:password>",
    "{\"log\":\"",
    "{\"log\": \"",
    "Nov 21 12:00:01 web-1 app[812]: ",
    "2026-11-21T12:00:01Z stdout F ",
    "Public-Lines: 2",
    "$db_password = ",
    "host:5432:db:user:",
    "!vault |",
    "{",
    "}",
    ";",
    "&",
    "- name: DB_PASSWORD",
    "\n  value: ",
    "\"name\":\"",
    "\",\"value\":\"",
    "<name>db.password</name>",
    "<value>",
    "/etc/app/app.env:12:",
    "src/a.py:3:",
    "%3D",
    "\x1b[32m",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Any text: no panic, and redacting the result again changes nothing.
    #[test]
    fn never_panics_and_is_idempotent(text in "\\PC{0,400}") {
        let once = redact(&text).text.into_owned();
        let twice = redact(&once);
        prop_assert_eq!(&twice.text, &once);
    }

    /// Text built from the pieces secrets are made of (keywords, quotes, separators, base64,
    /// markers, escapes): no panic, idempotent, line count kept.
    #[test]
    fn hostile_fragments_never_panic(parts in proptest::collection::vec(prop_oneof![
        proptest::sample::select(FRAGMENTS).prop_map(str::to_owned),
        "[A-Za-z0-9+/]{1,80}",
    ], 0..40)) {
        let text: String = parts.concat();
        let once = redact(&text).text.into_owned();
        prop_assert_eq!(once.matches('\n').count(), text.matches('\n').count());
        let twice = redact(&once);
        prop_assert_eq!(&twice.text, &once);
    }

    /// A secret buried among ordinary log lines is still caught, wherever it is.
    #[test]
    fn secrets_buried_in_logs_are_caught(row in 0usize..10_000, before in 0usize..6, after in 0usize..6, noise in 0usize..6) {
        let rows = leak_rows();
        let (rule, input, secret) = &rows[row % rows.len()];
        let mut text = String::new();
        for i in 0..before { text.push_str(NOISE[(noise + i) % NOISE.len()]); text.push('\n'); }
        text.push_str(input);
        for i in 0..after { text.push('\n'); text.push_str(NOISE[(noise + i) % NOISE.len()]); }
        let r = redact(&text);
        prop_assert!(!r.text.contains(secret.as_str()), "{}: {:?} survived in {:?}", rule, secret, r.text);
        // Indented lines right after a YAML block may belong to it; the others must stay.
        for line in NOISE {
            if text.contains(line) && !line.is_empty() && !line.starts_with(' ') {
                prop_assert!(r.text.contains(line), "noise line {:?} was changed: {:?}", line, r.text);
            }
        }
    }
}

/// Found by `hostile_fragments_never_panic`: two END markers, the first after a PuTTY-looking
/// header on its line, the second after one base64 character on the next.
#[test]
fn two_end_markers_after_a_header_redact_the_same_twice() {
    let text = "Private-Lines: 3-----END RSA PRIVATE KEY-----\nA-----END RSA PRIVATE KEY-----";
    let once = redact(text).text.into_owned();
    let twice = redact(&once).text.into_owned();
    assert_eq!(twice, once, "first pass: {once:?}");
}

/// Found by `hostile_fragments_never_panic`: an XML secret element that opens before a PEM block.
#[test]
fn an_xml_secret_around_a_pem_block_redacts_the_same_twice() {
    let text = "<ns:password>-----BEGIN RSA PRIVATE KEY-----</password>-----END RSA PRIVATE KEY-----password";
    let once = redact(text).text.into_owned();
    let twice = redact(&once).text.into_owned();
    assert_eq!(twice, once, "first pass: {once:?}");
}

/// Found by `hostile_fragments_never_panic`: a base64-wrapped PEM head run into a flag's value.
/// The first pass read `…Eg--password` as one random key and left the value in clear.
#[test]
fn a_base64_pem_head_run_into_a_flag_redacts_the_same_twice() {
    let text =
        "data:LS0tLS1CRUdJTiBSU0Eg--password=MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7passwordpassword";
    let once = redact(text).text.into_owned();
    let twice = redact(&once).text.into_owned();
    assert_eq!(twice, once, "first pass: {once:?}");
    assert!(!once.contains("MIIEvQ"), "the value stays in clear: {once}");
}

/// A match that swallowed a literal marker is dropped, and the search resumes after the marker:
/// the second `curl -u` is read on the first pass (it was left in clear until a second pass).
#[test]
fn a_secret_after_a_marker_a_dropped_match_swallowed_is_redacted() {
    let text = "$db_password = curl -u a:[REDACTED:x]curl -u a:MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let once = redact(text).text.into_owned();
    assert!(!once.contains("MIIEvQ"), "the second secret stays in clear: {once}");
    let twice = redact(&once).text.into_owned();
    assert_eq!(twice, once, "first pass: {once:?}");
}

/// A replacement at the head of a line is no log frame (`[pod/…] `): the base64 after it is
/// judged the same on both passes.
#[test]
fn a_marker_at_the_head_of_a_line_is_not_a_log_frame() {
    let text = "LS0tLS1CRUdJTiBSU0EgBearer /a+aa+AA+0aAAaaaAAa0+aAa++AAAa+Aa0abcdoeafgB+1CD";
    let once = redact(text).text.into_owned();
    let twice = redact(&once).text.into_owned();
    assert_eq!(twice, once, "first pass: {once:?}");
}

/// Corpus rows whose secret stands as a word of its own on one line, as prose could hold it
/// (rules in `except` left out): inside a URL path, a hash's fields or a `key=value`, text
/// against the secret would make it another string (a value of prose is not a secret's). A lone
/// key body line is judged as a whole line: text against it makes it another line (its block
/// still catches it).
fn whole_token_rows(except: &[&str]) -> Vec<(String, String, String)> {
    leak_rows()
        .into_iter()
        .filter(|(rule, input, secret)| {
            let at = input.find(secret.as_str()).unwrap_or_default();
            let open = input[..at].chars().next_back().is_none_or(|c| " \t\"'".contains(c))
                && !input[..at].trim_end().ends_with([':', '=']);
            let close = input[at + secret.len()..].chars().next().is_none_or(|c| " \t\"',;".contains(c));
            open && close && !secret.contains('\n') && rule != "private_key_body" && !except.contains(&rule.as_str())
        })
        .collect()
}

/// A secret written right against text in another script (a Japanese sentence, a Russian word:
/// no space between) is still redacted: a token's edges are judged by ASCII word characters, so
/// a letter of another script does not hide where the token starts or ends.
#[test]
fn every_leak_row_glued_to_other_scripts_loses_its_secret() {
    let mut failures = Vec::new();
    let rows = whole_token_rows(&[]);
    let tried = rows.len();
    for (rule, input, secret) in rows {
        for (before, after) in [("トークン", "です"), ("ключ", "пароль"), ("é", "ü")] {
            let glued = input.replacen(&secret, &format!("{before}{secret}{after}"), 1);
            let r = redact(&glued);
            if r.text.contains(&secret) {
                failures.push(format!("{rule}: {glued:?}\n   -> {:?}", r.text));
            }
        }
    }
    assert!(tried >= 200, "only {tried} corpus rows have a whole-token secret");
    assert!(failures.is_empty(), "{} glued rows leaked:\n{}", failures.len(), failures.join("\n"));
}

/// What `grep` prints in front of a matching line (`grep -rn PASSWORD /etc`, `git grep`,
/// ripgrep's `--vimgrep`, `grep -C`'s context lines): the secret on that line is still redacted.
/// An assistant searching a server's configuration for a credential sees exactly this.
#[test]
fn every_one_line_leak_row_behind_a_grep_prefix_loses_its_secret() {
    let mut failures = Vec::new();
    let mut tried = 0;
    for (rule, input, secret) in leak_rows() {
        if input.contains('\n') || input.starts_with([' ', '\t']) {
            continue;
        }
        tried += 1;
        for prefix in
            ["/etc/app/settings.conf:", "/etc/app/settings.conf:12:", "12:", "src/app.py:12:7:", "settings.conf-13-"]
        {
            let line = format!("{prefix}{input}");
            let r = redact(&line);
            if r.text.contains(&secret) {
                failures.push(format!("{rule}: {line:?}\n   -> {:?}", r.text));
            }
        }
    }
    assert!(tried >= 300, "only {tried} one-line corpus rows");
    assert!(failures.is_empty(), "{} prefixed rows leaked:\n{}", failures.len(), failures.join("\n"));
}

/// A secret written right after an escape whose last character is a letter or a digit: a
/// URL-encoded separator (`?next=%2Fapi%3Ftoken%3Dghp_…`), a JSON string escape (`"created:\nghp_…"`,
/// `\u003d`) or a terminal colour code (`ESC[32mghp_…`). Read as plain text the escape hides
/// where the token starts; it is still redacted.
#[test]
fn every_leak_row_right_after_an_escape_loses_its_secret() {
    let mut failures = Vec::new();
    // Rules that read a secret from what stands before it (a key, an auth scheme, a command):
    // an escape between the two is not how such text is written.
    let rows = whole_token_rows(&[
        "secret_assignment",
        "bearer_token",
        "basic_auth",
        "aws_secret_key",
        "sql_password",
        "announced_password",
    ]);
    let tried = rows.len();
    for (rule, input, secret) in rows {
        for (before, after) in [("%3D", "%26"), ("\\n", "\\n"), ("\\u003d", "\\t"), ("\x1b[0;32m", "\x1b[0m")] {
            let escaped = input.replacen(&secret, &format!("{before}{secret}{after}"), 1);
            let r = redact(&escaped);
            if r.text.contains(&secret) {
                failures.push(format!("{rule}: {escaped:?}\n   -> {:?}", r.text));
            }
        }
    }
    assert!(tried >= 200, "only {tried} corpus rows have a whole-token secret");
    assert!(failures.is_empty(), "{} escaped rows leaked:\n{}", failures.len(), failures.join("\n"));
}

/// The whole line encoded, as output reaches the redactor when one program logs another's
/// (see `views.rs`): as a JSON string inside a JSON log record, percent-encoded inside a query
/// parameter, and with its separators coloured as `grep --color` colours a match. Whatever the
/// rules find in the line written plainly in the same place, they find through the encoding.
#[test]
fn every_one_line_leak_row_read_through_an_encoding_loses_its_secret() {
    fn json_string(s: &str) -> String {
        serde_json::to_string(s).unwrap_or_default()
    }
    fn percent(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
    fn coloured(s: &str) -> String {
        s.chars()
            .map(|c| if "=:".contains(c) { format!("\x1b[m\x1b[K{c}\x1b[01;31m\x1b[K") } else { c.to_string() })
            .collect()
    }
    fn html(s: &str) -> String {
        s.replace('&', "&amp;").replace('"', "&quot;").replace('\'', "&#39;").replace('<', "&lt;").replace('>', "&gt;")
    }
    type Encode = fn(&str) -> String;
    // (how the line sits in its record, how it is encoded there, whether the encoding quotes it,
    // whether it is a query parameter)
    let embeddings: [(&str, &str, Encode, bool, bool); 4] = [
        ("{\"log\":", ",\"stream\":\"stdout\"}", json_string, true, false),
        ("GET /cb?x=1&next=", "", percent, false, true),
        ("", "", coloured, false, false),
        ("<pre>", "</pre>", html, false, false),
    ];
    let mut failures = Vec::new();
    let mut tried = 0;
    for (rule, input, secret) in leak_rows() {
        if input.contains('\n') {
            continue;
        }
        for (before, after, encode, quoted, query) in embeddings {
            // A query parameter carries a token: what only its decoded reading finds must read
            // like one (see `analyse`), so a passphrase of plain words is not held to it there.
            if query && secret.contains(' ') {
                continue;
            }
            // The plain line in the same place (a JSON record's string written unquoted): rows
            // whose rule reads them from the start of a line do not count there.
            let plain = if quoted { format!("{before}\"{input}\"{after}") } else { format!("{before}{input}{after}") };
            if redact(&plain).text.contains(&secret) {
                continue;
            }
            tried += 1;
            let encoded = format!("{before}{}{after}", encode(&input));
            let hidden = encode(&secret);
            let hidden = if quoted { hidden[1..hidden.len() - 1].to_owned() } else { hidden };
            let r = redact(&encoded);
            if r.text.contains(&hidden) {
                failures.push(format!("{rule}: {encoded:?}\n   -> {:?}", r.text));
            }
        }
    }
    assert!(tried >= 900, "only {tried} encoded one-line corpus rows");
    assert!(failures.is_empty(), "{} encoded rows leaked:\n{}", failures.len(), failures.join("\n"));
}
