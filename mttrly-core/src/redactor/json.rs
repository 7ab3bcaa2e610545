//! Redaction of a JSON document, string by string, with the keys as context.
//!
//! Redacting a document's serialised text would see JSON's escapes instead of the text (`\n`
//! inside a key block, `\"` around a value) and could break the document. Walking it instead,
//! every string is redacted as the text it is, and a string under a secret-named key
//! (`"password"`, `"client_secret"`, `"Authorization"`) is replaced whole, whatever it looks like.
//! The document keeps its shape, so audit rows and stored results stay valid JSON.

use serde_json::Value;

use super::keys::{self, KeyClass};
use super::{RuleHits, dialects, redact};

fn count(hits: &mut Vec<RuleHits>, rule: &'static str, n: u32) {
    match hits.iter_mut().find(|h| h.rule == rule) {
        Some(h) => h.count += n,
        None => hits.push(RuleHits { rule, count: n }),
    }
}

/// Redacts every string in `value` in place; returns what each rule removed.
pub fn redact_json(value: &mut Value) -> Vec<RuleHits> {
    let mut hits = Vec::new();
    walk(value, None, &mut hits);
    hits
}

/// The replacement for a whole value under a secret key, if it is one.
fn whole(key: &str, text: &str) -> Option<(String, &'static str)> {
    let class = keys::classify(key);
    if class == KeyClass::Plain
        || keys::is_placeholder(text)
        || (keys::ends_in_key(key) && keys::is_path(text))
        || (class == KeyClass::Weak && !keys::looks_random(text))
    {
        return None;
    }
    if keys::is_authorization(key) {
        let kept = dialects::starts_with_scheme(text).map_or("", |n| &text[..n]);
        return Some((format!("{kept}[REDACTED:auth_header]"), "auth_header"));
    }
    Some(("[REDACTED:secret_assignment]".to_owned(), "secret_assignment"))
}

fn walk(value: &mut Value, key: Option<&str>, hits: &mut Vec<RuleHits>) {
    match value {
        Value::String(s) => {
            if let Some((replacement, rule)) = key.and_then(|k| whole(k, s)) {
                *s = replacement;
                count(hits, rule, 1);
                return;
            }
            let r = redact(s);
            if let std::borrow::Cow::Owned(clean) = r.text {
                for h in r.hits {
                    count(hits, h.rule, h.count);
                }
                *s = clean;
            }
        }
        Value::Number(n) => {
            // `"pin": 123456`, `"password": 12345678`: a number under a secret key is a secret.
            if let Some(k) = key
                && keys::classify(k) == KeyClass::Secret
                && n.to_string().len() > 2
            {
                *value = Value::String("[REDACTED:secret_assignment]".to_owned());
                count(hits, "secret_assignment", 1);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key, hits)),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, Some(k), hits);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}
