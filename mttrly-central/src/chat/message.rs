//! What an approval message says, the same on every chat service: the facts a human decides on,
//! and the state the action is in now. Each provider lays it out in its own format, as plain text
//! (never the service's markup, so nothing an assistant or a server wrote can style, link or hide
//! part of the message).
//!
//! Every text field comes from [`ApprovalPrompt`], escaped for humans when it was built; what runs
//! is shown exactly, or the message says it is cut and offers no approval (a human never approves
//! what they could not read: the CLI and `actions show` have it whole).

use mttrly_core::action::ActionState;
use mttrly_core::display;

use crate::db::actions::ActionRow;
use crate::notify::ApprovalPrompt;

/// The most of "exactly what runs" a message carries, in UTF-16 code units (how Telegram counts;
/// a character outside the BMP, an emoji, is two). Telegram's limit is 4,096 units a message and
/// Slack's 3,000 characters a text block; every other fact is capped so that the whole message
/// still fits (the headline's description, the assistant's words, the output's end), so a message
/// that shows the content whole is never cut by the service.
pub const MAX_EXACT_CHARS: usize = 2_500;

/// The most characters of an action's output a finished message shows (its end: where errors are).
pub const MAX_OUTPUT_CHARS: usize = 600;

/// The end of `output`, at most [`MAX_OUTPUT_CHARS`], escaped so it shows as the text it is.
pub fn output_tail(output: &str) -> Option<String> {
    let output = output.trim_end();
    if output.is_empty() {
        return None;
    }
    let count = output.chars().count();
    let tail: String = output.chars().skip(count.saturating_sub(MAX_OUTPUT_CHARS)).collect();
    // Escaping can lengthen it (a control character becomes `\u{1b}`): capped again after.
    let escaped = display::exact(&tail);
    let shown: String = escaped.chars().skip(escaped.chars().count().saturating_sub(MAX_OUTPUT_CHARS)).collect();
    Some(if count > MAX_OUTPUT_CHARS || shown.len() < escaped.len() { format!("…{shown}") } else { shown })
}

/// The most characters of the description the headline carries.
pub const MAX_HEADLINE_CHARS: usize = 120;

/// Where an action stands, as a message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting for a decision.
    Pending {
        /// Who approved so far (names), when the rule wants more than one.
        approved_by: Vec<String>,
        /// Approvals still needed.
        remaining: u32,
    },
    /// Approved; about to run or running.
    Running {
        /// Who approved (names).
        approved_by: Vec<String>,
    },
    /// Ran and succeeded.
    Succeeded {
        /// The exit code, when a command ran.
        exit_code: Option<i32>,
    },
    /// Ran and failed (or its outcome was lost in a restart).
    Failed {
        /// The exit code, when a command ran.
        exit_code: Option<i32>,
    },
    /// A human rejected it.
    Rejected {
        /// Who.
        by: String,
    },
    /// Cancelled by a human, or withdrawn by its requester.
    Cancelled {
        /// Who.
        by: String,
    },
    /// Nobody decided in time.
    Expired,
    /// No prompt could be delivered; it never runs.
    FailedClosed,
}

impl Status {
    /// Whether a decision can still be made (the message offers buttons only then).
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }

    /// The status line.
    pub fn line(&self) -> String {
        let names = |v: &[String]| v.iter().map(|n| display::text(n).into_owned()).collect::<Vec<_>>().join(", ");
        let code = |c: &Option<i32>| c.map(|c| format!(" (exit code {c})")).unwrap_or_default();
        match self {
            Self::Pending { approved_by, remaining } if approved_by.is_empty() => {
                if *remaining > 1 {
                    format!("⏳ Waiting for {remaining} approvals")
                } else {
                    "⏳ Waiting for approval".to_owned()
                }
            }
            Self::Pending { approved_by, remaining } => {
                format!("⏳ Approved by {}; {remaining} more approval(s) needed", names(approved_by))
            }
            Self::Running { approved_by } => format!("▶️ Approved by {}; running", names(approved_by)),
            Self::Succeeded { exit_code } => format!("✅ Succeeded{}", code(exit_code)),
            Self::Failed { exit_code } => format!("❌ Failed{}", code(exit_code)),
            Self::Rejected { by } => format!("🚫 Rejected by {}", display::text(by)),
            Self::Cancelled { by } => format!("🚫 Cancelled by {}", display::text(by)),
            Self::Expired => "⌛ Expired without a decision; it will not run".to_owned(),
            Self::FailedClosed => "⛔ Failed closed: nobody could be told; it will not run".to_owned(),
        }
    }

    /// The status of an action from its stored row alone (no approver names: the follow-up that
    /// knows them says who).
    pub fn of(action: &ActionRow) -> Self {
        let exit_code = action.result.as_ref().and_then(|r| r.exit_code);
        match action.status {
            ActionState::PendingApproval => {
                Self::Pending { approved_by: Vec::new(), remaining: action.approvals_required }
            }
            ActionState::Approved | ActionState::Running => Self::Running { approved_by: Vec::new() },
            ActionState::Succeeded => Self::Succeeded { exit_code },
            ActionState::Failed => Self::Failed { exit_code },
            ActionState::Rejected => Self::Rejected { by: "a human".to_owned() },
            ActionState::Cancelled => Self::Cancelled { by: "a human".to_owned() },
            ActionState::Expired => Self::Expired,
            ActionState::FailedClosed => Self::FailedClosed,
        }
    }
}

/// The button labels of a decision message: what "yes" and "no" are called for its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbs {
    /// The yes button (`Approve`, `Grant`).
    pub yes: &'static str,
    /// The no button (`Reject`, `Deny`).
    pub no: &'static str,
}

/// Approving an action.
pub const APPROVE_REJECT: Verbs = Verbs { yes: "Approve", no: "Reject" };

/// Granting an investigation bypass.
pub const GRANT_DENY: Verbs = Verbs { yes: "Grant", no: "Deny" };

/// A message asking a human for a decision, as every provider lays it out: a headline, labelled
/// facts (each already escaped for humans), a status line, and yes / no buttons while a decision
/// can be made. An action's approval ([`ApprovalMessage`]) and a bypass request
/// (`chat::bypass::BypassMessage`) are both cards, so one layout per provider shows both and
/// nothing about escaping or fitting is written twice.
pub trait Card: Send + Sync + std::fmt::Debug + 'static {
    /// The first line.
    fn headline(&self) -> String;
    /// The labelled facts, in the order shown; an assistant's words last, under their own label.
    fn facts(&self) -> Vec<(&'static str, String)>;
    /// Where the subject stands now.
    fn status_line(&self) -> String;
    /// Whether buttons are offered (a decision can still be made).
    fn decidable(&self) -> bool;
    /// Whether the yes button is offered: decidable, and everything a human says yes to is shown
    /// whole.
    fn approvable(&self) -> bool;
    /// The buttons' labels.
    fn verbs(&self) -> Verbs;
    /// The id of what is decided (an action or a bypass), for a button's value.
    fn subject_id(&self) -> &str;
    /// The whole message as plain text: headline, facts, status line.
    fn text(&self) -> String {
        let mut out = self.headline();
        out.push_str("\n\n");
        for (label, value) in self.facts() {
            if value.contains('\n') {
                out.push_str(&format!("{label}:\n{value}\n"));
            } else {
                out.push_str(&format!("{label}: {value}\n"));
            }
        }
        out.push('\n');
        out.push_str(&self.status_line());
        out
    }
}

/// A card as channels carry it (shared by every recipient's send).
pub type Shared = std::sync::Arc<dyn Card>;

/// One approval message: the facts, who asked, and where the action stands.
#[derive(Debug, Clone)]
pub struct ApprovalMessage {
    /// The facts, every text field escaped for humans.
    pub prompt: ApprovalPrompt,
    /// The human the request came from (their assistant asked, or they did).
    pub requester_human: String,
    /// The assistant that asked, if one did (its self-reported client name).
    pub requester_assistant: Option<String>,
    /// Whether approving needs a fresh TOTP code (the rule's `second_factor = "totp"`).
    pub second_factor: bool,
    /// Where the action stands now.
    pub status: Status,
    /// The end of what the action printed, once it ran (redacted when stored, escaped here).
    pub output: Option<String>,
    /// The action's dashboard page: its whole life, and where a signed-in human can read
    /// content too long for a chat message and decide on it.
    pub page: Option<String>,
}

impl ApprovalMessage {
    /// Whether "exactly what runs" fits in the message whole. When it does not, the message
    /// offers Reject only: approving needs the whole content in front of the human.
    pub fn complete(&self) -> bool {
        self.prompt.exactly.encode_utf16().count() <= MAX_EXACT_CHARS
    }

    /// Whether the message should carry an Approve button.
    pub fn approvable(&self) -> bool {
        self.status.is_pending() && self.complete()
    }

    /// Whether the message should carry buttons at all.
    pub fn decidable(&self) -> bool {
        self.status.is_pending()
    }

    /// The headline: `Approval needed: restart nginx on web-1 (production)`. The description is
    /// capped: it can quote a whole command, which "Exactly" shows (and a chat service's length
    /// limit must not cut the facts below it).
    pub fn headline(&self) -> String {
        let p = &self.prompt;
        let description = display::cap(&p.description, MAX_HEADLINE_CHARS);
        format!("Approval needed: {description} on {} ({})", p.server_name, p.environment)
    }

    /// Exactly what runs, cut to [`MAX_EXACT_CHARS`] with a note when it is longer.
    pub fn exactly(&self) -> String {
        if self.complete() {
            return self.prompt.exactly.clone();
        }
        let mut units = 0;
        let cut: String = self
            .prompt
            .exactly
            .chars()
            .take_while(|c| {
                units += c.len_utf16();
                units <= MAX_EXACT_CHARS
            })
            .collect();
        match &self.page {
            Some(page) => format!(
                "{cut}…\n[cut: the whole content is too long for a chat message, so it cannot be approved here; \
                 read it, and decide, on its page {page} or with `mttrly-cli actions show {}`]",
                self.prompt.action_id
            ),
            None => format!(
                "{cut}…\n[cut: the whole content is too long for a chat message, so it cannot be approved here; \
                 read it with `mttrly-cli actions show {}`]",
                self.prompt.action_id
            ),
        }
    }

    /// Who asked: `assistant claude-code for alice`, or `alice`.
    pub fn requested_by(&self) -> String {
        match &self.requester_assistant {
            Some(assistant) => format!("assistant {assistant} for {}", self.requester_human),
            None => self.requester_human.clone(),
        }
    }

    /// The labelled facts, in the order they are shown (label, value). Providers lay these out;
    /// the assistant's unverified words come last, under their own label, and only here.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let p = &self.prompt;
        // "Exactly" last among central's facts: whatever a service does with a long message, the
        // short facts above it survive.
        let mut facts = vec![
            ("Server", format!("{} ({})", p.server_name, p.environment)),
            ("Action", format!("{} {}", p.action_type, p.action_id)),
            ("Requested by", self.requested_by()),
            ("Expires", p.expires_at.clone()),
            ("Content SHA-256", p.content_sha256.clone()),
            ("Exactly", self.exactly()),
        ];
        if self.second_factor {
            facts.push(("Second factor", "approving asks for a fresh TOTP code".to_owned()));
        }
        if let Some(page) = &self.page {
            facts.push(("Page", page.clone()));
        }
        if let Some(output) = &self.output {
            facts.push(("Output (end)", output.clone()));
        }
        if let Some(reason) = &p.assistant_reason_unverified {
            facts.push((display::ASSISTANT_LABEL, reason.clone()));
        }
        facts
    }

    /// The whole message as plain text: headline, facts, status line.
    pub fn text(&self) -> String {
        Card::text(self)
    }
}

impl Card for ApprovalMessage {
    fn headline(&self) -> String {
        ApprovalMessage::headline(self)
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        ApprovalMessage::facts(self)
    }

    fn status_line(&self) -> String {
        self.status.line()
    }

    fn decidable(&self) -> bool {
        ApprovalMessage::decidable(self)
    }

    fn approvable(&self) -> bool {
        ApprovalMessage::approvable(self)
    }

    fn verbs(&self) -> Verbs {
        APPROVE_REJECT
    }

    fn subject_id(&self) -> &str {
        &self.prompt.action_id
    }
}

/// A sample message for the providers' layout tests: web-1 (production), requested by assistant
/// claude for alice, with `exactly` and `status` as given and no reason.
#[cfg(test)]
pub(crate) fn sample(exactly: &str, status: Status) -> ApprovalMessage {
    ApprovalMessage {
        prompt: ApprovalPrompt {
            event: "action.pending",
            action_id: "act_1".into(),
            account_id: "acc_1".into(),
            server_id: "srv_1".into(),
            server_name: "web-1".into(),
            environment: "production".into(),
            action_type: "execute_command".into(),
            description: "restart nginx".into(),
            content: serde_json::Value::Null,
            exactly: exactly.into(),
            content_sha256: "ab".repeat(32),
            requested_by: "assistant:claude".into(),
            expires_at: "2026-12-02T15:00:00Z".into(),
            approve_command: String::new(),
            reject_command: String::new(),
            assistant_reason_unverified: None,
        },
        requester_human: "alice".into(),
        requester_assistant: Some("claude".into()),
        second_factor: false,
        status,
        output: None,
        page: Some("https://mttrly.example.com/actions/act_1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(exactly: &str) -> ApprovalMessage {
        let mut m = sample(exactly, Status::Pending { approved_by: Vec::new(), remaining: 1 });
        m.prompt.assistant_reason_unverified = Some("nginx is stuck".into());
        m.second_factor = true;
        m
    }

    #[test]
    fn a_message_shows_every_fact_a_human_decides_on() {
        let text = message("systemctl restart nginx").text();
        for fact in [
            "web-1 (production)",
            "systemctl restart nginx",
            &"ab".repeat(32),
            "assistant claude for alice",
            "2026-12-02T15:00:00Z",
            "TOTP",
            "nginx is stuck",
        ] {
            assert!(text.contains(fact), "{fact} missing from:\n{text}");
        }
        // The assistant's words come after every fact central vouches for.
        assert!(text.find("nginx is stuck") > text.find("Content SHA-256"));
    }

    #[test]
    fn content_too_long_to_show_whole_cannot_be_approved_from_chat() {
        let long = "x".repeat(MAX_EXACT_CHARS + 1);
        let m = message(&long);
        assert!(!m.complete() && !m.approvable() && m.decidable());
        assert!(m.exactly().contains("cannot be approved here"));
        let fits = message(&"x".repeat(MAX_EXACT_CHARS));
        assert!(fits.approvable());
    }

    #[test]
    fn a_finished_message_shows_the_end_of_the_output_as_text() {
        let mut m = message("true");
        m.status = Status::Failed { exit_code: Some(1) };
        let long = format!("{}\nerror: \u{1b}[31mdisk full\u{202e}", "x".repeat(2000));
        m.output = output_tail(&long);
        let text = m.text();
        assert!(text.contains("disk full") && text.contains("Output (end)"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "controls shown, not obeyed: {text}");
        assert!(m.output.as_ref().is_some_and(|o| o.chars().count() < MAX_OUTPUT_CHARS + 40));
        assert_eq!(output_tail("  \n"), None);
    }

    #[test]
    fn decided_actions_offer_no_buttons() {
        let mut m = message("true");
        m.status = Status::Expired;
        assert!(!m.decidable() && !m.approvable());
    }
}
