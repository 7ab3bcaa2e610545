//! The key-based pass for managed env files: every value whose key names a secret is replaced
//! whole (quoted or not, however short), on top of the generic rules. It lives here, not in the
//! agent, because two ends must mask an env file identically: the agent when it reads the file,
//! and central when it masks a pending write's new content for the approver's diff (an unchanged
//! `DB_PASS=x` line must read the same on both sides, and `x` must never be shown).

/// Keys whose values are secrets in an env file, matched anywhere in the key.
pub const SECRET_KEY_PARTS: &[&str] = &[
    "PASS",
    "SECRET",
    "TOKEN",
    "KEY",
    "AUTH",
    "CREDENTIAL",
    "PRIVATE",
    "SALT",
    "SIGN",
    "CERT",
    "COOKIE",
    "SESSION",
    "DSN",
    "CONNECTION",
    "DATABASE_URL",
    "WEBHOOK",
];

/// Replaces the value of every `KEY=value` line whose key names a secret with
/// `[REDACTED:env_secret]`; returns the text (lines joined by `\n`) and how many values were
/// replaced. Diff lines (`+DB_PASS=x`) keep their marker and lose the value. A value the generic
/// rules already replaced, a comment and an empty value are left as they are.
pub fn env_values(text: &str) -> (String, u32) {
    let mut hits = 0u32;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
            match body.split_once('=') {
                Some((key, value))
                    if !key.trim().is_empty()
                        && !key.trim_start().starts_with('#')
                        && !value.trim().is_empty()
                        && !value.contains("[REDACTED")
                        && SECRET_KEY_PARTS.iter().any(|p| key.to_ascii_uppercase().contains(p)) =>
                {
                    hits += 1;
                    format!("{}=[REDACTED:env_secret]", &line[..line.len() - value.len() - 1])
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    (out.join("\n"), hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_redacted_by_key_whatever_their_shape() {
        let text =
            "PORT=8080\nDB_PASS=x\nSIGNING_KEY=\"a b c\"\nexport ENCRYPTION_KEY=zz\n# API_KEY=commented\nNAME=web";
        let (out, hits) = env_values(text);
        assert_eq!(hits, 3, "{out}");
        assert!(out.contains("PORT=8080") && out.contains("NAME=web"), "{out}");
        for leaked in ["=x", "a b c", "zz"] {
            assert!(!out.contains(leaked), "{leaked} leaked: {out}");
        }
        assert!(out.contains("export ENCRYPTION_KEY=[REDACTED:env_secret]"), "{out}");
        // Diff lines keep their marker and lose the value.
        let (diff, _) = env_values("-DB_PASS=old\n+DB_PASS=new\n PORT=1");
        assert!(!diff.contains("old") && !diff.contains("new") && diff.contains(" PORT=1"), "{diff}");
    }
}
