//! A credential printed on the line after the one that announces it.
//!
//! Installers and reset tools print the label and the secret on separate lines: Jenkins ("Please
//! use the following password to proceed to installation:", a blank line, the password),
//! Elasticsearch 8's first start ("Password for the elastic user (reset with …):", the password
//! indented below), `elasticsearch-reset-password` ("Password for the [elastic] user successfully
//! reset." then "New value: …"), a YAML key whose plain scalar sits on the next line. Read line by
//! line, the secret is a lone word with no key. The announcing line names a credential and ends
//! with `:` (or, for a reset, the next line is `New value: …`); the line after it (a blank line
//! may stand between) is one word that reads like a credential, not a placeholder, a path or a
//! sentence.

use super::blocks::{is_frame, unframe};
use super::lines;
use super::{Finding, RANK_KEY, keys};

/// The longest announcing line read (a banner line with a hint in parentheses fits).
const MAX_ANNOUNCEMENT: usize = 240;

/// Words that make a line ending in `:` an announcement of what follows, not a prompt waiting
/// for input (`[sudo] password for deploy:`, `bob@host's password:`, `Enter password:` are
/// followed by the command's own output).
const ANNOUNCING: &[&str] =
    &["following", "generated", "initial", "temporary", "reset", "use ", "below", "random", "is:", "was:"];

/// Adds the secret on the line after each announcement among the credential words at `roots`.
pub(super) fn next_line(text: &str, roots: &[(usize, usize)], found: &mut Vec<Finding>) {
    // The end of the last line looked at: later words on it cost one comparison.
    let mut last_end = 0;
    for &(rs, _) in roots {
        if rs < last_end {
            continue;
        }
        // Only a password is announced this way (a key's identifier, a token's fingerprint are
        // printed under their labels as well, and are public); the other credential words cost
        // this one comparison.
        let word = &text.as_bytes()[rs..];
        if !["password", "passwd", "passphrase"]
            .iter()
            .any(|w| word.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w.as_bytes())))
        {
            continue;
        }
        let le = lines::end(text, rs);
        last_end = le;
        let ls = lines::start(text, rs);
        if le - ls > MAX_ANNOUNCEMENT || le >= text.len() {
            continue;
        }
        // The same lines printed to a log, a container's record or a diff.
        let (a, z) = unframe(&text[ls..le], |_| true);
        let line = &text[ls + a..ls + z];
        let l = line.to_ascii_lowercase();
        let reset = l.contains("reset") || l.contains("changed");
        let colon = line.ends_with(':');
        if !colon && !reset {
            continue;
        }
        // A YAML key of its own (`password:`, `db_password:`) whose plain scalar is indented
        // below it; `password_policy:` or `password_validators:` name settings, not a password.
        let key = l.trim_end_matches(':').trim();
        let yaml_key = colon
            && !key.contains(char::is_whitespace)
            && ["password", "passwd", "passphrase"].iter().any(|w| key.ends_with(w));
        // `Enter initial password:`, `Please enter your password below:` ask for one.
        let announced = colon && !l.contains("enter ") && ANNOUNCING.iter().any(|w| l.contains(w));
        let Some((vs, ve, labelled, indent)) = following_word(text, le + 1) else { continue };
        let key_indent = text[ls..le].len() - text[ls..le].trim_start().len();
        let below_key = yaml_key && indent > key_indent;
        // `New value:` follows a reset; a lone word follows an announcement or sits under its key.
        if !(if labelled { reset || announced } else { announced || below_key }) {
            continue;
        }
        found.push(Finding { ctx: ls, start: vs, end: ve, rule: "announced_password", rank: RANK_KEY });
    }
}

/// The lone word on the first non-blank line from `at` (one blank line may come first), with
/// whether it followed a `New value:` label and the line's indentation; only a word that reads
/// like a credential (not a YAML list item, a Markdown fence, a placeholder or a path).
fn following_word(text: &str, mut at: usize) -> Option<(usize, usize, bool, usize)> {
    for _ in 0..2 {
        if at >= text.len() {
            return None;
        }
        let le = lines::end(text, at);
        let (a, z) = unframe(&text[at..le], |_| true);
        let content = &text[at + a..at + z];
        // A blank line, or one that is only its log frame.
        if content.is_empty() || is_frame(&text[at..le]) {
            at = le + 1;
            continue;
        }
        let lead = a;
        let raw = &text[at..le];
        let indent = raw.len() - raw.trim_start().len();
        if raw.trim_start().starts_with("- ") || content.starts_with('`') {
            return None;
        }
        let (offset, word, labelled) = match content.strip_prefix("New value:") {
            Some(rest) => (content.len() - rest.trim_start().len(), rest.trim(), true),
            None => (0, content, false),
        };
        let credential = !word.is_empty()
            && word.len() <= 256
            && !word.contains(char::is_whitespace)
            && !word.contains(':')
            && !word.starts_with("[REDACTED:")
            && !keys::is_placeholder(word)
            && !keys::is_path(word)
            && !word.contains("://")
            && (keys::looks_like_password(word) || keys::looks_random(word));
        let start = at + lead + offset;
        return credential.then_some((start, start + word.len(), labelled, indent));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::redactor::redact;

    #[test]
    fn a_secret_on_the_line_after_its_announcement_is_redacted() {
        for (text, secret) in [
            (
                "*************************************************************\n\nJenkins initial setup is required. An admin user has been created and a password generated.\nPlease use the following password to proceed to installation:\n\n4f1e2d3c4b5a69788796a5b4c3d2e1f0\n\nThis may also be found at: /var/jenkins_home/secrets/initialAdminPassword",
                "4f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ),
            (
                "ℹ️  Password for the elastic user (reset with `bin/elasticsearch-reset-password -u elastic`):\n  hX-q7vLm2R_t9Kp*zZ\n",
                "hX-q7vLm2R_t9Kp*zZ",
            ),
            ("Password for the [elastic] user successfully reset.\nNew value: Xq7vLm2Rt9Kp", "Xq7vLm2Rt9Kp"),
            ("db:\n  password:\n    Wq3vBm8Rt2Kc\n", "Wq3vBm8Rt2Kc"),
        ] {
            let r = redact(text);
            assert!(!r.text.contains(secret), "{text:?} -> {:?}", r.text);
        }
    }

    #[test]
    fn what_follows_a_prompt_or_a_section_stays() {
        for text in [
            "Password:\nsu: Authentication failure",
            "Enter password:\nLogin successful.",
            "passwords:\n  admin: ${ADMIN_PASSWORD}\n",
            "password:\n  ${DB_PASSWORD}\n",
            "auth:\n  enabled\n",
            "token:\n  /var/run/secrets/kubernetes.io/serviceaccount/token\n",
            "Password reset link sent.\nCheck your inbox",
            "Password changed for user deploy:\n\nPAM: password updated successfully",
            "[sudo] password for deploy:\n3f4e5a6b7c8d",
            "Please enter your password below:\nLogin_Succeeded",
            "Enter the temporary password:\nAuthentication_Failed",
            "bob@10.0.0.5's password:\n9f86d081884c7d659a2f",
            "Enter password:\n8.0.35-0ubuntu0.22.04.1",
            "Password:\nnginx-1.24.0",
            "password_validators:\n  - UserAttributeSimilarityValidator\n  - MinimumLengthValidator",
            "password_policy:\n  MinLength12",
            "If your private key is protected by a passphrase, you might need to run:\n\n```bash",
        ] {
            assert_eq!(redact(text).text, text);
        }
    }
}
