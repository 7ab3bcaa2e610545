//! Redaction of a JSON document, string by string, with the keys as context.
//!
//! Redacting a document's serialised text would see JSON's escapes instead of the text (`\n`
//! inside a key block, `\"` around a value) and could break the document. Walking it instead,
//! every string is redacted as the text it is, and a string under a secret-named key
//! (`"password"`, `"client_secret"`, `"Authorization"`) is replaced whole, whatever it looks like.
//! The document keeps its shape, so audit rows and stored results stay valid JSON.

use serde_json::Value;

use super::echoes::{self, Known};
use super::keys::{self, KeyClass};
use super::{RANK_KEY, RuleHits, analyse, apply, dialects};

fn count(hits: &mut Vec<RuleHits>, rule: &'static str, n: u32) {
    match hits.iter_mut().find(|h| h.rule == rule) {
        Some(h) => h.count += n,
        None => hits.push(RuleHits { rule, count: n }),
    }
}

/// Redacts every string in `value` in place; returns what each rule removed.
///
/// A distinctive secret found in one string is also redacted wherever another string of the
/// document repeats it (`echoes.rs`): `{"token": "…", "command": "curl -H 'X-Token: …'"}`.
pub fn redact_json(value: &mut Value) -> Vec<RuleHits> {
    let mut hits = Vec::new();
    let mut known = Vec::new();
    walk(value, None, &mut hits, &mut known);
    if !known.is_empty() {
        echo(value, &known, &mut hits);
    }
    hits
}

/// Redacts the known values wherever a string of `value` still holds one.
fn echo(value: &mut Value, known: &[Known], hits: &mut Vec<RuleHits>) {
    match value {
        Value::String(s) => {
            let mut found = Vec::new();
            if echoes::find(s, known, &mut found) {
                found.sort_unstable_by_key(|f| f.start);
                let r = apply(s, &found);
                if let std::borrow::Cow::Owned(clean) = r.text {
                    for h in r.hits {
                        count(hits, h.rule, h.count);
                    }
                    *s = clean;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| echo(v, known, hits)),
        Value::Object(map) => map.values_mut().for_each(|v| echo(v, known, hits)),
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// Remembers `value` (a string replaced whole, or a finding's text) if it is worth looking for.
fn remember(known: &mut Vec<Known>, value: &str, rule: &'static str) {
    if echoes::distinctive(value) && !known.iter().any(|k| k.value == value) {
        known.push(Known { value: value.to_owned(), rule, rank: RANK_KEY });
    }
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

fn walk(value: &mut Value, key: Option<&str>, hits: &mut Vec<RuleHits>, known: &mut Vec<Known>) {
    match value {
        Value::String(s) => {
            if let Some((replacement, rule)) = key.and_then(|k| whole(k, s)) {
                remember(known, s.trim(), rule);
                *s = replacement;
                count(hits, rule, 1);
                return;
            }
            let found = analyse(s);
            for k in echoes::values(s, &found) {
                remember(known, &k.value, k.rule);
            }
            let r = apply(s, &found);
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
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key, hits, known)),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, Some(k), hits, known);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}
