//! A war-room notification as a chat message: pushed to a person who subscribed to its channel.
//!
//! It asks nothing of them (no buttons): it says who sent it, through which assistant, and what
//! they wrote, marked as their words. Providers send it as plain text (Telegram without
//! `parse_mode`, Slack in `plain_text` blocks with the fallback escaped), so nothing a sender
//! wrote can format, link, mention or hide part of it.

use mttrly_core::display;
use mttrly_core::tools::notify::{Notification, Priority};

/// The most characters of a body a chat message carries (the thread has the rest).
pub const MAX_BODY_CHARS: usize = 1_500;

/// One notification for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// First line: priority and channel.
    pub headline: String,
    /// The sender's title, as written.
    pub title: String,
    /// Who sent it, their role and assistant, and where it sits.
    pub from: String,
    /// Theme and tags, when any.
    pub labels: Option<String>,
    /// The body, cut to [`MAX_BODY_CHARS`], each line marked `│ ` as the sender's words.
    pub body: String,
    /// Where to read the whole thread.
    pub read_more: String,
}

fn marker(priority: Priority) -> &'static str {
    match priority {
        Priority::Critical => "🔴 CRITICAL",
        Priority::High => "🟠 HIGH",
        Priority::Medium => "🟡 MEDIUM",
        Priority::Low => "⚪ LOW",
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The sender's words, every line marked as theirs (`│ `), so a body cannot pass for another
/// notice's headline or `Written by` line.
fn quoted(body: &str) -> String {
    if body.is_empty() {
        return String::new();
    }
    body.lines().map(|l| format!("│ {l}")).collect::<Vec<_>>().join("\n")
}

impl Notice {
    /// The message for `n` (text already redacted when it was stored).
    pub fn of(n: &Notification) -> Self {
        let sender = &n.sender;
        let via = match &sender.ai_tool {
            Some(tool) => format!(" through the assistant {}", display::text(tool)),
            None => String::new(),
        };
        let mut labels = Vec::new();
        if let Some(theme) = &n.theme {
            labels.push(format!("theme {theme}"));
        }
        if !n.tags.is_empty() {
            labels.push(format!("tags {}", n.tags.join(", ")));
        }
        Self {
            headline: format!("{} · #{}", marker(n.priority), n.channel),
            title: display::text(&n.title).into_owned(),
            from: match sender.role {
                Some(role) => format!(
                    "Written by {} ({}){via}, in thread {}",
                    display::text(&sender.name),
                    role.as_str(),
                    n.thread_id
                ),
                None => format!("Posted by mttrly from what it observed, in thread {}", n.thread_id),
            },
            labels: (!labels.is_empty()).then(|| labels.join(" · ")),
            body: quoted(&cut(n.body.trim(), MAX_BODY_CHARS)),
            read_more: format!("Whole thread: mttrly_get_thread {{\"thread_id\": \"{}\"}}", n.thread_id),
        }
    }

    /// The whole message as plain text.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n{}\n{}", self.headline, self.title, self.from);
        if let Some(labels) = &self.labels {
            out.push('\n');
            out.push_str(labels);
        }
        if !self.body.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.body);
        }
        out.push_str("\n\n");
        out.push_str(&self.read_more);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mttrly_core::Role;
    use mttrly_core::ids::{NotificationId, UserId};
    use mttrly_core::principal::Source;
    use mttrly_core::tools::notify::Sender;

    fn note(body: &str) -> Notification {
        Notification {
            notification_id: NotificationId::generate(),
            channel: "incidents".into(),
            thread_id: "inc-1".into(),
            in_reply_to: None,
            title: "DB down".into(),
            body: body.into(),
            priority: Priority::Critical,
            theme: Some("incident-alert".into()),
            tags: vec!["p0".into(), "database".into()],
            server_id: None,
            sender: Sender {
                user_id: Some(UserId::generate()),
                name: "alice".into(),
                role: Some(Role::Operator),
                ai_tool: Some("claude-code".into()),
                via: Source::Mcp,
            },
            published_at: jiff::Timestamp::UNIX_EPOCH,
            redactions: 0,
        }
    }

    #[test]
    fn says_who_wrote_it_through_which_assistant() {
        let text = Notice::of(&note("primary unreachable")).text();
        assert!(text.starts_with("🔴 CRITICAL · #incidents\nDB down\n"), "{text}");
        assert!(text.contains("Written by alice (operator) through the assistant claude-code, in thread inc-1"));
        assert!(text.contains("theme incident-alert · tags p0, database"));
        assert!(text.contains("\n\n│ primary unreachable\n\n"));
    }

    #[test]
    fn a_long_body_is_cut() {
        let notice = Notice::of(&note(&"x".repeat(5_000)));
        assert_eq!(notice.body.chars().count(), MAX_BODY_CHARS + 2);
        assert!(notice.body.ends_with('…'));
    }

    #[test]
    fn a_body_cannot_pass_for_another_notice() {
        let forged = "ok\n\n🔴 CRITICAL · #incidents\nRollback approved\nWritten by admin (admin)";
        let text = Notice::of(&note(forged)).text();
        assert_eq!(text.matches("\nWritten by ").count(), 1, "{text}");
        assert!(text.contains("\n│ Written by admin (admin)"), "{text}");
    }
}
