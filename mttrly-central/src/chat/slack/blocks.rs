//! Block Kit layouts: the approval message, and the two modals a tap may open (the TOTP code,
//! the reject reason).
//!
//! Every text is a `plain_text` object with `emoji: false`: nothing an assistant or a server
//! wrote can become a link, a mention, bold text or an emoji, and `:shortcode:` stays literal.
//! Slack refuses a message whose text objects exceed their limits (3,000 characters a section,
//! 150 a header), so each is cut to fit; "exactly what runs" is already at most
//! [`super::super::message::MAX_EXACT_CHARS`] and has its own block, whole.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chat::message::Card;
use crate::db::chat::Posted;

/// The longest text of a section block.
pub const MAX_SECTION_CHARS: usize = 3_000;
/// The longest text of a header block.
pub const MAX_HEADER_CHARS: usize = 150;
/// The actions block's id.
pub const ACTIONS_BLOCK: &str = "mttrly_decision";
/// The Approve button's `action_id`.
pub const APPROVE: &str = "mttrly_approve";
/// The Reject button's `action_id`.
pub const REJECT: &str = "mttrly_reject";
/// The TOTP modal's `callback_id`.
pub const CODE_MODAL: &str = "mttrly_approve_code";
/// The reason modal's `callback_id`.
pub const REASON_MODAL: &str = "mttrly_reject_reason";
/// The code input's block and action id.
pub const CODE_INPUT: &str = "code";
/// The reason input's block and action id.
pub const REASON_INPUT: &str = "reason";
/// The longest reject reason taken from the modal.
pub const MAX_REASON_CHARS: usize = 1_000;

/// `text` cut to `max` characters, with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` for a field Slack reads as markup (a message's `text`, an ephemeral message): `&`, `<`
/// and `>` escaped as Slack documents, so nothing in it becomes a mention (`<!channel>`), a link
/// or a user reference. Slack shows the characters as typed.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A `plain_text` object (emoji shortcodes left as typed).
fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": false })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": plain(&cut(text, MAX_SECTION_CHARS)) })
}

/// The `text` (notification and fallback) and `blocks` of a decision message (an action's
/// approval, a bypass request).
pub fn message(message: &dyn Card) -> (String, Value) {
    let headline = message.headline();
    let mut blocks = vec![json!({ "type": "header", "text": plain(&cut(&headline, MAX_HEADER_CHARS)) })];
    for (label, value) in message.facts() {
        let text = if value.contains('\n') || label == "Exactly" {
            format!("{label}:\n{value}")
        } else {
            format!("{label}: {value}")
        };
        blocks.push(section(&text));
    }
    blocks.push(section(&message.status_line()));
    if message.decidable() {
        let verbs = message.verbs();
        let mut buttons = Vec::new();
        if message.approvable() {
            buttons.push(json!({
                "type": "button", "action_id": APPROVE, "style": "primary",
                "text": plain(verbs.yes), "value": message.subject_id(),
            }));
        }
        buttons.push(json!({
            "type": "button", "action_id": REJECT, "style": "danger",
            "text": plain(verbs.no), "value": message.subject_id(),
        }));
        blocks.push(json!({ "type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons }));
    }
    let text = escape(&cut(&format!("{headline}\n{}", message.status_line()), MAX_SECTION_CHARS));
    (text, Value::Array(blocks))
}

/// The `text` (notification and fallback) and `blocks` of a war-room notice: plain text only.
pub fn notice(notice: &crate::chat::notice::Notice) -> (String, Value) {
    let mut blocks = vec![
        json!({ "type": "header", "text": plain(&cut(&notice.headline, MAX_HEADER_CHARS)) }),
        section(&notice.title),
        section(&notice.from),
    ];
    if let Some(labels) = &notice.labels {
        blocks.push(section(labels));
    }
    if !notice.body.is_empty() {
        blocks.push(section(&notice.body));
    }
    blocks.push(section(&notice.read_more));
    let text = escape(&cut(&format!("{}\n{}", notice.headline, notice.title), MAX_SECTION_CHARS));
    (text, Value::Array(blocks))
}

/// What a modal carries back on submission: the message it was opened from and the choice.
/// It comes back through the person's client, so it is never trusted: the submission is a new
/// tap, checked from the start against the message and the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The message's channel.
    pub channel_id: String,
    /// The message's `ts`.
    pub message_ts: String,
}

impl Metadata {
    /// For the message at `posted`.
    pub fn of(posted: &Posted) -> Self {
        Self { channel_id: posted.chat_id.clone(), message_ts: posted.message_id.clone() }
    }

    /// The message it names.
    pub fn posted(&self) -> Posted {
        Posted { chat_id: self.channel_id.clone(), message_id: self.message_ts.clone() }
    }
}

fn modal(callback_id: &str, title: &str, submit: &str, metadata: &Metadata, blocks: &[Value]) -> Value {
    json!({
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title),
        "submit": plain(submit),
        "close": plain("Cancel"),
        "private_metadata": serde_json::to_string(metadata).unwrap_or_default(),
        "blocks": blocks,
    })
}

/// The modal asking for a TOTP (or recovery) code before saying yes (`verb`: `Approve`,
/// `Grant`) to `subject_id`.
pub fn code_modal(metadata: &Metadata, headline: &str, subject_id: &str, verb: &str) -> Value {
    modal(
        CODE_MODAL,
        &format!("{verb} with a code"),
        verb,
        metadata,
        &[
            section(&format!(
                "{headline}\n\n{verb} {subject_id}: this needs a fresh code from your authenticator app (or a recovery code)."
            )),
            json!({
                "type": "input", "block_id": CODE_INPUT, "label": plain("TOTP code"),
                "element": { "type": "plain_text_input", "action_id": CODE_INPUT, "max_length": 64 },
            }),
        ],
    )
}

/// The modal asking why, before saying no (`verb`: `Reject`, `Deny`; the reason is optional).
pub fn reason_modal(metadata: &Metadata, headline: &str, verb: &str) -> Value {
    modal(
        REASON_MODAL,
        verb,
        verb,
        metadata,
        &[
            section(headline),
            json!({
                "type": "input", "block_id": REASON_INPUT, "optional": true, "label": plain("Reason (optional)"),
                "element": {
                    "type": "plain_text_input", "action_id": REASON_INPUT, "multiline": true,
                    "max_length": MAX_REASON_CHARS,
                },
            }),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ApprovalMessage, Status};

    fn approval(exactly: &str, status: Status) -> ApprovalMessage {
        let mut m = crate::chat::message::sample(exactly, status);
        m.prompt.description = "d".repeat(400);
        m.prompt.assistant_reason_unverified = Some(format!("<@U123> *bold* :skull: {}", "r".repeat(5000)));
        m
    }

    fn texts(blocks: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for block in blocks.as_array().unwrap() {
            if let Some(t) = block.get("text") {
                out.push((block["type"].as_str().unwrap().to_owned(), t["text"].as_str().unwrap().to_owned()));
                assert_eq!(t["type"], "plain_text");
                assert_eq!(t["emoji"], false);
            }
        }
        out
    }

    #[test]
    fn every_text_fits_slacks_limits_and_exactly_has_its_own_whole_block() {
        let exactly = format!("systemctl restart nginx {}", "x".repeat(crate::chat::message::MAX_EXACT_CHARS - 30));
        let pending = Status::Pending { approved_by: Vec::new(), remaining: 1 };
        let (text, blocks) = message(&approval(&exactly, pending));
        for (kind, t) in texts(&blocks) {
            let max = if kind == "header" { MAX_HEADER_CHARS } else { MAX_SECTION_CHARS };
            assert!(t.chars().count() <= max, "{kind}: {}", t.chars().count());
        }
        assert!(text.starts_with("Approval needed:") && text.chars().count() <= MAX_SECTION_CHARS);
        let shown = texts(&blocks);
        assert!(shown.iter().any(|(_, t)| t == &format!("Exactly:\n{exactly}")), "whole, alone");
        // The assistant's words are shown as typed, never as a mention or markup, and last.
        let last_fact = shown.iter().rposition(|(_, t)| t.contains("<@U123> *bold* :skull:")).unwrap();
        let sha = shown.iter().position(|(_, t)| t.starts_with("Content SHA-256")).unwrap();
        assert!(last_fact > sha);
        let actions = blocks.as_array().unwrap().last().unwrap();
        assert_eq!(actions["type"], "actions");
        let styles: Vec<_> = actions["elements"].as_array().unwrap().iter().map(|b| b["style"].clone()).collect();
        assert_eq!(styles, vec![json!("primary"), json!("danger")]);
    }

    #[test]
    fn only_reject_when_too_long_to_show_and_no_buttons_once_decided() {
        let pending = Status::Pending { approved_by: Vec::new(), remaining: 1 };
        let long = "y".repeat(crate::chat::message::MAX_EXACT_CHARS + 1);
        let (_, blocks) = message(&approval(&long, pending));
        let actions = blocks.as_array().unwrap().last().unwrap();
        let ids: Vec<_> = actions["elements"].as_array().unwrap().iter().map(|b| b["action_id"].clone()).collect();
        assert_eq!(ids, vec![json!(REJECT)]);
        let (text, blocks) = message(&approval("true", Status::Succeeded { exit_code: Some(0) }));
        assert!(blocks.as_array().unwrap().iter().all(|b| b["type"] != "actions"));
        assert!(text.contains("Succeeded"), "{text}");
    }

    #[test]
    fn the_fallback_text_mentions_and_links_nothing() {
        let mut m = approval("true", Status::Pending { approved_by: Vec::new(), remaining: 1 });
        m.prompt.description = "run <!channel> <https://evil.example|docs> & more".into();
        let (text, _) = message(&m);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&lt;!channel&gt; &lt;https://evil.example|docs&gt; &amp; more"), "{text}");
    }

    #[test]
    fn modals_carry_the_message_and_fit() {
        let meta = Metadata { channel_id: "D1".into(), message_ts: "1.2".into() };
        let view = code_modal(&meta, "Approval needed", "act_1", "Approve");
        assert!(view["title"]["text"].as_str().unwrap().chars().count() <= 24);
        let view = code_modal(&meta, "Bypass requested", "byp_1", "Grant");
        assert_eq!(
            (view["title"]["text"].as_str(), view["submit"]["text"].as_str()),
            (Some("Grant with a code"), Some("Grant"))
        );
        let back: Metadata = serde_json::from_str(view["private_metadata"].as_str().unwrap()).unwrap();
        assert_eq!(back, meta);
        let view = reason_modal(&meta, "Approval needed", "Reject");
        assert_eq!(view["blocks"][1]["optional"], true);
    }
}
