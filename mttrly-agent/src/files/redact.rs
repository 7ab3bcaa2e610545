//! Redaction of what the file capabilities return: the generic rules of
//! [`mttrly_core::redactor`] over whole texts, and the key-based pass for managed env files.

use std::collections::BTreeMap;

use mttrly_core::redactor::{env_values, redact};
use mttrly_core::tools::files::RedactionCount;

/// Redacts text, counting what each rule removed (the counts go back with the answer).
#[derive(Default)]
pub(super) struct Redactions(BTreeMap<&'static str, u32>);

impl Redactions {
    /// Redacts `text` as one piece: a multi-line secret (a private key's body under its BEGIN
    /// line) is seen with its context, and nothing is replaced across a newline.
    pub(super) fn text(&mut self, text: &str) -> String {
        let r = redact(text);
        for hit in &r.hits {
            *self.0.entry(hit.rule).or_default() += hit.count;
        }
        r.text.into_owned()
    }

    /// What each rule removed, by rule name.
    pub(super) fn counts(&self) -> Vec<RedactionCount> {
        self.0.iter().map(|(rule, count)| RedactionCount { rule: (*rule).to_owned(), count: *count }).collect()
    }

    /// A managed env file: every value whose key names a secret is replaced whole (quoted or
    /// not, however short), on top of the generic rules ([`mttrly_core::redactor::env_values`],
    /// shared with central so a pending write's new content is masked the same way). A value the
    /// generic rules already replaced is left as it is.
    pub(super) fn env_values(&mut self, text: &str) -> String {
        let (out, hits) = env_values(text);
        if hits > 0 {
            *self.0.entry("env_secret").or_default() += hits;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_redacted_by_key_whatever_their_shape() {
        let mut r = Redactions::default();
        let text =
            "PORT=8080\nDB_PASS=x\nSIGNING_KEY=\"a b c\"\nexport ENCRYPTION_KEY=zz\n# API_KEY=commented\nNAME=web";
        let out = r.env_values(text);
        assert!(out.contains("PORT=8080") && out.contains("NAME=web"), "{out}");
        for leaked in ["=x", "a b c", "zz"] {
            assert!(!out.contains(leaked), "{leaked} leaked: {out}");
        }
        assert!(out.contains("export ENCRYPTION_KEY=[REDACTED:env_secret]"), "{out}");
        // Diff lines keep their marker and lose the value.
        let diff = r.env_values("-DB_PASS=old\n+DB_PASS=new\n PORT=1");
        assert!(!diff.contains("old") && !diff.contains("new") && diff.contains(" PORT=1"), "{diff}");
    }
}
