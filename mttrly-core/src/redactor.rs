//! The redactor: applied to everything that leaves a server (file contents, search hits, diffs,
//! command output, env files) before it is stored or returned.
//!
//! Rules are data: an id, what it catches, a pattern, and which part of a match is the secret
//! (the whole match, or one capture group so context like `password=` stays readable). One
//! `RegexSet` pass finds which rules can match at all, so ordinary text costs a single scan; only
//! rules that matched run their replacement. Every replacement says which rule fired:
//! `[REDACTED:aws_access_key]`.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Regex, RegexSet};
use serde::Serialize;

/// One redaction rule.
pub struct RedactionRule {
    /// Stable id, shown in the replacement and in counts.
    pub id: &'static str,
    /// What it catches.
    pub description: &'static str,
    /// The pattern.
    pub pattern: &'static str,
    /// The capture group holding the secret; 0 for the whole match.
    pub group: usize,
}

/// The built-in rules, most specific first (a later rule never sees text an earlier one replaced).
pub static RULES: &[RedactionRule] = &[
    RedactionRule {
        id: "pem_private_key",
        description: "PEM private keys (RSA, EC, OpenSSH, PKCS#8), across lines",
        pattern: r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
        group: 0,
    },
    RedactionRule {
        id: "aws_access_key",
        description: "AWS access key ids",
        pattern: r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b",
        group: 0,
    },
    RedactionRule {
        id: "github_token",
        description: "GitHub tokens (classic and fine-grained)",
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        group: 0,
    },
    RedactionRule {
        id: "gitlab_token",
        description: "GitLab personal access tokens",
        pattern: r"\bglpat-[A-Za-z0-9_\-]{20,}",
        group: 0,
    },
    RedactionRule {
        id: "slack_token",
        description: "Slack tokens",
        pattern: r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        group: 0,
    },
    RedactionRule {
        id: "slack_webhook",
        description: "Slack incoming-webhook URLs",
        pattern: r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+",
        group: 0,
    },
    RedactionRule {
        id: "telegram_bot_token",
        description: "Telegram bot tokens",
        pattern: r"\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}\b",
        group: 0,
    },
    RedactionRule {
        id: "stripe_key",
        description: "Stripe secret and restricted keys",
        pattern: r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        group: 0,
    },
    RedactionRule {
        id: "google_api_key",
        description: "Google API keys",
        pattern: r"\bAIza[0-9A-Za-z_\-]{35}",
        group: 0,
    },
    RedactionRule {
        id: "jwt",
        description: "JSON Web Tokens",
        pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        group: 0,
    },
    RedactionRule {
        id: "auth_header",
        description: "Bearer, Basic and token credentials in Authorization headers",
        pattern: r"(?i)\b(?:authorization|proxy-authorization)\s*[:=]\s*(?:bearer|basic|token|digest)\s+([A-Za-z0-9._~+/=\-]{6,})",
        group: 1,
    },
    RedactionRule {
        id: "url_password",
        description: "Passwords in URLs (scheme://user:password@host)",
        pattern: r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:([^\s@/]+)@",
        group: 1,
    },
    RedactionRule {
        id: "secret_assignment",
        description: "Values of secret-named keys in key=value, .env, YAML and JSON",
        pattern: r#"(?i)["']?[A-Za-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|credential|session[_\-]?key|auth[_\-]?key|dsn)[A-Za-z0-9_.\-]*["']?\s*[:=]\s*["']?([^\s"',;&}]{3,})"#,
        group: 1,
    },
];

struct Compiled {
    set: RegexSet,
    each: Vec<Regex>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // The patterns are constants checked by the tests; a failure here is a programming error.
        let set = RegexSet::new(RULES.iter().map(|r| r.pattern)).unwrap_or_else(|e| panic!("redaction rules: {e}"));
        let each = RULES.iter().map(|r| Regex::new(r.pattern).unwrap_or_else(|e| panic!("{}: {e}", r.id))).collect();
        Compiled { set, each }
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
    /// The rules that fired, in rule order.
    pub hits: Vec<RuleHits>,
}

/// Redacts `text`.
pub fn redact(text: &str) -> Redacted<'_> {
    let c = compiled();
    let matched = c.set.matches(text);
    if !matched.matched_any() {
        return Redacted { text: Cow::Borrowed(text), hits: Vec::new() };
    }
    let mut current: Cow<'_, str> = Cow::Borrowed(text);
    let mut hits = Vec::new();
    for index in &matched {
        let rule = &RULES[index];
        let re = &c.each[index];
        let mut count = 0u32;
        let mut out = String::with_capacity(current.len());
        let mut last = 0;
        for caps in re.captures_iter(&current) {
            let Some(secret) = caps.get(rule.group) else { continue };
            // Never re-redact an earlier rule's marker.
            if secret.as_str().starts_with("[REDACTED") {
                continue;
            }
            out.push_str(&current[last..secret.start()]);
            out.push_str("[REDACTED:");
            out.push_str(rule.id);
            out.push(']');
            last = secret.end();
            count += 1;
        }
        if count > 0 {
            out.push_str(&current[last..]);
            current = Cow::Owned(out);
            hits.push(RuleHits { rule: rule.id, count });
        }
    }
    Redacted { text: current, hits }
}

#[cfg(test)]
mod tests {
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
        check(
            "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "secret_assignment",
            "wJalrXUtnFEMI",
        );
        check("token: ghp_0123456789abcdefghijABCDEFGHIJ012345", "github_token", "ghp_0123456789abcdef");
        check(
            "git clone https://x:github_pat_11ABCDEFG0123456789abcdef_XYZ@github.com/o/r",
            "github_token",
            "github_pat_11ABC",
        );
        check("GITLAB=glpat-abcdefghij0123456789", "gitlab_token", "glpat-abcdefghij");
        check("slack: xoxb-123456789012-abcdefghijkl", "slack_token", "xoxb-123456789012");
        check("POST https://hooks.slack.com/services/T000/B000/XXXXXXXX", "slack_webhook", "T000/B000");
        check(
            "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_ ok",
            "telegram_bot_token",
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        );
        check("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key", "sk_live_4eC39Hq");
        check("key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "google_api_key", "AIzaSyD-9tSrke72");
        check(
            "cookie: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt",
            "dozjgNryP4J3jVmNHl0w5N",
        );
        check("Authorization: Bearer abc.def-ghi_jkl", "auth_header", "abc.def-ghi_jkl");
        check("curl -H 'authorization: basic dXNlcjpwYXNz'", "auth_header", "dXNlcjpwYXNz");
        check("DATABASE_URL=postgres://app:s3cr3t-p4ss@db:5432/app", "url_password", "s3cr3t-p4ss");
        check("redis://:hunter22@cache:6379", "url_password", "hunter22");
        check("DB_PASSWORD=hunter2hunter2", "secret_assignment", "hunter2hunter2");
        check("  password: correct-horse-battery", "secret_assignment", "correct-horse-battery");
        check(r#"{"client_secret": "s3cr3t-v4lue", "user": "bob"}"#, "secret_assignment", "s3cr3t-v4lue");
        check("api_key = 'k-1234567890'", "secret_assignment", "k-1234567890");
        let pem = "x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\ny";
        check(pem, "pem_private_key", "b3BlbnNzaC1rZXkt");
        let r = redact(pem);
        assert!(r.text.starts_with("x\n") && r.text.ends_with("\ny"));
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
        assert_eq!(r.hits.len(), 1, "the secret_assignment rule skips the existing marker: {:?}", r.hits);
    }

    #[test]
    fn every_rule_compiles_and_has_a_unique_id() {
        let ids: std::collections::BTreeSet<_> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
        assert_eq!(compiled().each.len(), RULES.len());
    }
}
