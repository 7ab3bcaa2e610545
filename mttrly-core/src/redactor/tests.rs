//! Unit tests of the engine; the corpus (hundreds of rows both ways) is in
//! `mttrly-core/tests/redaction.rs`.

use super::*;

fn check(input: &str, rule: &str, secret: &str) {
    let r = redact(input);
    assert!(!r.text.contains(secret), "{rule}: {secret:?} survived in {:?}", r.text);
    assert!(r.text.contains(&format!("[REDACTED:{rule}]")), "{rule} did not fire on {input:?}: {:?}", r.text);
    assert!(r.hits.iter().any(|h| h.rule == rule));
}

#[test]
fn every_secret_class_is_caught() {
    check("aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "aws_access_key", "AKIAIOSFODNN7EXAMPLE");
    check("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_key", "wJalrXUtnFEMI");
    check("token: ghp_0123456789abcdefghijABCDEFGHIJ012345", "github_token", "ghp_0123456789abcdef");
    check(
        "git clone https://x:github_pat_11ABCDEFG0123456789abcdef_XYZ@github.com/o/r",
        "github_token",
        "github_pat_11ABC",
    );
    check("GITLAB=glpat-abcdefghij0123456789", "gitlab_token", "glpat-abcdefghij");
    check("slack: xoxb-123456789012-abcdefghijkl", "slack_token", "xoxb-123456789012");
    check(
        "POST https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXXXXXXXXXXXXXXXXXXXXX",
        "slack_webhook",
        "T0000AAAA/B0000",
    );
    check(
        "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_ ok",
        "telegram_bot_token",
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    );
    check("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key", "sk_live_4eC39Hq");
    check("key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "gcp_api_key", "AIzaSyD-9tSrke72");
}

#[test]
fn ordinary_text_ids_and_hashes_survive() {
    for text in [
        "Nov 21 12:00:01 web-1 nginx[123]: 10.0.0.7 - - \"GET /health HTTP/1.1\" 200 2 \"-\" \"curl/8.0\"",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "request_id=7f9c2ba4-e88f-4f3a-9b8e-2c5d1a0b3c4d user_id=42",
        "srv_0123456789abcdef0123456789abcdef act_0123456789abcdef0123456789abcdef",
        "The token bucket refilled; password policy unchanged.",
        "https://example.com/path?page=2",
        "ERROR connection refused (os error 111)",
        "key_usage: digitalSignature",
    ] {
        let r = redact(text);
        assert_eq!(r.text, text, "{text:?} must survive");
        assert!(r.hits.is_empty());
    }
}

#[test]
fn counts_are_per_rule_and_markers_are_not_redacted_again() {
    let r = redact("a=AKIAIOSFODNN7EXAMPLE b=AKIAIOSFODNN7EXAMPLF secret=AKIAIOSFODNN7EXAMPLG");
    assert_eq!(r.hits[0], RuleHits { rule: "aws_access_key", count: 3 });
    assert!(!r.text.contains("AKIA"));
    let again = redact(&r.text);
    assert_eq!(again.text, r.text);
    assert!(again.hits.is_empty(), "{:?}", again.hits);
}

#[test]
fn every_rule_compiles_has_keywords_and_a_unique_id() {
    let ids: std::collections::BTreeSet<_> = rule_ids().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), RULES.len() + ENGINE_RULES.len());
    // A marker is recognised by looking only that far back from its `]`.
    for id in &ids {
        assert!(id.len() <= dialects::MAX_RULE_NAME, "{id} is longer than a marker may be");
    }
    for rule in RULES {
        assert!(!rule.keywords.is_empty(), "{} needs a keyword (keyword-less rules run on everything)", rule.id);
        for k in rule.keywords {
            assert_eq!(k.to_ascii_lowercase(), *k, "{}: keywords are matched case-insensitively", rule.id);
        }
    }
    assert_eq!(engine().regexes.len(), RULES.len());
}

/// Every token rule compiles, each within [`super::RULE_SIZE_LIMIT`]: the engine compiles a rule
/// only when its keyword first occurs, so a pattern that does not compile, or compiles to a
/// program as large as a Unicode class under a counted repetition makes, is found here rather than
/// in a running process.
#[test]
fn every_rule_compiles_within_its_bound() {
    for rule in RULES {
        if let Err(e) = super::compile(rule) {
            panic!("redaction rule {} does not compile within {} bytes: {e}", rule.id, super::RULE_SIZE_LIMIT);
        }
        if let Some(Err(e)) = super::compile_escaped(rule) {
            panic!(
                "redaction rule {} (after an escape) does not compile within {} bytes: {e}",
                rule.id,
                super::RULE_SIZE_LIMIT
            );
        }
    }
}

/// The exact formats the outside probe got back in clear (security-probe-2026-12.md, F7, F11).
#[test]
fn the_probe_s_leaks_are_closed() {
    let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGV0ZXN0AQgAtkXFakeS70AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nFakeS70BodyLine2xyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq0123\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----";
    for (input, secret) in [
        (pgp, "FakeS70"),
        ("DB_PASS=FakeS71x", "FakeS71x"),
        ("password = \"a b FakeS72 c\"", "FakeS72"),
        ("password=x,FakeS73abc", "FakeS73abc"),
        ("password=ab;FakeS74abc", "FakeS74abc"),
        ("password=x&FakeS75abc", "FakeS75abc"),
        ("password=x'FakeS76abc", "FakeS76abc"),
        ("password=x\"FakeS77abc", "FakeS77abc"),
        ("password=x}FakeS78abc", "FakeS78abc"),
        ("    'password' => 'FakeS79 with space',", "FakeS79"),
        ("<password>FakeS80</password>", "FakeS80"),
        ("mysql -uroot -pFakeS81 app", "FakeS81"),
        ("mysqldump --password FakeS82 app", "FakeS82"),
        ("Cookie: sessionid=FakeS83abcdef; theme=dark", "FakeS83"),
        ("AccountName=x;AccountKey=FakeS84aGVsbG8gd29ybGQ=;EndpointSuffix=core.windows.net", "FakeS84"),
        ("OPENAI_API_KEY=sk-proj-FakeS85abcdefghijklmnopqrstuvwxyz0123456789", "FakeS85"),
        ("key: sk-ant-api03-FakeS86abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ", "FakeS86"),
        ("token hf_FakeS87abcdefghijklmnopqrstuvwxyzAB", "FakeS87"),
        ("npm_FakeS88abcdefghijklmnopqrstuvwxyz0123", "FakeS88"),
        ("SG.FakeS89abcdefghijklmn.opqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW", "FakeS89"),
        ("export MTTRLY_TOKEN=mttrly_h_FakeS90abcdefghijklmnopqrstuvwxyz0123456", "FakeS90"),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYFakeS91KEY", "FakeS91"),
        ("mysql -h db -pFakeAuditS61", "FakeAuditS61"),
        ("reason: DB_PASS=FakeAuditS63 leaked", "FakeAuditS63"),
        ("the password FakeAuditS65 was printed", "FakeAuditS65"),
        ("HOME=/root DB_PASS=FakeEnvS50 LANG=C", "FakeEnvS50"),
        ("python3 app.py --password FakeArgvS52 -pFakeArgvS53 --db-pass=FakeArgvS54", "FakeArgvS52"),
        ("python3 app.py --password FakeArgvS52 -pFakeArgvS53 --db-pass=FakeArgvS54", "FakeArgvS53"),
        ("python3 app.py --password FakeArgvS52 -pFakeArgvS53 --db-pass=FakeArgvS54", "FakeArgvS54"),
        ("GET /bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawFake/getMe", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawFake"),
    ] {
        let r = redact(input);
        assert!(!r.text.contains(secret), "{secret:?} survived: {input:?} -> {:?}", r.text);
        assert!(!r.hits.is_empty());
    }
}

/// Key body lines seen without their BEGIN line: a tail of 4 lines, one search hit.
#[test]
fn key_body_lines_outside_the_window_are_redacted_but_certificates_stay() {
    let tail = "b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABD8\nx3Kq9TZ0mVFakeBodyLineForTestingOnly0123456789abcdefABCDEFGHIJKLMNO\nQ2xRw==\n-----END OPENSSH PRIVATE KEY-----";
    let r = redact(tail);
    assert!(!r.text.contains("b3BlbnNz") && !r.text.contains("x3Kq9") && !r.text.contains("Q2xRw"), "{}", r.text);
    assert!(r.text.ends_with("-----END OPENSSH PRIVATE KEY-----"));
    let hit = "/home/deploy/.ssh/id_rsa:2:MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6ZQfYgu0Rr8hG0ZwFakeLine";
    assert!(redact(hit).text.ends_with(":2:[REDACTED:private_key_body]"));
    let cert_tail = "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\nRTESMBAGA1UEChMJQmFsdGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYD\n-----END CERTIFICATE-----";
    assert_eq!(redact(cert_tail).text, cert_tail);
    for sha in [
        "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    ] {
        assert_eq!(redact(sha).text, sha);
    }
}

#[test]
fn what_must_survive_survives() {
    for text in [
        "password: ${DB_PASSWORD}",
        "DB_PASSWORD=********",
        "secretName: db-creds",
        "token_type=Bearer",
        "max_token_age_seconds: 3600",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
        "ssh -p2222 deploy@host",
        "gcc -pthread -pipe -o app app.c",
        "docker run -p8080:80 nginx",
    ] {
        let r = redact(text);
        assert_eq!(r.text, text);
        assert!(r.hits.is_empty(), "{text}: {:?}", r.hits);
    }
}

#[test]
fn locate_names_the_line_and_rule() {
    let found = locate("ok\nDB_PASSWORD=hunter2hunter2\nkey AKIAIOSFODNN7EXAMPLE\n");
    let seen: Vec<(usize, &str)> = found.iter().map(|f| (f.line, f.rule)).collect();
    assert_eq!(seen, vec![(2, "secret_assignment"), (3, "aws_access_key")]);
}

/// `vault kv get` and `vault read` print a two-column table: a secret key at the line's start
/// and a random-looking value after blanks is redacted; other rows stay.
#[test]
fn a_secret_row_of_a_two_column_table_is_redacted() {
    for (input, secret) in [
        ("api_key           7c76fb008f86bebb2737f6a6f0fb23c6", "7c76fb008f86bebb2737f6a6f0fb23c6"),
        ("secret_key        FxFkM+R5Kjp1vRt/1fjORS+6ilI8ihN5KXSc7Tvo", "FxFkM+R5Kjp1vRt/1fjORS+6ilI8ihN5KXSc7Tvo"),
        (
            "Key        Value\n---        -----\napi_key    7c76fb008f86bebb2737f6a6f0fb23c6\n",
            "7c76fb008f86bebb2737f6a6f0fb23c6",
        ),
    ] {
        let once = redact(input).text.into_owned();
        assert!(!once.contains(secret), "{input:?} -> {once:?}");
        assert_eq!(redact(&once).text, once);
    }
    for input in [
        "cache_key   7c76fb008f86bebb2737f6a6f0fb23c6",
        "token_ttl   768h",
        "accessor    7c76fb008f86bebb2737f6a6f0fb23c6",
    ] {
        assert_eq!(redact(input).text, input);
    }
}

/// A commit id printed beside an AWS key id (a gitleaks report) is a SHA-1 in hex, not the key's
/// secret: the id goes, the commit stays.
#[test]
fn a_commit_beside_a_key_id_is_not_its_secret() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let input = format!(r#"{{"Secret":"AKIAGMXG9EDN581U33XT","File":"app.env","Commit":"{sha}"}}"#);
    let out = redact(&input).text.into_owned();
    assert!(out.contains(sha) && !out.contains("AKIAGMXG9EDN581U33XT"), "{out}");
}

/// A decoded reading's finding stays inside the JSON string it was read from: the record's other
/// fields and its opening survive.
#[test]
fn a_finding_in_a_decoded_string_stays_inside_that_string() {
    for (text, expected) in [
        (
            r#"{"msg":"config dump:\npassword = Kx4mTq8WvZr2Nb","level":"info","ts":"2026-12-06T07:00:00Z"}"#,
            r#"{"msg":"config dump:\npassword = [REDACTED:secret_assignment]","level":"info","ts":"2026-12-06T07:00:00Z"}"#,
        ),
        (
            r#"{"log":"DB_PASSWORD\u003dXk9vLm2Rt9Kp\"zz"}"#,
            r#"{"log":"DB_PASSWORD\u003d[REDACTED:secret_assignment]"}"#,
        ),
        (
            r#"{"log":"DB_PASSWORD\u003dHs4mWq9RtYv2Kc","stream":"stdout"}"#,
            r#"{"log":"DB_PASSWORD\u003d[REDACTED:secret_assignment]","stream":"stdout"}"#,
        ),
    ] {
        assert_eq!(redact(text).text, expected);
    }
}

/// A long line full of credential words (a minified JSON answer, one XML document, a query
/// string) is redacted exactly as its records are one by one: each search around a key stops at
/// a bound of its own, which keeps such a line linear in time, and must not change what is
/// found. Each line here is far longer than a value may be.
#[test]
fn a_long_line_is_redacted_as_its_records_are() {
    /// The separator between records, a record, and what of a record must not survive.
    type Shape = (&'static str, fn(usize) -> String, &'static str);
    let shapes: [Shape; 8] = [
        // A long value, read whole however far it runs from its key.
        (",", |i| format!(r#"{{"password":"{}{i:06}"}}"#, "Zq9-".repeat(500)), "Zq9-"),
        (",", |i| format!(r#"{{"id":{i},"password":"pw{i:06}Xy","token":"t{i:08}Q","api_key":"k{i}Zz9"}}"#), "pw0"),
        ("", |i| format!("<password>pw{i:06}Xy</password><token>t{i:08}Q</token>"), "pw0"),
        ("&", |i| format!("password=pw{i:06}Xy&token=t{i:08}Q"), "pw0"),
        (",", |i| format!(r#"{{"headers":{{"Authorization":"Bearer abc{i:08}DEF"}}}}"#), "abc0"),
        (",", |i| format!(r#"{{"name":"DB_PASSWORD","value":"pw{i:06}Xy"}}"#), "pw0"),
        (" ", |i| format!("--password pw{i:06}Xy"), "pw0"),
        (" ", |i| format!("/etc/app.env:12:password=pw{i:06}Xy"), "pw0"),
    ];
    for (sep, record, secret) in shapes {
        let count = 3 * super::dialects::MAX_VALUE / record(0).len();
        let records: Vec<String> = (0..count).map(record).collect();
        let line = format!("x {}", records.join(sep));
        assert!(line.len() > 2 * super::dialects::MAX_VALUE);
        let one_by_one =
            format!("x {}", records.iter().map(|r| redact(r).text.into_owned()).collect::<Vec<_>>().join(sep));
        // A record alone may be named by another rule (`password=` alone is no query parameter).
        let unnamed = |text: &str| {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find("[REDACTED:") {
                out.push_str(&rest[..at]);
                out.push_str("[REDACTED]");
                rest = &rest[at..];
                rest = &rest[rest.find(']').map_or(rest.len(), |i| i + 1)..];
            }
            out + rest
        };
        let (whole, apart) = (unnamed(&redact(&line).text), unnamed(&one_by_one));
        if let Some(at) = whole.bytes().zip(apart.bytes()).position(|(a, b)| a != b) {
            let near = |s: &str| s[at.saturating_sub(80)..(at + 80).min(s.len())].to_owned();
            panic!("{}: the long line reads {:?}, its records {:?}", records[0], near(&whole), near(&apart));
        }
        assert_eq!(whole.len(), apart.len(), "{}", records[0]);
        assert!(!whole.contains(secret), "{}: {secret} survived", records[0]);
    }
}

/// What the adversarial review of the line bounds found: blanks longer than a value between a key,
/// its separator and its value; a value at a line's start behind kilobytes of indentation or a
/// long search-tool prefix; values longer than the value bound, cut inside a multi-byte
/// character. None may panic, and each value is redacted.
#[test]
fn far_separators_deep_indentation_and_long_values_are_read_whole() {
    let blanks = " ".repeat(super::dialects::MAX_VALUE + 1026);
    let phrase = "Hunter2 xyz correct horse";
    let cases = [
        format!("password{blanks}=hunter2X"),
        format!("password={blanks}\"hunter2X\""),
        format!("{{\\\"password\\\":{blanks}\\\"hunter2X\\\"}}"),
        format!("{}password={phrase}", " ".repeat(9000)),
        format!("{} password: {phrase}", "#".repeat(9000)),
        format!("/etc/{}.env:12:{}DB_PASSWORD={phrase}", "d".repeat(4000), " ".repeat(4300)),
        format!("{}api_key    7c76fb2a9d1e4f3b8a6c5d2e1f0a9b8c", " ".repeat(9000)),
    ];
    // A line-long value and an unquoted credential longer than the value bound: the whole line.
    for case in
        [format!("password={}", "wurd ".repeat(20_000)), format!("Authorization: Bearer {} tail", "A".repeat(70_000))]
    {
        let out = redact(&case).text;
        assert!(
            !out.contains("wurd") && !out.contains("tail") && !out.contains("AAAA"),
            "{:?}",
            &out[..out.len().min(80)]
        );
    }
    for case in &cases {
        let out = redact(case).text;
        for secret in ["hunter2X", "xyz correct horse", "7c76fb2a9d1e"] {
            assert!(!out.contains(secret), "{secret} survived in {:?}", &out[out.len().saturating_sub(120)..]);
        }
    }
    // Cut at the value bound inside a character: no panic, the value is redacted up to there.
    for case in [format!("password=\"x{}\"", "é".repeat(40_000)), format!("password=x{}", "é".repeat(40_000))] {
        let out = redact(&case).text;
        assert!(out.starts_with("password="), "{:?}", &out[..40]);
        assert!(out.contains("[REDACTED:"));
    }
}
