//! A bypass request in chat (issue 15): when an assistant asks for an investigation bypass, the
//! people who may grant it and linked a chat account are shown exactly what a grant allows, and
//! decide there: Grant asks for a fresh TOTP code (typed in the chat, never a tool argument) and
//! grants the request exactly as shown; Deny refuses it. Then every message about it is edited to
//! show the outcome.
//!
//! Nothing about the decision is this module's own: who may grant is
//! [`crate::investigations::may_grant`] (the CLI's and the dashboard's rule: the environment's
//! approval rule per covered tool, four eyes, `bypass = "forbidden"`), the grant is
//! [`crate::investigations::grant`] (the code checked replay- and lockout-safe, the pending →
//! active move conditional), the denial [`crate::investigations::deny`]; both audit with the chat
//! service as the source. What this module adds is the binding: the message is recorded as a
//! [`Subject::Bypass`] with the hash of the request it showed ([`request_sha256`]), and a tap is
//! refused unless the stored request still hashes to it, and is granted with the stored scope
//! exactly (the grant path refuses it if that scope is no longer within the request).
//!
//! Narrowing (fewer actions, a shorter time, fewer patterns) stays on the CLI and the dashboard,
//! where a person can type the narrower scope: a chat message offers the request as shown, or no.

use std::sync::Arc;

use mttrly_core::approval::Decider;
use mttrly_core::audit::AuditKind;
use mttrly_core::display;
use mttrly_core::ids::{AccountId, BypassId};
use mttrly_core::tools::investigations::{ArgvPattern, BypassState, BypassStatus, BypassTool};
use mttrly_core::{ChatProvider, Environment, ErrorChain, ErrorCode, MttrlyError, Principal, Role};
use sha2::{Digest, Sha256};

use super::decide::{Choice, Outcome, Tap};
use super::message::{Card, GRANT_DENY, Verbs};
use super::{Announced, Chat, requester};
use crate::db::accounts::{TokenOwner, User};
use crate::db::chat::{MessageRow, Subject};
use crate::db::investigations::{BypassRow, InvestigationRow};
use crate::db::{now_ms, timestamp};
use crate::events::{Event, Payload};
use crate::investigations::GrantRequest;
use crate::state::Central;

/// The most characters of an investigation's title a message carries.
pub const MAX_TITLE_CHARS: usize = 120;

/// The most of the patterns a message shows, in UTF-16 code units (how Telegram counts): every
/// other fact at its cap takes about 2,100 of Telegram's 4,096, so a message that shows the
/// patterns whole is never cut by the service (a bypass may carry 20 patterns of 16 words of 256
/// characters: far more than this; such a request is granted on the CLI or the dashboard).
pub const MAX_PATTERN_UNITS: usize = 1_800;

/// Where a bypass stands, as its message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Waiting for a grant.
    Pending,
    /// Granted and in force.
    Active {
        /// Who granted it.
        by: String,
        /// Until when (RFC 3339).
        until: String,
        /// Actions left.
        left: u32,
        /// Actions granted.
        max: u32,
    },
    /// Granted, and every action used.
    Exhausted {
        /// Who granted it.
        by: String,
        /// Actions granted (all used).
        max: u32,
    },
    /// Revoked before any grant: a human denied it, or its assistant withdrew it.
    Denied,
    /// Revoked after it was granted.
    Revoked {
        /// Who had granted it.
        by: String,
    },
    /// Its time ran out (`granted`: after a grant; else nobody granted it in time).
    Expired {
        /// Whether it had been granted.
        granted: bool,
    },
}

impl Standing {
    /// Where `row` stands at `now`.
    pub fn of(row: &BypassRow, now: i64) -> Self {
        let by = || display::text(row.granted_by_name.as_deref().unwrap_or("a human")).into_owned();
        match row.status_at(now) {
            BypassStatus::Pending => Self::Pending,
            BypassStatus::Active => Self::Active {
                by: by(),
                until: timestamp(row.expires_at).to_string(),
                left: row.remaining_at(now),
                max: row.scope.max_actions,
            },
            BypassStatus::Exhausted => Self::Exhausted { by: by(), max: row.scope.max_actions },
            BypassStatus::Revoked if row.granted_at.is_some() => Self::Revoked { by: by() },
            BypassStatus::Revoked | BypassStatus::None => Self::Denied,
            BypassStatus::Expired => Self::Expired { granted: row.granted_at.is_some() },
        }
    }

    /// The status line.
    pub fn line(&self) -> String {
        match self {
            Self::Pending => "⏳ Waiting for a grant".to_owned(),
            Self::Active { by, until, left, max } => {
                format!("✅ Granted by {by}: active until {until}, {left} of {max} actions left")
            }
            Self::Exhausted { by, max } => format!("✅ Granted by {by}; all {max} actions used"),
            Self::Denied => "🚫 Denied (or withdrawn by its assistant): it never became active".to_owned(),
            Self::Revoked { by } => format!("🚫 Revoked after {by} granted it"),
            Self::Expired { granted: true } => "⌛ Expired".to_owned(),
            Self::Expired { granted: false } => "⌛ Expired without a grant; it never became active".to_owned(),
        }
    }
}

/// A bypass request as a chat message: what a grant would allow, who asked, and where it stands.
/// Every text field is escaped for humans when built ([`BypassMessage::of`]).
#[derive(Debug, Clone)]
pub struct BypassMessage {
    /// The bypass.
    pub bypass_id: String,
    /// The server's name, escaped.
    pub server_name: String,
    /// Its environment.
    pub environment: Environment,
    /// The investigation.
    pub investigation_id: String,
    /// Its title (the assistant's words), escaped and capped.
    pub title: String,
    /// The human whose assistant asked.
    pub requester_human: String,
    /// The assistant (its self-reported client name), if an assistant asked.
    pub requester_assistant: Option<String>,
    /// The exec tools covered.
    pub tools: Vec<&'static str>,
    /// The argument patterns, each one line as `ArgvPattern::shown` prints it (every word quoted,
    /// anything but printable ASCII a visible escape).
    pub patterns: Vec<String>,
    /// Minutes it lasts once granted.
    pub minutes: u32,
    /// Actions it allows.
    pub max_actions: u32,
    /// When the request lapses unless granted (RFC 3339).
    pub request_expires_at: String,
    /// [`request_sha256`] of what this message shows.
    pub content_sha256: String,
    /// The assistant's reason, escaped and capped (shown last, as unverified).
    pub reason: Option<String>,
    /// The investigation's dashboard page.
    pub page: Option<String>,
    /// Where it stands.
    pub standing: Standing,
}

/// The hash of a bypass request as a message shows it: the bypass, its investigation and server
/// (id, name, environment), the scope (tools, patterns, minutes, actions), who asked, when, and
/// why. A tap is decided only while the stored request still hashes to what its message showed.
pub fn request_sha256(bypass: &BypassRow, server_name: &str, environment: Environment) -> String {
    let canonical = serde_json::json!({
        "bypass_id": bypass.id.as_str(),
        "account_id": bypass.account_id.as_str(),
        "investigation_id": bypass.investigation_id.as_str(),
        "server_id": bypass.server_id.as_str(),
        "server_name": server_name,
        "environment": environment.as_str(),
        "tools": bypass.scope.tools.iter().map(BypassTool::as_str).collect::<Vec<_>>(),
        "patterns": bypass.scope.patterns.iter().map(|p| p.words().collect::<Vec<_>>()).collect::<Vec<_>>(),
        "patterns_shown": bypass.scope.patterns.iter().map(ArgvPattern::shown).collect::<Vec<_>>(),
        "duration_minutes": bypass.scope.minutes,
        "max_actions": bypass.scope.max_actions,
        "requested_by": serde_json::to_value(&bypass.requested_by).ok(),
        "requested_at": bypass.requested_at,
        "reason": bypass.reason,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

impl BypassMessage {
    /// The message for `bypass` of `investigation` on the server `server` (name, environment),
    /// naming the requester's human from `users`; `page` is central's public address, if any.
    pub fn of(
        bypass: &BypassRow,
        investigation: &InvestigationRow,
        server: (&str, Environment),
        users: &[User],
        site_url: Option<&str>,
        now: i64,
    ) -> Self {
        let (requester_human, requester_assistant) = requester(&bypass.requested_by, users);
        Self {
            bypass_id: bypass.id.to_string(),
            server_name: display::text(server.0).into_owned(),
            environment: server.1,
            investigation_id: investigation.id.to_string(),
            title: display::cap(&display::text(&investigation.title), MAX_TITLE_CHARS).into_owned(),
            requester_human,
            requester_assistant,
            tools: bypass.scope.tools.iter().map(BypassTool::as_str).collect(),
            patterns: bypass
                .scope
                .patterns
                .iter()
                .map(mttrly_core::tools::investigations::ArgvPattern::shown)
                .collect(),
            minutes: bypass.scope.minutes,
            max_actions: bypass.scope.max_actions,
            request_expires_at: timestamp(bypass.expires_at).to_string(),
            content_sha256: request_sha256(bypass, server.0, server.1),
            reason: bypass.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(display::assistant_text),
            page: site_url.map(|url| format!("{url}{}", crate::investigations::page_path(&investigation.id))),
            standing: Standing::of(bypass, now),
        }
    }

    /// Whether every pattern fits the message whole: a grant needs every one in front of the
    /// human, so a message that cannot show them all offers Deny only.
    pub fn complete(&self) -> bool {
        self.patterns.iter().map(|p| p.encode_utf16().count() + 3).sum::<usize>() <= MAX_PATTERN_UNITS
    }

    /// The patterns as shown: each on its own line marked `│ ` as the assistant's words, or what
    /// no pattern means; cut with a note when they do not fit.
    fn patterns_shown(&self) -> String {
        if self.patterns.is_empty() {
            return "none: any arguments of the covered tools".to_owned();
        }
        let lines = self.patterns.iter().map(|p| format!("│ {p}")).collect::<Vec<_>>().join("\n");
        if self.complete() {
            return lines;
        }
        let mut units = 0;
        let cut: String = lines
            .chars()
            .take_while(|c| {
                units += c.len_utf16();
                units <= MAX_PATTERN_UNITS
            })
            .collect();
        format!(
            "{cut}…\n[cut: the patterns are too long for a chat message, so it cannot be granted here; \
             read them, and grant, with `mttrly-cli investigations show {}`]",
            self.investigation_id
        )
    }
}

impl Card for BypassMessage {
    fn headline(&self) -> String {
        format!(
            "Investigation bypass requested: {} on {} ({})",
            self.tools.join(" and "),
            self.server_name,
            self.environment
        )
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let requested_by = match &self.requester_assistant {
            Some(assistant) => format!("assistant {assistant} for {}", self.requester_human),
            None => self.requester_human.clone(),
        };
        let mut facts = vec![
            ("Server", format!("{} ({})", self.server_name, self.environment)),
            ("Investigation", format!("{} \"{}\"", self.investigation_id, self.title)),
            ("Requested by", requested_by),
            ("Covers", format!("{}: matching calls run without per-command approval", self.tools.join(", "))),
            ("Lasts", format!("{} minutes once granted", self.minutes)),
            ("Max actions", self.max_actions.to_string()),
            ("Request expires", self.request_expires_at.clone()),
            ("Bypass", self.bypass_id.clone()),
            ("Request SHA-256", self.content_sha256.clone()),
            ("Argument patterns (written by the assistant, shown as data)", self.patterns_shown()),
            ("Second factor", "granting asks for a fresh TOTP code".to_owned()),
        ];
        if let Some(page) = &self.page {
            facts.push(("Page", page.clone()));
        }
        if let Some(reason) = &self.reason {
            facts.push((display::ASSISTANT_LABEL, reason.clone()));
        }
        facts
    }

    fn status_line(&self) -> String {
        self.standing.line()
    }

    fn decidable(&self) -> bool {
        self.standing == Standing::Pending
    }

    fn approvable(&self) -> bool {
        self.decidable() && self.complete()
    }

    fn verbs(&self) -> Verbs {
        GRANT_DENY
    }

    fn subject_id(&self) -> &str {
        &self.bypass_id
    }
}

/// What a bypass message is built from, read once.
struct Facts {
    bypass: BypassRow,
    investigation: InvestigationRow,
    server: (String, Environment),
    users: Vec<User>,
}

impl Chat {
    async fn bypass_facts(&self, account: &AccountId, id: &BypassId) -> Result<Option<Facts>, MttrlyError> {
        let db = self.db.account(account);
        let Some(bypass) = db.investigations().bypass(id).await? else { return Ok(None) };
        let Some(investigation) = db.investigations().get(&bypass.investigation_id).await? else { return Ok(None) };
        let Some(server) = db.servers().get(&bypass.server_id).await? else { return Ok(None) };
        let users = db.users().list().await?;
        Ok(Some(Facts { bypass, investigation, server: (server.name, server.environment), users }))
    }

    fn bypass_message(&self, f: &Facts) -> BypassMessage {
        let site = (!self.site_url.is_empty()).then_some(self.site_url.as_str());
        BypassMessage::of(&f.bypass, &f.investigation, (&f.server.0, f.server.1), &f.users, site, now_ms())
    }

    /// Asks every person who may grant the pending bypass `id` (the grant path's own rule, as if
    /// they tapped Grant through that provider) and linked an account, on every channel; records
    /// each message with the request hash it showed.
    pub async fn announce_bypass(&self, account: &AccountId, id: &BypassId) -> Announced {
        let facts = match self.bypass_facts(account, id).await {
            Ok(Some(f)) => f,
            Ok(None) => return Announced { failures: vec![format!("bypass {id} is gone")], ..Announced::default() },
            Err(e) => return Announced { failures: vec![format!("chat: {}", ErrorChain(&e))], ..Announced::default() },
        };
        let message = self.bypass_message(&facts);
        let hash = message.content_sha256.clone();
        let environment = facts.server.1;
        let eligible = |provider: ChatProvider| {
            facts
                .users
                .iter()
                .filter(|user| {
                    let principal = Principal::Human { user_id: user.id.clone(), name: user.name.clone() };
                    let decider = Decider {
                        principal: &principal,
                        is_admin: user.role == Role::Admin,
                        may_decide: user.role.may_decide(),
                        token_may_decide: true,
                        channel: provider.source(),
                        existing_channels: &self.decision_channels,
                    };
                    crate::investigations::may_grant(
                        &self.approvals,
                        &decider,
                        &facts.bypass,
                        &facts.bypass.scope,
                        environment,
                    )
                    .is_ok()
                })
                .map(|user| user.id.clone())
                .collect()
        };
        self.deliver(account, &Subject::Bypass(id.clone()), &hash, Arc::new(message), eligible).await
    }

    /// [`Chat::announce_bypass`] on its own task (a chat service must never hold up the
    /// assistant's request), logging what it reached.
    pub fn spawn_announce_bypass(self: &Arc<Self>, account: AccountId, id: BypassId) {
        let chat = Arc::clone(self);
        tokio::spawn(async move {
            let announced = chat.announce_bypass(&account, &id).await;
            if announced.failures.is_empty() {
                tracing::debug!(bypass = %id, delivered = announced.delivered, "bypass request sent to chat");
            } else {
                tracing::warn!(bypass = %id, delivered = announced.delivered, failures = ?announced.failures, "bypass request not sent to every eligible person");
            }
        });
    }

    /// [`Chat::follow_up_bypass`] on its own task (the assistant's revoke must not wait for a
    /// chat service).
    pub fn spawn_follow_up_bypass(self: &Arc<Self>, account: AccountId, id: BypassId) {
        let chat = Arc::clone(self);
        tokio::spawn(async move { chat.follow_up_bypass(&account, &id).await });
    }

    /// Edits every message about bypass `id` to show where it stands now.
    pub(super) async fn follow_up_bypass(&self, account: &AccountId, id: &BypassId) {
        match self.bypass_facts(account, id).await {
            Ok(Some(facts)) => {
                let message = self.bypass_message(&facts);
                self.edit_all(account, &Subject::Bypass(id.clone()), Arc::new(message)).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(bypass = %id, error = %ErrorChain(&e), "could not read the bypass to update its messages");
            }
        }
    }
}

/// The bypass an event changed, if it changed one: a grant or denial (an approval decision whose
/// subject is a bypass), a person's revoke, the sweep's expiry (a request nobody granted in
/// time, a grant whose time ran out), or an investigation closed with its bypass.
pub(super) fn changed_by(event: &Event) -> Option<BypassId> {
    if let Payload::InvestigationClosed { revoked_bypass, .. } = &event.payload {
        return revoked_bypass.clone();
    }
    if event.kind == AuditKind::ApprovalDecision {
        return BypassId::parse(&event.row.subject).ok();
    }
    if matches!(event.row.subject.as_str(), "RevokeInvestigationBypass" | "ExpireInvestigationBypass") {
        let parameters: serde_json::Value = serde_json::from_str(&event.row.parameters_json).ok()?;
        return BypassId::parse(parameters["bypass_id"].as_str()?).ok();
    }
    None
}

/// Audits a tap on a bypass message refused before the grant path (the request changed since
/// the message, the message could not show it whole, the person may not grant it), by the linked
/// person: `decide::refusal`'s row.
fn refused(central: &Central, row: &MessageRow, tap: &Tap, owner: &TokenOwner, err: &MttrlyError, why: &str) {
    central.audit(super::decide::refusal(row, tap, owner.principal.clone().into(), err, why));
}

/// What a tap on a bypass message did.
#[derive(Debug, Clone)]
pub enum Decided {
    /// Granted: active now.
    Granted(Box<BypassState>),
    /// Denied (`now`: by this tap; else it was already revoked and nothing changed).
    Denied {
        /// The bypass as it stands.
        state: Box<BypassState>,
        /// Whether this tap denied it.
        now: bool,
    },
}

/// Decides the tap `tap` by `owner` (the linked person the message `row` was sent to) on the
/// request for bypass `id`.
pub(super) async fn tap(
    central: &Arc<Central>,
    tap: Tap,
    row: &MessageRow,
    owner: &TokenOwner,
    id: &BypassId,
) -> Result<Outcome, MttrlyError> {
    let source = tap.provider.source();
    let db = central.db.account(&row.account_id);
    let Some(bypass) = db.investigations().bypass(id).await? else {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("no bypass {id} in this account"))
            .with_detail("bypass_id", id.as_str()));
    };
    // Bound to the request the message showed: a request changed since (or a server renamed or
    // moved to another environment) is decided on a new message, never on this one.
    let server = db.servers().get(&bypass.server_id).await?;
    let now_shown = server.map(|s| request_sha256(&bypass, &s.name, s.environment));
    if now_shown.as_deref() != Some(row.content_sha256.as_str()) {
        let err = MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "bypass {id} is no longer the request this message showed; nothing was changed (decide on its current \
                 request with `mttrly-cli investigations show {}`)",
                bypass.investigation_id
            ),
        )
        .with_detail("bypass_id", id.as_str());
        refused(central, row, &tap, owner, &err, "the request changed since the message was sent");
        return Err(err);
    }
    match tap.choice {
        // The message could not show every pattern, so it offered no Grant button; a client can
        // still send any callback data, so the refusal is here, not in the layout.
        Choice::Approve if !row.approvable => {
            let err = MttrlyError::new(
                ErrorCode::Forbidden,
                format!(
                    "this message could not show the whole request, so it cannot grant it: read it with \
                     `mttrly-cli investigations show {}` and grant there",
                    bypass.investigation_id
                ),
            )
            .with_detail("bypass_id", id.as_str());
            refused(central, row, &tap, owner, &err, "the message did not show the request whole");
            Err(err)
        }
        Choice::Approve => {
            let code = tap.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
            let Some(code) = code else {
                // Everything but the code first: a person who may not grant is told now, before
                // typing a code for nothing.
                if let Err(err) = crate::investigations::check_grantable(central, owner, &bypass, source).await {
                    refused(central, row, &tap, owner, &err, "may not grant this bypass now");
                    return Err(err);
                }
                return Ok(Outcome::CodeNeeded { subject: row.subject.clone() });
            };
            // Exactly the request shown: the grant path refuses it unless it is still within the
            // stored request, checks the code, and moves it to active in one transaction.
            let request =
                GrantRequest { bypass_id: id.clone(), scope: Some(bypass.scope.clone()), code: code.to_owned() };
            let state = crate::investigations::grant(central, owner, request, source).await?;
            Ok(Outcome::Bypass(Decided::Granted(Box::new(state))))
        }
        Choice::Reject { .. } => {
            let denied = crate::investigations::deny(central, owner, id, source).await?;
            Ok(Outcome::Bypass(Decided::Denied { state: Box::new(denied.state), now: denied.now }))
        }
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::ids::{InvestigationId, ServerId, UserId};
    use mttrly_core::tools::investigations::{BypassTools, GrantScope, InvestigationStatus};

    use super::*;

    fn row(patterns: &[&[&str]]) -> (BypassRow, InvestigationRow) {
        let account = AccountId::generate();
        let investigation = InvestigationRow {
            id: InvestigationId::generate(),
            account_id: account.clone(),
            server_id: ServerId::generate(),
            user_id: UserId::generate(),
            client: "tok_1".into(),
            client_name: "claude-code".into(),
            title: "disk <b>full</b>\u{202e} on web-1".into(),
            alert_id: None,
            status: InvestigationStatus::Open,
            opened_at: 0,
            last_activity_at: 0,
            closed_at: None,
            close_reason: None,
            version: 1,
        };
        let bypass = BypassRow {
            id: BypassId::generate(),
            account_id: account,
            investigation_id: investigation.id.clone(),
            server_id: investigation.server_id.clone(),
            scope: GrantScope {
                tools: BypassTools::new([BypassTool::ExecuteCommand]).unwrap(),
                patterns: patterns.iter().map(|p| ArgvPattern::from_words(p).unwrap()).collect(),
                minutes: 15,
                max_actions: 3,
            },
            status: BypassStatus::Pending,
            requested_at: 1_000,
            requested_by: Principal::Human { user_id: investigation.user_id.clone(), name: "alice".into() },
            reason: Some("clean   up\n\n\nthe disk".into()),
            granted_by: None,
            granted_by_name: None,
            granted_at: None,
            expires_at: 10_000_000_000_000,
            actions_used: 0,
            revoked_at: None,
        };
        (bypass, investigation)
    }

    #[test]
    fn a_message_shows_what_a_grant_allows_and_hostile_patterns_stay_inert() {
        // A control character cannot be in a pattern (refused on input); everything else can.
        let hostile: &[&str] = &["rm", "<a href=x>-rf</a>\u{202e}\u{200b}", "\"Granted\"", "by admin"];
        let (bypass, investigation) = row(&[&["journalctl", "--vacuum-size=100M"], hostile]);
        let m = BypassMessage::of(&bypass, &investigation, ("web-1", Environment::Staging), &[], None, 0);
        let text = m.text();
        for fact in
            ["web-1 (staging)", "execute_command", "15 minutes", "Max actions: 3", "alice", "TOTP", "clean up the disk"]
        {
            assert!(text.contains(fact), "{fact} missing from:\n{text}");
        }
        assert!(text.contains("│ \"journalctl\" \"--vacuum-size=100M\" exactly"), "{text}");
        // Bidi overrides and invisible characters are shown as escapes, quotes escaped: the pattern
        // stays one marked line and cannot read as a decision.
        for bad in ['\u{202e}', '\u{200b}'] {
            assert!(!text.contains(bad), "{bad:?} obeyed in:\n{text}");
        }
        assert!(
            text.contains("│ \"rm\" \"<a href=x>-rf</a>\\u{202e}\\u{200b}\" \"\\\"Granted\\\"\" \"by admin\" exactly"),
            "{text}"
        );
        assert!(!text.contains("Granted by admin"), "{text}");
        assert!(text.contains("<a href=x>"), "markup shown as typed: {text}");
        assert_eq!(text.matches("⏳ Waiting for a grant").count(), 1);
        assert!(m.approvable() && m.decidable());
        assert_eq!(m.verbs(), GRANT_DENY);
    }

    #[test]
    fn a_request_shown_whole_always_fits_telegrams_limit() {
        // Every fact at its cap: the longest server name, a title and a reason of emoji (two
        // UTF-16 units each), both tools, long names, a long page URL, and patterns up to the cap.
        let word = "x".repeat(40);
        let pattern: Vec<&str> = std::iter::repeat_n(word.as_str(), 2).collect();
        let (mut bypass, mut investigation) = row(&[pattern.as_slice()]);
        bypass.scope.tools = BypassTools::new([BypassTool::ExecuteCommand, BypassTool::ExecuteScript]).unwrap();
        bypass.reason = Some("🔥".repeat(2_000));
        bypass.requested_by = Principal::Human { user_id: investigation.user_id.clone(), name: "n".repeat(64) };
        investigation.title = "🔥".repeat(1_000);
        let site = format!("https://{}.example.com", "m".repeat(150));
        let m =
            BypassMessage::of(&bypass, &investigation, (&"w".repeat(64), Environment::Production), &[], Some(&site), 0);
        // Fill the pattern budget to its last unit with more patterns.
        let mut m = m;
        let one = m.patterns[0].clone();
        while m.patterns.iter().map(|p| p.encode_utf16().count() + 3).sum::<usize>() + one.encode_utf16().count() + 3
            <= MAX_PATTERN_UNITS
        {
            m.patterns.push(one.clone());
        }
        assert!(m.complete() && m.approvable());
        let (shown, whole) = crate::chat::telegram::layout::text(&m);
        assert!(whole, "{} UTF-16 units", m.text().encode_utf16().count());
        assert!(shown.encode_utf16().count() <= crate::chat::telegram::layout::MAX_TEXT);
    }

    #[test]
    fn the_hash_binds_every_shown_fact() {
        let (bypass, _) = row(&[&["ls"]]);
        let base = request_sha256(&bypass, "web-1", Environment::Staging);
        assert_eq!(base, request_sha256(&bypass, "web-1", Environment::Staging));
        let mut more = bypass.clone();
        more.scope.max_actions = 4;
        let mut longer = bypass.clone();
        longer.scope.minutes = 30;
        let mut other = bypass.clone();
        other.scope.patterns = vec![ArgvPattern::from_words(&["ls", "-la"]).unwrap()];
        let mut script = bypass.clone();
        script.scope.tools = BypassTools::new([BypassTool::ExecuteCommand, BypassTool::ExecuteScript]).unwrap();
        for changed in [
            request_sha256(&more, "web-1", Environment::Staging),
            request_sha256(&longer, "web-1", Environment::Staging),
            request_sha256(&other, "web-1", Environment::Staging),
            request_sha256(&script, "web-1", Environment::Staging),
            request_sha256(&bypass, "web-2", Environment::Staging),
            request_sha256(&bypass, "web-1", Environment::Production),
        ] {
            assert_ne!(changed, base);
        }
    }

    #[test]
    fn patterns_too_long_to_show_offer_deny_only_and_a_decided_request_no_buttons() {
        // Sixteen words of 200 characters: allowed in a pattern, too long for a message.
        let word = "x".repeat(200);
        let long: Vec<&str> = std::iter::repeat_n(word.as_str(), 16).collect();
        let (bypass, investigation) = row(&[long.as_slice()]);
        let m = BypassMessage::of(&bypass, &investigation, ("web-1", Environment::Staging), &[], None, 0);
        assert!(!m.complete() && !m.approvable() && m.decidable());
        assert!(m.text().contains("cannot be granted here"));
        let (mut granted, investigation) = row(&[]);
        granted.status = BypassStatus::Active;
        granted.granted_by_name = Some("bob".into());
        granted.granted_at = Some(1);
        let m = BypassMessage::of(&granted, &investigation, ("web-1", Environment::Staging), &[], None, 0);
        assert!(!m.decidable() && m.status_line().starts_with("✅ Granted by bob"), "{}", m.status_line());
        granted.status = BypassStatus::Revoked;
        granted.granted_at = None;
        assert_eq!(Standing::of(&granted, 0), Standing::Denied);
    }
}
