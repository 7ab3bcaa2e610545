//! Investigations and their second-factor approval bypasses.
//!
//! An investigation is a server-minted handle (`inv_…`) bound to the human, the client (the OAuth
//! grant or API token the assistant uses) and one server: the 2026-07-28 MCP revision has no
//! sessions, so the handle is an ordinary tool argument, never an `Mcp-Session-Id`. A bypass is a
//! grant on one investigation, asked for by the assistant and confirmed by a human with a fresh
//! TOTP code outside the conversation: scope (which exec tools, optional argv prefixes), time
//! and count. The rules that make a grant narrower, never wider, and that say whether a call is
//! covered are pure functions here, so the engine, the CLI and the tests share them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::{BoundedVec, bounded_int, bounded_text};
use crate::ids::{AlertId, BypassId, InvestigationId, ServerId};
use crate::principal::Principal;

bounded_text!(
    /// A short title (1 to 200 characters).
    Title, min 1, max 200
);

/// Arguments of `mttrly_start_investigation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInvestigationInput {
    /// The server under investigation.
    pub server_id: ServerId,
    /// What is being investigated (shown to humans as the assistant's words).
    pub title: Title,
    /// The alert that started it, if any (it must be one of this account's alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Whether an investigation is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationStatus {
    /// Open.
    Open,
    /// Closed; it can no longer acquire a bypass.
    Closed,
}

impl InvestigationStatus {
    /// The name serde writes (and the table stores).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// An investigation: a handle bound to the calling human, their client and one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Investigation {
    /// The handle: pass it as `investigation_id` to the exec tools and the bypass tools.
    pub investigation_id: InvestigationId,
    /// The server.
    pub server_id: ServerId,
    /// Its title.
    pub title: String,
    /// The alert it started from, if any.
    pub alert_id: Option<AlertId>,
    /// Open or closed.
    pub status: InvestigationStatus,
    /// When it was opened.
    pub opened_at: jiff::Timestamp,
    /// The last call made under it (activity keeps it open).
    pub last_activity_at: jiff::Timestamp,
    /// When it closes by itself unless something is done under it before then.
    pub idle_expires_at: jiff::Timestamp,
    /// Whether an existing open investigation (same human, client and server) was resumed
    /// instead of a new one created.
    pub resumed: bool,
    /// What to do next, in words.
    pub next_step: String,
}

/// Arguments of `mttrly_get_investigation_bypass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInvestigationBypassInput {
    /// The investigation.
    pub investigation_id: InvestigationId,
}

bounded_int!(
    /// How long the bypass lasts once granted, in minutes (5 to 60, default 15; central's
    /// `bypass_max_minutes` may cap it lower).
    BypassMinutes: u32, min 5, max 60, default 15
);

bounded_int!(
    /// How many commands may run under the bypass (1 to 50, default 10).
    BypassMaxActions: u32, min 1, max 50, default 10
);

/// An exec tool a bypass can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BypassTool {
    /// `mttrly_execute_command`.
    ExecuteCommand,
    /// `mttrly_execute_script`.
    ExecuteScript,
}

impl BypassTool {
    /// Both tools.
    pub const ALL: [Self; 2] = [Self::ExecuteCommand, Self::ExecuteScript];

    /// The name serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ExecuteCommand => "execute_command",
            Self::ExecuteScript => "execute_script",
        }
    }
}

impl std::str::FromStr for BypassTool {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a bypass tool; the tools are execute_command, execute_script"))
    }
}

/// The tools a bypass covers: at least one, each once, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BypassTools(BTreeSet<BypassTool>);

impl BypassTools {
    /// Checks the set is not empty.
    pub fn new(tools: impl IntoIterator<Item = BypassTool>) -> Result<Self, String> {
        let set: BTreeSet<BypassTool> = tools.into_iter().collect();
        if set.is_empty() {
            return Err("must name at least one tool (execute_command, execute_script)".to_owned());
        }
        Ok(Self(set))
    }

    /// Whether `tool` is covered.
    pub fn contains(&self, tool: BypassTool) -> bool {
        self.0.contains(&tool)
    }

    /// The tools, in order.
    pub fn iter(&self) -> impl Iterator<Item = BypassTool> + '_ {
        self.0.iter().copied()
    }

    /// Whether every tool here is also in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl<'de> Deserialize<'de> for BypassTools {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tools = Vec::<BypassTool>::deserialize(deserializer)?;
        Self::new(tools).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for BypassTools {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BypassTools".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "items": generator.subschema_for::<BypassTool>(),
            "minItems": 1,
            "maxItems": 2,
            "uniqueItems": true
        })
    }
}

bounded_text!(
    /// One argv word of a pattern (1 to 256 characters), compared exactly.
    ArgvWord, min 1, max 256
);

/// The most words an argv prefix may have.
pub const MAX_PREFIX_WORDS: usize = 16;
/// The most patterns a bypass may carry.
pub const MAX_PATTERNS: usize = 20;

/// A narrow-only argument pattern: the argv words a call must start with, compared exactly after
/// the classifier's lexer has resolved quotes and escapes (never a regular expression over the
/// raw text, so `systemctl restart nginx; rm -rf /` can never match `["systemctl", "restart"]`:
/// the lexer refuses it). For `execute_script` the argv is the managed script's name followed by
/// its arguments; an inline script matches no pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ArgvPrefix(Vec<ArgvWord>);

impl ArgvPrefix {
    /// Checks the length (1 to [`MAX_PREFIX_WORDS`] words).
    pub fn new(words: Vec<ArgvWord>) -> Result<Self, String> {
        if words.is_empty() || words.len() > MAX_PREFIX_WORDS {
            return Err(format!("a pattern has 1 to {MAX_PREFIX_WORDS} argv words, got {}", words.len()));
        }
        Ok(Self(words))
    }

    /// Parses words given as plain strings (the CLI's and the dashboard's form fields).
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Result<Self, String> {
        let words = words
            .iter()
            .map(|w| ArgvWord::new(w.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("a word {e}"))?;
        Self::new(words)
    }

    /// The words.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(ArgvWord::as_str)
    }

    /// Whether `argv` starts with exactly these words.
    pub fn matches(&self, argv: &[String]) -> bool {
        argv.len() >= self.0.len() && self.0.iter().zip(argv).all(|(w, a)| w.as_str() == a)
    }

    /// Whether every argv this pattern matches is also matched by `wider` (`wider` is a prefix of
    /// this one).
    pub fn within(&self, wider: &Self) -> bool {
        let argv: Vec<String> = self.0.iter().map(|w| w.as_str().to_owned()).collect();
        wider.matches(&argv)
    }
}

impl std::fmt::Display for ArgvPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = self.words().collect();
        write!(f, "{}", words.join(" "))
    }
}

impl<'de> Deserialize<'de> for ArgvPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let words = Vec::<ArgvWord>::deserialize(deserializer)?;
        Self::new(words).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for ArgvPrefix {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ArgvPrefix".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "items": generator.subschema_for::<ArgvWord>(),
            "minItems": 1,
            "maxItems": MAX_PREFIX_WORDS
        })
    }
}

/// Arguments of `mttrly_acquire_investigation_bypass`. This asks for a grant; a human confirms it
/// with a fresh TOTP code on the CLI or the dashboard (never through the assistant), and may
/// narrow it, never widen it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireInvestigationBypassInput {
    /// The open investigation (its server is the only one the bypass covers).
    pub investigation_id: InvestigationId,
    /// Which exec tools it covers.
    pub tools: BypassTools,
    /// Optional argv prefixes: when given, only calls whose argv starts with one of them are
    /// covered (for example `[["systemctl", "restart", "nginx"]]`). Omit for any call of the
    /// tools. Patterns only ever narrow a grant.
    #[serde(default, skip_serializing_if = "BoundedVec::is_empty")]
    pub patterns: BoundedVec<ArgvPrefix, MAX_PATTERNS>,
    /// How long the bypass lasts once granted.
    #[serde(default)]
    pub duration_minutes: BypassMinutes,
    /// How many commands may run under it.
    #[serde(default)]
    pub max_actions: BypassMaxActions,
    /// Why it is needed, shown to the human who grants it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Arguments of `mttrly_revoke_investigation_bypass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInvestigationBypassInput {
    /// The investigation.
    pub investigation_id: InvestigationId,
    /// Why, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Where a bypass stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BypassStatus {
    /// No bypass was ever asked for on this investigation.
    None,
    /// Asked for; waits for a human to grant it with a TOTP code.
    Pending,
    /// Matching exec calls skip per-command approval.
    Active,
    /// Its time ran out (or the request lapsed before anyone granted it).
    Expired,
    /// Its action budget is used up.
    Exhausted,
    /// Revoked by a person, or by the investigation closing.
    Revoked,
}

impl BypassStatus {
    /// The name serde writes (and the table stores).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Exhausted => "exhausted",
            Self::Revoked => "revoked",
        }
    }
}

impl std::str::FromStr for BypassStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::None, Self::Pending, Self::Active, Self::Expired, Self::Exhausted, Self::Revoked]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown bypass status `{s}`"))
    }
}

/// How a human grants a pending bypass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GrantInstructions {
    /// The command a human runs (it asks for their TOTP code).
    pub cli_command: String,
    /// The dashboard page where a human can grant it, when central knows its public URL.
    pub dashboard_url: Option<String>,
}

/// An investigation's bypass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BypassState {
    /// The investigation.
    pub investigation_id: InvestigationId,
    /// The latest bypass of the investigation, if any was asked for.
    pub bypass_id: Option<BypassId>,
    /// Where it stands (at this moment: an active grant past its time reads `expired`).
    pub status: BypassStatus,
    /// The server it covers.
    pub server_id: ServerId,
    /// The exec tools it covers.
    pub tools: Vec<BypassTool>,
    /// The argv prefixes a call must start with (empty: any call of the tools).
    pub patterns: Vec<ArgvPrefix>,
    /// The human who granted it (always with a fresh second factor).
    pub granted_by: Option<Principal>,
    /// When it was granted.
    pub granted_at: Option<jiff::Timestamp>,
    /// Pending: when the request lapses unless granted; otherwise when the grant ends.
    pub expires_at: Option<jiff::Timestamp>,
    /// How long it lasts once granted, in minutes.
    pub duration_minutes: u32,
    /// How many commands it allows.
    pub max_actions: u32,
    /// How many it has used.
    pub actions_used: u32,
    /// How many remain (0 unless active).
    pub remaining_actions: u32,
    /// While pending: how a human grants it.
    pub grant: Option<GrantInstructions>,
    /// What to do next, in words.
    pub next_step: String,
}

/// The scope of a grant: what a human confirms, and what the engine checks each call against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantScope {
    /// The exec tools covered.
    pub tools: BypassTools,
    /// Argv prefixes (empty: any call of the tools).
    pub patterns: Vec<ArgvPrefix>,
    /// Minutes it lasts once granted.
    pub minutes: u32,
    /// Commands it allows.
    pub max_actions: u32,
}

/// One exec call, as a bypass sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BypassCall {
    /// A command: its argv as the classifier's lexer reads it, `None` when it uses shell
    /// features beyond words and quotes (then it matches no pattern).
    Command {
        /// The argv.
        argv: Option<Vec<String>>,
    },
    /// A managed script by name with its arguments.
    ManagedScript {
        /// The name followed by the arguments.
        argv: Vec<String>,
    },
    /// An inline script (matches no pattern).
    InlineScript,
}

impl BypassCall {
    /// The tool making the call.
    pub const fn tool(&self) -> BypassTool {
        match self {
            Self::Command { .. } => BypassTool::ExecuteCommand,
            Self::ManagedScript { .. } | Self::InlineScript => BypassTool::ExecuteScript,
        }
    }

    fn argv(&self) -> Option<&[String]> {
        match self {
            Self::Command { argv } => argv.as_deref(),
            Self::ManagedScript { argv } => Some(argv),
            Self::InlineScript => None,
        }
    }
}

impl GrantScope {
    /// Whether `call` is within this scope: its tool is covered and, when there are patterns, its
    /// argv starts with one of them. Time, count and server are the engine's to check.
    pub fn covers(&self, call: &BypassCall) -> bool {
        if !self.tools.contains(call.tool()) {
            return false;
        }
        if self.patterns.is_empty() {
            return true;
        }
        call.argv().is_some_and(|argv| self.patterns.iter().any(|p| p.matches(argv)))
    }

    /// Checks that `self` (what a human grants) is no wider than `requested` (what the assistant
    /// asked for): no more minutes or actions, no tool it did not ask for, and every call this
    /// scope covers is covered by the request (each pattern lies within one requested pattern;
    /// no patterns only when the request had none). Returns every widening at once.
    pub fn narrows(&self, requested: &Self) -> Result<(), Vec<String>> {
        let mut wider = Vec::new();
        // Not wider, but useless and harmful: an active grant with no time or no slot blocks a
        // new request on the investigation (`BYPASS_ALREADY_ACTIVE`) until it lapses.
        if self.minutes < BypassMinutes::MIN {
            wider.push(format!("a grant lasts at least {} minutes", BypassMinutes::MIN));
        }
        if self.max_actions < 1 {
            wider.push("a grant allows at least one command".to_owned());
        }
        if self.minutes > requested.minutes {
            wider.push(format!("{} minutes is more than the {} asked for", self.minutes, requested.minutes));
        }
        if self.max_actions > requested.max_actions {
            wider.push(format!("{} actions is more than the {} asked for", self.max_actions, requested.max_actions));
        }
        if !self.tools.is_subset(&requested.tools) {
            wider.push("it covers a tool that was not asked for".to_owned());
        }
        if !requested.patterns.is_empty() {
            if self.patterns.is_empty() {
                wider.push("dropping the requested patterns would allow any call".to_owned());
            }
            for p in &self.patterns {
                if !requested.patterns.iter().any(|r| p.within(r)) {
                    wider.push(format!("pattern `{p}` is not within any requested pattern"));
                }
            }
        }
        if wider.is_empty() { Ok(()) } else { Err(wider) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(words: &[&str]) -> ArgvPrefix {
        ArgvPrefix::from_words(words).unwrap()
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn scope(tools: &[BypassTool], patterns: &[&[&str]], minutes: u32, max: u32) -> GrantScope {
        GrantScope {
            tools: BypassTools::new(tools.iter().copied()).unwrap(),
            patterns: patterns.iter().map(|p| prefix(p)).collect(),
            minutes,
            max_actions: max,
        }
    }

    #[test]
    fn a_prefix_matches_whole_words_only() {
        let p = prefix(&["systemctl", "restart"]);
        assert!(p.matches(&argv(&["systemctl", "restart", "nginx"])));
        assert!(p.matches(&argv(&["systemctl", "restart"])));
        assert!(!p.matches(&argv(&["systemctl"])));
        assert!(!p.matches(&argv(&["systemctl", "restarting"])));
        assert!(!p.matches(&argv(&["/bin/systemctl", "restart"])));
    }

    #[test]
    fn coverage_needs_the_tool_and_with_patterns_a_matching_argv() {
        let any_command = scope(&[BypassTool::ExecuteCommand], &[], 15, 3);
        assert!(any_command.covers(&BypassCall::Command { argv: None }), "no patterns: any command");
        assert!(!any_command.covers(&BypassCall::InlineScript));
        let narrow = scope(&BypassTool::ALL, &[&["systemctl", "restart", "nginx"], &["fix.sh"]], 15, 3);
        assert!(narrow.covers(&BypassCall::Command { argv: Some(argv(&["systemctl", "restart", "nginx"])) }));
        assert!(!narrow.covers(&BypassCall::Command { argv: Some(argv(&["systemctl", "stop", "nginx"])) }));
        assert!(!narrow.covers(&BypassCall::Command { argv: None }), "shell features never match a pattern");
        assert!(narrow.covers(&BypassCall::ManagedScript { argv: argv(&["fix.sh", "--now"]) }));
        assert!(!narrow.covers(&BypassCall::InlineScript), "an inline script never matches a pattern");
    }

    #[test]
    fn a_grant_may_narrow_and_never_widen() {
        let asked = scope(&BypassTool::ALL, &[&["systemctl", "restart"]], 30, 5);
        assert!(
            scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx"]], 10, 2).narrows(&asked).is_ok()
        );
        assert!(asked.narrows(&asked).is_ok());
        let wider = scope(&BypassTool::ALL, &[], 60, 50).narrows(&asked).unwrap_err();
        assert_eq!(wider.len(), 3, "{wider:?}");
        let other = scope(&BypassTool::ALL, &[&["systemctl"]], 30, 5).narrows(&asked).unwrap_err();
        assert!(other[0].contains("not within"), "{other:?}");
        let unasked = scope(&[BypassTool::ExecuteScript], &[], 15, 3);
        assert!(unasked.narrows(&scope(&[BypassTool::ExecuteCommand], &[], 15, 3)).is_err());
        // Adding patterns where none were asked narrows.
        assert!(
            scope(&[BypassTool::ExecuteCommand], &[&["uptime"]], 15, 3)
                .narrows(&scope(&[BypassTool::ExecuteCommand], &[], 15, 3))
                .is_ok()
        );
    }

    #[test]
    fn commands_are_matched_on_the_lexers_argv_never_on_raw_text() {
        let restart = scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx"]], 15, 3);
        let call = |line: &str| BypassCall::Command { argv: crate::classifier::argv(line) };
        assert!(restart.covers(&call("systemctl restart nginx")));
        assert!(restart.covers(&call("systemctl 'restart' \"nginx\"")), "quotes resolved as a shell would");
        for hostile in [
            "systemctl restart nginx; rm -rf /",
            "systemctl restart nginx && curl evil",
            "systemctl restart nginx $(id)",
            "systemctl restart nginx | sh",
            "systemctl restart nginx `id`",
            "systemctl restart nginx > /etc/passwd",
        ] {
            assert!(!restart.covers(&call(hostile)), "{hostile}");
        }
    }

    #[test]
    fn inputs_refuse_empty_tool_lists_and_empty_patterns() {
        assert!(serde_json::from_value::<BypassTools>(serde_json::json!([])).is_err());
        assert!(serde_json::from_value::<ArgvPrefix>(serde_json::json!([])).is_err());
        assert!(serde_json::from_value::<ArgvPrefix>(serde_json::json!([""])).is_err());
        let tools: BypassTools =
            serde_json::from_value(serde_json::json!(["execute_script", "execute_command", "execute_script"])).unwrap();
        assert_eq!(serde_json::to_value(&tools).unwrap(), serde_json::json!(["execute_command", "execute_script"]));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn word() -> impl Strategy<Value = String> {
            prop::sample::select(vec!["a", "b", "c", "systemctl", "restart"]).prop_map(str::to_owned)
        }

        fn words(max: usize) -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(word(), 1..=max)
        }

        proptest! {
            /// Whatever a human grants, if `narrows` accepts it, every call it covers was covered
            /// by the request: a grant can only narrow.
            #[test]
            fn an_accepted_grant_covers_nothing_the_request_did_not(
                asked in prop::collection::vec(words(3), 0..3),
                granted in prop::collection::vec(words(4), 0..3),
                call in prop::collection::vec(word(), 0..5),
            ) {
                let to_scope = |ps: &[Vec<String>]| GrantScope {
                    tools: BypassTools::new([BypassTool::ExecuteCommand]).unwrap(),
                    patterns: ps.iter().map(|p| ArgvPrefix::from_words(p).unwrap()).collect(),
                    minutes: 15,
                    max_actions: 3,
                };
                let (asked, granted) = (to_scope(&asked), to_scope(&granted));
                let call = BypassCall::Command { argv: Some(call) };
                if granted.narrows(&asked).is_ok() && granted.covers(&call) {
                    prop_assert!(asked.covers(&call));
                }
            }
        }
    }
}
