//! How the dashboard shows facts: exactly what runs, who asked, when. Text someone else chose (an
//! assistant, a server, a person naming themselves) goes through `mttrly_core::display` before
//! maud escapes it for HTML: the first makes invisible or reordering characters visible, the
//! second keeps markup inert. Long lines wrap (`app.css`); nothing is cut.

use std::collections::HashMap;

use maud::{Markup, html};
use mttrly_core::Principal;
use mttrly_core::action::ActionContent;
use mttrly_core::display;
use mttrly_core::ids::UserId;
use serde_json::Value;

/// RFC 3339 for the machine (`datetime`) and `YYYY-MM-DD HH:MM:SS UTC` for people, from one
/// formatting (the servers page shows ten thousand of them).
fn instant(ms: i64) -> (String, String) {
    let machine = crate::db::timestamp(ms).to_string();
    let seconds = machine.split(['.', 'Z']).next().unwrap_or(&machine);
    let people = format!("{} UTC", seconds.replacen('T', " ", 1));
    (machine, people)
}

/// A time for people: UTC to the second, with the machine-readable instant beside it.
pub(super) fn time(ms: i64) -> Markup {
    let (machine, people) = instant(ms);
    html! { time datetime=(machine) { (people) } }
}

/// An expiry: the time, and a place `app.js` counts down in.
pub(super) fn expiry(ms: i64) -> Markup {
    let (machine, people) = instant(ms);
    html! {
        time datetime=(machine) data-countdown { (people) }
        " " span.left {}
    }
}

/// Names of an account's people by id, for showing who an assistant acted for.
pub(super) type Names = HashMap<UserId, String>;

/// Who asked: `alice`, or `assistant claude-code for alice`.
pub(super) fn principal(p: &Principal, names: &Names) -> String {
    match p {
        Principal::Human { name, .. } => display::text(name).into_owned(),
        Principal::Assistant { client_name, on_behalf_of, .. } => {
            let human = names.get(on_behalf_of).map_or_else(|| on_behalf_of.to_string(), Clone::clone);
            format!("assistant {} for {}", display::text(client_name), display::text(&human))
        }
    }
}

/// Exactly what runs: every field of the content, as stored (the hash covers these bytes). Values
/// are shown with `display::exact` (printable ASCII as itself, anything else as a visible escape),
/// one line each, except an inline script's body, shown line by line as it runs.
pub(super) fn content(content: &ActionContent) -> Markup {
    let mut fields = Vec::new();
    flatten("", &serde_json::to_value(content).unwrap_or(Value::Null), &mut fields);
    html! {
        dl.content {
            @for (key, value) in &fields {
                dt { (key) }
                dd { pre.exact { (value) } }
            }
        }
    }
}

/// `(dotted key, shown value)` for each leaf of `value`.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    display::exact(k).into_owned()
                } else {
                    format!("{prefix}.{}", display::exact(k))
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) if prefix == "script.content" => {
            out.push((prefix.to_owned(), s.split('\n').map(display::exact).collect::<Vec<_>>().join("\n")));
        }
        Value::String(s) => out.push((prefix.to_owned(), display::exact(s).into_owned())),
        other => out.push((prefix.to_owned(), display::exact(&other.to_string()).into_owned())),
    }
}

/// The assistant's own words, last and labelled: never a fact.
pub(super) fn reason(reason: Option<&str>) -> Markup {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    html! {
        @if let Some(reason) = reason {
            p.reason {
                span.label { (display::ASSISTANT_LABEL) ": " }
                q { (display::assistant_text(reason)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_the_same_for_people_and_machines() {
        let ms = 1_764_676_800_123; // 2025-12-02T12:00:00.123Z
        assert_eq!(
            time(ms).into_string(),
            "<time datetime=\"2025-12-02T12:00:00.123Z\">2025-12-02 12:00:00 UTC</time>"
        );
        assert_eq!(instant(ms - 123).1, "2025-12-02 12:00:00 UTC");
    }

    #[test]
    fn hostile_content_is_shown_visibly_and_inert() {
        let hostile = ActionContent::Command {
            command: "echo <script>alert(1)</script>\u{1b}[2J\rok \u{202e}gnp.exe".to_owned(),
            timeout_seconds: 30,
        };
        let html = content(&hostile).into_string();
        assert!(html.contains("echo &lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J\\rok \\u{202e}gnp.exe"), "{html}");
        assert!(!html.contains('\u{1b}') && !html.contains('\r') && !html.contains('\u{202e}'), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn an_inline_scripts_body_keeps_its_lines_and_nothing_else() {
        let script: ActionContent = serde_json::from_value(serde_json::json!({
            "type": "script",
            "script": { "type": "inline", "content": "echo one\necho \u{1b}two\r" },
            "args": ["a\nb"],
            "timeout_seconds": 30,
        }))
        .unwrap_or(ActionContent::Decommission);
        let html = content(&script).into_string();
        assert!(html.contains("echo one\necho \\x1btwo\\r"), "{html}");
        assert!(html.contains("[&quot;a\\nb&quot;]"), "{html}");
    }
}
