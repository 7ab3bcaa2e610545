//! Name/value pairs: the secret's name is the *value* of one field and the secret the value of
//! the field after it. This is how most machine-written configuration lists variables:
//!
//! | where | shape |
//! |---|---|
//! | Kubernetes (`kubectl get deploy -o yaml`, `-o json`) | `- name: DB_PASSWORD` then `value: …` |
//! | ECS task definitions, `docker inspect`-like JSON | `{"name": "DB_PASSWORD", "value": "…"}` |
//! | AWS SSM (`get-parameter`), CloudFormation parameters | `"Name": "/prod/db/password", …, "Value": "…"`, `ParameterKey`/`ParameterValue` |
//! | Hadoop, Hive, Spark (`*-site.xml`) | `<name>fs.s3a.secret.key</name>` then `<value>…</value>` |
//! | tags, key/value lists | `{"key": "API_TOKEN", "value": "…"}` |
//! | .NET application settings (`*.config`) | `<setting name="Password" …>` then `<value>…</value>` |
//!
//! The engine hands over the credential word inside the name (as for any key); here the name is
//! read whole, [`keys::classify`] judges it like a key, and the value field is looked for after
//! it: on the same line or on the next few, before the next name field (the next item).

use super::Finding;
use super::keys::{self, KeyClass, is_in};

/// Fields whose value names a variable, a parameter or a property (compared case-insensitively).
const NAME_FIELDS: &[&str] = &["name", "key", "parameterkey", "parameter_key", "parametername", "optionname"];

/// Fields whose value is the named variable's value.
const VALUE_FIELDS: &[&str] = &["value", "parametervalue", "parameter_value", "optionvalue", "secretstring"];

/// Lines after the name's searched for its value (SSM prints `Type` between the two).
const MAX_LINES: usize = 4;

/// The longest name read (an SSM parameter path is longer than a key).
const MAX_NAME: usize = 256;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b':')
}

/// The value of the pair whose name holds the credential word at `s..e`, if the name is a
/// secret's and a value field follows.
pub(super) fn value_after_name(text: &str, s: usize, e: usize) -> Option<Finding> {
    let b = text.as_bytes();
    let mut ns = s;
    while ns > 0 && s - ns < MAX_NAME && is_name_byte(b[ns - 1]) {
        ns -= 1;
    }
    let mut ne = e;
    while ne < b.len() && ne - e < MAX_NAME && is_name_byte(b[ne]) {
        ne += 1;
    }
    // A YAML name ends the line; a trailing `:` would make it a key of its own.
    let name = text[ns..ne].trim_end_matches([':', '.']);
    let ne = ns + name.len();
    let field = name_field(text, ns)?;
    let class = keys::classify(name);
    if class == KeyClass::Plain {
        return None;
    }
    let (vs, ve) = value_field(text, ne, field)?;
    let value = &text[vs..ve];
    // A pair is read further from its name than a key's value is, so a name that is not a
    // password's asks its value to look like a credential (`SESSION` = `cookie`, a toleration's
    // `auth-pool`, a tag's `payments` and a property's `hive.server2.metastore` are settings).
    let credential_like =
        keys::looks_random(value) || (keys::looks_like_password(value) && !value.contains(['.', '/']));
    let strong = class == KeyClass::Secret && keys::is_strong(name);
    if vs >= ve || keys::is_placeholder(value) || (!strong && !credential_like) {
        return None;
    }
    Some(Finding { ctx: ns, start: vs, end: ve, rule: "secret_assignment", rank: super::RANK_KEY })
}

/// How the name field was written, which says how its value field will be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `name: X`, `"name": "X"`, `name=X`.
    Keyed,
    /// `<name>X</name>`.
    Xml,
}

/// Whether the name starting at `ns` is the value of a name field; which kind.
fn name_field(text: &str, ns: usize) -> Option<Field> {
    let ls = super::lines::start(text, ns);
    let before = text[ls..ns].trim_end_matches(['"', '\'']);
    if let Some(open) = before.strip_suffix('>') {
        // A tag's name is short: only that much before the `>` is searched for its `<`.
        let tail = &open[open.ceil_char_boundary(open.len().saturating_sub(MAX_NAME))..];
        let tag = tail.rsplit('<').next()?;
        return is_in(tag, NAME_FIELDS).then_some(Field::Xml);
    }
    let before = before.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix([':', '='])?.trim_end_matches([' ', '\t']).trim_end_matches(['"', '\'']);
    let word = &before[before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len()..];
    is_in(word, NAME_FIELDS).then_some(Field::Keyed)
}

/// The value of the first value field after `from`, within [`MAX_LINES`] lines and before the
/// next name field.
fn value_field(text: &str, from: usize, field: Field) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut i = from;
    let mut lines = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                lines += 1;
                if lines > MAX_LINES {
                    return None;
                }
            }
            // The end of a JSON object: the pair is over.
            b'}' | b']' if field == Field::Keyed => return None,
            first
                if first.is_ascii_alphabetic() && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'_') =>
            {
                let len = b[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                let word = &text[i..i + len];
                let after = i + len;
                let element = i > 0 && b[i - 1] == b'<' && b.get(after) == Some(&b'>');
                let is_field = match field {
                    Field::Xml => element,
                    // .NET's `<setting name="Password" serializeAs="String"><value>…</value>`: a
                    // name attribute, then a value element.
                    Field::Keyed => separator(b, after).is_some() || (element && is_in(word, VALUE_FIELDS)),
                };
                if is_field {
                    if is_in(word, NAME_FIELDS) {
                        return None;
                    }
                    if is_in(word, VALUE_FIELDS) {
                        if element {
                            return read(text, after + 1, Field::Xml);
                        }
                        let at = match field {
                            Field::Xml => after + 1,
                            Field::Keyed => separator(b, after)?,
                        };
                        return read(text, at, field);
                    }
                }
                i = after;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// After a field's word at `at`: a closing quote, blanks, then `:` or `=` (not `::`, `==`, `=>`
/// is fine); the offset after the separator and its blanks.
fn separator(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    if matches!(b.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match b.get(i) {
        Some(b':') if b.get(i + 1) != Some(&b':') => {}
        Some(b'=') if b.get(i + 1) != Some(&b'=') => {}
        _ => return None,
    }
    i += 1;
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    Some(i)
}

/// The value at `v`: a quoted string, XML text up to `<`, or an unquoted scalar up to the end of
/// the line (or a `,` / `}` in JSON).
fn read(text: &str, v: usize, field: Field) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let le = super::lines::end(text, v);
    let mut le = le.min(v + super::dialects::MAX_VALUE);
    while !text.is_char_boundary(le) {
        le -= 1;
    }
    let (vs, ve) = match (field, b.get(v)) {
        (Field::Xml, _) => (v, text[v..le].find('<').map_or(le, |i| v + i)),
        (Field::Keyed, Some(&q @ (b'"' | b'\''))) => {
            let mut i = v + 1;
            while i < le && b[i] != q {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            (v + 1, i.min(le))
        }
        (Field::Keyed, _) => (v, text[v..le].find([',', '}']).map_or(le, |i| v + i)),
    };
    let value = text[vs..ve].trim_end_matches('\r').trim_end();
    // A nested structure (`value:` then a block, `valueFrom:`'s reference) is not a value.
    (!value.is_empty() && !matches!(value.as_bytes()[0], b'{' | b'[' | b'|' | b'>')).then_some((vs, vs + value.len()))
}

#[cfg(test)]
mod tests {
    use crate::redactor::redact;

    #[test]
    fn the_value_of_a_secret_s_name_is_redacted() {
        for (input, secret) in [
            ("        - name: DB_PASSWORD\n          value: FakePa1rValue9\n", "FakePa1rValue9"),
            ("- name: STRIPE_API_KEY\n  value: \"hY4vOoNZYW2mPa1rStr1peVal9\"", "hY4vOoNZYW2mPa1rStr1peVal9"),
            (r#"{"name":"DB_PASSWORD","value":"FakePa1rValue9"}"#, "FakePa1rValue9"),
            ("{\n  \"name\": \"DB_PASSWORD\",\n  \"value\": \"FakePa1rValue9\"\n}", "FakePa1rValue9"),
            (
                r#"{"Parameter":{"Name":"/prod/db/password","Type":"SecureString","Value":"FakePa1rValue9","Version":3}}"#,
                "FakePa1rValue9",
            ),
            (
                "    \"Name\": \"/prod/db/password\",\n    \"Type\": \"SecureString\",\n    \"Value\": \"FakePa1rValue9\",",
                "FakePa1rValue9",
            ),
            (
                "<property>\n  <name>fs.s3a.secret.key</name>\n  <value>FxFkM+R5Kjp1vRt/1fjORS+6ilI8ihN5KXSc7Tvo</value>\n</property>",
                "FxFkM+R5Kjp1vRt/1fjORS+6ilI8ihN5KXSc7Tvo",
            ),
            ("<name>javax.jdo.option.ConnectionPassword</name><value>FakePa1rValue9</value>", "FakePa1rValue9"),
            (r#"{"key":"API_TOKEN","value":"FakePa1rValue9"}"#, "FakePa1rValue9"),
            (r#"[{"ParameterKey":"DbPassword","ParameterValue":"FakePa1rValue9"}]"#, "FakePa1rValue9"),
        ] {
            let r = redact(input);
            assert!(!r.text.contains(secret), "{input:?} -> {:?}", r.text);
            let again = redact(&r.text);
            assert_eq!(again.text, r.text, "not idempotent: {input:?}");
        }
    }

    #[test]
    fn other_pairs_stay() {
        for input in [
            "- name: DB_HOST\n  value: db.internal\n",
            "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: db\n      key: password\n",
            r#"{"name":"LOG_LEVEL","value":"debug"}"#,
            "- name: DB_PASSWORD_FILE\n  value: /run/secrets/db\n",
            "- name: API_KEY\n  value: ${API_KEY}\n",
            "<name>dfs.replication</name><value>3</value>",
            "- name: SESSION_TIMEOUT\n  value: \"30\"\n",
            "{\"name\":\"DB_PASSWORD\"}\n{\"name\":\"X\",\"value\":\"y\"}",
        ] {
            assert_eq!(redact(input).text, input, "{input:?}");
        }
    }
}
