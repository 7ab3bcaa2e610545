//! A decision message (an action's [`ApprovalMessage`](crate::chat::ApprovalMessage), a bypass
//! request) as Bot API parameters: plain text (no `parse_mode`, so nothing an
//! assistant or a server wrote can format, link or hide part of it) and an inline keyboard.
//!
//! The buttons' `callback_data` says only which button (`a`, `r`): a tap is bound to the message
//! it was made on (its chat and message id, which Telegram reports and the client cannot choose),
//! and that message was recorded with its action, its recipient and the content hash it showed.

use serde_json::{Value, json};

use crate::chat::Posted;
use crate::chat::message::Card;

/// `callback_data` of the Approve (Grant) button.
pub const APPROVE: &str = "a";
/// `callback_data` of the Reject (Deny) button.
pub const REJECT: &str = "r";

/// Telegram's limit on a message's text, in UTF-16 code units.
pub const MAX_TEXT: usize = 4096;

/// A chat id as the Bot API takes it: the number when it is one.
pub fn chat_id(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| Value::String(id.to_owned()), Value::from)
}

/// The message's text within [`MAX_TEXT`], and whether it is whole.
pub fn text(message: &dyn Card) -> (String, bool) {
    fit(message.text())
}

/// `full` within [`MAX_TEXT`] UTF-16 units (cut with `…`), and whether it is whole.
fn fit(full: String) -> (String, bool) {
    if full.encode_utf16().count() <= MAX_TEXT {
        return (full, true);
    }
    let mut out = String::new();
    let mut units = 0;
    for c in full.chars() {
        if units + c.len_utf16() > MAX_TEXT - 1 {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    (out, false)
}

/// The inline keyboard while a decision can be made: Reject always, Approve only when the whole
/// content is in front of the human.
fn keyboard(message: &dyn Card, whole: bool) -> Option<Value> {
    if !message.decidable() {
        return None;
    }
    let verbs = message.verbs();
    let mut row = Vec::new();
    if message.approvable() && whole {
        row.push(json!({ "text": format!("✅ {}", verbs.yes), "callback_data": APPROVE }));
    }
    row.push(json!({ "text": format!("🚫 {}", verbs.no), "callback_data": REJECT }));
    Some(json!({ "inline_keyboard": [row] }))
}

/// `sendMessage` parameters for `message` to `chat`.
pub fn send(chat: &str, message: &dyn Card) -> Value {
    let (text, whole) = text(message);
    let mut body = json!({ "chat_id": chat_id(chat), "text": text, "link_preview_options": { "is_disabled": true } });
    if let Some(k) = keyboard(message, whole) {
        body["reply_markup"] = k;
    }
    body
}

/// `sendMessage` parameters for a war-room notice to `chat`: plain text, cut to [`MAX_TEXT`].
pub fn notice(chat: &str, notice: &crate::chat::notice::Notice) -> Value {
    let (text, _) = fit(notice.text());
    json!({ "chat_id": chat_id(chat), "text": text, "link_preview_options": { "is_disabled": true } })
}

/// `editMessageText` parameters replacing the message at `posted` with `message`. Without a
/// keyboard the edit removes the buttons.
pub fn edit(posted: &Posted, message: &dyn Card) -> Value {
    let (text, whole) = text(message);
    let mut body = json!({
        "chat_id": chat_id(&posted.chat_id),
        "message_id": posted.message_id.parse::<i64>().map_or_else(|_| Value::String(posted.message_id.clone()), Value::from),
        "text": text,
        "link_preview_options": { "is_disabled": true },
    });
    if let Some(k) = keyboard(message, whole) {
        body["reply_markup"] = k;
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ApprovalMessage, Status};

    fn message(exactly: &str, status: Status) -> ApprovalMessage {
        let mut m = crate::chat::message::sample(exactly, status);
        m.prompt.description = "<b>restart</b> nginx".into();
        m
    }

    fn pending() -> Status {
        Status::Pending { approved_by: Vec::new(), remaining: 1 }
    }

    fn buttons(body: &Value) -> Vec<&str> {
        body["reply_markup"]["inline_keyboard"][0]
            .as_array()
            .map(|row| row.iter().filter_map(|b| b["callback_data"].as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_pending_message_is_plain_text_with_both_buttons_and_tiny_callback_data() {
        let body = send("42", &message("systemctl restart nginx", pending()));
        assert_eq!(body["chat_id"], 42);
        assert!(body.get("parse_mode").is_none(), "plain text only");
        assert!(body["text"].as_str().unwrap().contains("<b>restart</b> nginx"), "markup is shown, not applied");
        assert_eq!(buttons(&body), [APPROVE, REJECT]);
        assert!(APPROVE.len() <= 64 && REJECT.len() <= 64);
    }

    #[test]
    fn a_decided_message_loses_its_buttons_and_a_cut_one_offers_reject_only() {
        let posted = Posted { chat_id: "42".into(), message_id: "7".into() };
        let done = edit(&posted, &message("true", Status::Succeeded { exit_code: Some(0) }));
        assert_eq!((done["message_id"].clone(), buttons(&done).len()), (Value::from(7), 0));
        assert!(done.get("reply_markup").is_none());
        let long = "x".repeat(crate::chat::message::MAX_EXACT_CHARS + 1);
        assert_eq!(buttons(&send("42", &message(&long, pending()))), [REJECT]);
    }

    /// Every other fact at its cap (emoji count two UTF-16 units, as Telegram counts).
    fn maxed(exactly: &str) -> ApprovalMessage {
        let mut m = message(exactly, pending());
        m.prompt.description = "🔥".repeat(3000);
        m.prompt.server_name = "w".repeat(64);
        m.prompt.assistant_reason_unverified = Some(mttrly_core::display::assistant_text(&"🔥".repeat(1000)));
        m.requester_assistant = Some("c".repeat(64));
        m.second_factor = true;
        m
    }

    #[test]
    fn a_message_that_shows_the_content_whole_always_fits_telegrams_limit() {
        // The most "exactly" an approvable message carries, with every other fact at its cap.
        let m = maxed(&"🔥".repeat(crate::chat::message::MAX_EXACT_CHARS / 2));
        let (shown, whole) = text(&m);
        assert!(whole && shown.encode_utf16().count() <= MAX_TEXT, "{}", shown.encode_utf16().count());
        assert_eq!(buttons(&send("42", &m)), [APPROVE, REJECT]);
        // 2,500 emoji: 2,500 characters but 5,000 UTF-16 units: not whole, so Reject only.
        let m = maxed(&"🔥".repeat(2500));
        let (shown, _) = text(&m);
        assert!(shown.encode_utf16().count() <= MAX_TEXT);
        assert_eq!(buttons(&send("42", &m)), [REJECT], "no Approve on content shown cut");
    }
}
