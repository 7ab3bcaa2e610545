//! Investigations and their second-factor approval bypasses.
//!
//! An investigation is a server-minted handle (`inv_…`) bound to the human, the client (the OAuth
//! grant or API token the assistant uses) and one server: the 2026-07-28 MCP revision has no
//! sessions, so the handle is an ordinary tool argument, never an `Mcp-Session-Id`. A bypass is a
//! grant on one investigation, asked for by the assistant and confirmed by a human with a fresh
//! TOTP code outside the conversation: scope (which exec tools, optional argv patterns: exact
//! unless explicitly a prefix), time
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

/// The most words a pattern may have (not counting a final [`ANY_FURTHER`]).
pub const MAX_PATTERN_WORDS: usize = 16;
/// The most patterns a bypass may carry.
pub const MAX_PATTERNS: usize = 20;
/// As a pattern's last word, this makes it a prefix pattern: "and any further arguments" (which
/// must still be harmless for the program, see [`ArgvPattern`]). Anywhere else it is refused, so
/// a literal `*` argument cannot be granted exactly as a last word.
pub const ANY_FURTHER: &str = "*";

/// A narrow-only argument pattern, compared with a call's argv after the classifier's lexer has
/// resolved quotes and escapes (never a regular expression over the raw text, and never a
/// command that uses any shell feature: `;`, `&&`, `|`, `$(…)`, newlines, redirections, globs,
/// so a compound command is never covered, not even when each of its parts would be).
///
/// **Exact by default**: `["systemctl", "restart", "nginx"]` covers that argv and nothing else
/// (not `systemctl restart nginx sshd`). Ending the list with the word `*` asks for a **prefix**
/// instead (`["systemctl", "restart", "*"]`), which the human is shown as "and any further
/// arguments"; even then each further word must be known to be harmless for that program
/// ([`classifier::harmless_extension`](crate::classifier::harmless_extension): a read-only
/// result, or plain unit/container names after a known verb such as `systemctl restart`), so
/// `find /var/log *` never covers `find /var/log -exec sh -c …` and `env *` covers nothing more
/// than `env`. Words are compared exactly: `/bin/systemctl` is not `systemctl` (a pattern names
/// the program as the call spells it), a Unicode lookalike is another word, and a leading
/// `NAME=value` (an environment assignment) is refused in a pattern. For `execute_script` the
/// argv is the managed script's name followed by its arguments; under a prefix its further
/// arguments must be plain names; an inline script matches no pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgvPattern {
    words: Vec<ArgvWord>,
    prefix: bool,
}

/// What a pattern is matched against: the extra words of a prefix are judged per target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternTarget {
    /// A command line's argv: extra words judged by the classifier.
    Command,
    /// A managed script's name and arguments: extra words must be plain names.
    ManagedScript,
}

impl ArgvPattern {
    /// Checks the words: 1 to [`MAX_PATTERN_WORDS`], no control characters (the lexer never
    /// yields one, so such a word could never match), no `*` word, no leading `NAME=value`.
    pub fn new(words: Vec<ArgvWord>, prefix: bool) -> Result<Self, String> {
        if words.is_empty() || words.len() > MAX_PATTERN_WORDS {
            return Err(format!("a pattern has 1 to {MAX_PATTERN_WORDS} argv words, got {}", words.len()));
        }
        if words.iter().any(|w| w.as_str() == ANY_FURTHER) {
            return Err(format!("`{ANY_FURTHER}` may only be a pattern's last word (it makes the pattern a prefix)"));
        }
        if words.iter().any(|w| w.as_str().chars().any(char::is_control)) {
            return Err("a pattern word has a control character, which no command can match".to_owned());
        }
        if words[0].as_str().contains('=') {
            return Err(
                "a pattern cannot start with `NAME=value`: it would change the command's environment".to_owned()
            );
        }
        Ok(Self { words, prefix })
    }

    /// Parses words given as plain strings (the CLI's and the dashboard's fields, the stored
    /// column): a last word [`ANY_FURTHER`] makes it a prefix.
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Result<Self, String> {
        let (words, prefix) = match words.split_last() {
            Some((last, rest)) if last.as_ref() == ANY_FURTHER => (rest, true),
            _ => (words, false),
        };
        let words = words
            .iter()
            .map(|w| ArgvWord::new(w.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("a word {e}"))?;
        Self::new(words, prefix)
    }

    /// Parses a line typed by a person (`systemctl restart nginx`, or `systemctl restart *` for
    /// a prefix) with the classifier's lexer: quotes resolve as a shell would; shell features
    /// are refused.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (body, prefix) = match line.strip_suffix(ANY_FURTHER) {
            Some(body) if body.is_empty() || body.ends_with([' ', '\t']) => (body, true),
            _ => (line, false),
        };
        let words = crate::classifier::argv(body).ok_or_else(|| {
            format!("pattern {:?} must be plain words (no shell features)", crate::display::exact(line))
        })?;
        let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
        if prefix {
            words.push(ANY_FURTHER);
        }
        Self::from_words(&words)
    }

    /// The words (without a final [`ANY_FURTHER`]).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(ArgvWord::as_str)
    }

    /// Whether further arguments may follow (an explicit opt-in).
    pub const fn is_prefix(&self) -> bool {
        self.prefix
    }

    fn owned(&self) -> Vec<String> {
        self.words().map(str::to_owned).collect()
    }

    /// Why `argv` is not covered, or `Ok`: exactly the words, or (a prefix) the words followed
    /// by further words each harmless for `target`.
    pub fn check(&self, argv: &[String], target: PatternTarget) -> Result<(), String> {
        let n = self.words.len();
        if argv.len() < n || !self.words.iter().zip(argv).all(|(w, a)| w.as_str() == a) {
            return Err("its argv does not start with the pattern's words".to_owned());
        }
        let extra = &argv[n..];
        if extra.is_empty() {
            return Ok(());
        }
        if !self.prefix {
            return Err("the pattern is exact and the call has further arguments".to_owned());
        }
        match target {
            PatternTarget::Command => crate::classifier::harmless_extension(&argv[..n], extra),
            PatternTarget::ManagedScript => match extra.iter().find(|w| !crate::classifier::plain_operand(w)) {
                None => Ok(()),
                Some(w) => Err(format!("`{}` is not a plain name", crate::display::exact(w))),
            },
        }
    }

    /// Whether `argv` is covered (see [`Self::check`]).
    pub fn matches(&self, argv: &[String], target: PatternTarget) -> bool {
        self.check(argv, target).is_ok()
    }

    /// Whether every argv this pattern covers for each of `targets` is also covered by `wider`.
    /// Exact within exact: the same words. Within a prefix: `wider` covers this pattern's words;
    /// and when this is a prefix too, whatever it lets follow, `wider` lets follow as well: a
    /// read-only result is the same whole argv under both, and further words this prefix accepts
    /// by name (after a known verb) are accepted by `wider` only with the same program and verb
    /// and plain names in between.
    pub fn within(&self, wider: &Self, targets: &[PatternTarget]) -> bool {
        let own = self.owned();
        if !wider.prefix {
            return !self.prefix && self.words == wider.words;
        }
        if !targets.iter().all(|t| wider.matches(&own, *t)) {
            return false;
        }
        if !self.prefix || !targets.contains(&PatternTarget::Command) {
            return true;
        }
        let outer = wider.owned();
        match crate::classifier::extension_key(&own) {
            None => true,
            Some(key) => {
                crate::classifier::extension_key(&outer) == Some(key)
                    && crate::classifier::names_extension(&outer, &own[outer.len()..]).is_ok()
            }
        }
    }

    /// How a person sees it: every word in double quotes (a `"` or `\\` inside escaped, anything
    /// but printable ASCII as a visible escape, so spaces and lookalikes show), then "and any
    /// further arguments" for a prefix, or "exactly" otherwise.
    pub fn shown(&self) -> String {
        let mut out = self
            .words()
            .map(|w| format!("\"{}\"", crate::display::exact(&w.replace('\\', "\\\\").replace('"', "\\\""))))
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(if self.prefix { " and any further arguments" } else { " exactly" });
        out
    }
}

impl std::fmt::Display for ArgvPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Serialize for ArgvPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut words: Vec<&str> = self.words().collect();
        if self.prefix {
            words.push(ANY_FURTHER);
        }
        words.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ArgvPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let words = Vec::<String>::deserialize(deserializer)?;
        Self::from_words(&words).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for ArgvPattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ArgvPattern".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "items": generator.subschema_for::<ArgvWord>(),
            "minItems": 1,
            "maxItems": MAX_PATTERN_WORDS + 1
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
    /// Optional argv patterns: when given, only calls whose argv one of them covers run under the
    /// bypass. A pattern is **exact** (`["systemctl", "restart", "nginx"]` covers exactly that
    /// command, not `systemctl restart nginx sshd`); ending it with the word `"*"` makes it a
    /// **prefix**, shown to the human as "and any further arguments"
    /// (`["systemctl", "restart", "*"]`), whose further arguments must still be harmless for the
    /// program (plain unit or container names after `systemctl`/`docker` `start|stop|restart`,
    /// or a read-only result), otherwise the call waits for approval. Words are compared after
    /// shell quoting is resolved; commands using `;`, `&&`, `|`, `$(…)`, newlines or
    /// redirections never match; `/bin/systemctl` is not `systemctl`. Omit for any call of the
    /// tools. Patterns only ever narrow a grant.
    #[serde(default, skip_serializing_if = "BoundedVec::is_empty")]
    pub patterns: BoundedVec<ArgvPattern, MAX_PATTERNS>,
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
    /// The argv patterns a call must match, each exact or (ending in `"*"`) a prefix (empty: any
    /// call of the tools).
    pub patterns: Vec<ArgvPattern>,
    /// Why the assistant said it needs the bypass (its own words, redacted, unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

/// How an action ran without a per-command approval: under an investigation's bypass, granted
/// by a human with a fresh second factor. Shown wherever the action is, instead of an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RanUnderBypass {
    /// The bypass.
    pub bypass_id: BypassId,
    /// Its investigation.
    pub investigation_id: InvestigationId,
    /// The human who granted it.
    pub granted_by: Option<Principal>,
    /// When they granted it.
    pub granted_at: Option<jiff::Timestamp>,
}

/// The scope of a grant: what a human confirms, and what the engine checks each call against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantScope {
    /// The exec tools covered.
    pub tools: BypassTools,
    /// Argv patterns, exact or prefix (empty: any call of the tools).
    pub patterns: Vec<ArgvPattern>,
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

    fn argv(&self) -> Option<(&[String], PatternTarget)> {
        match self {
            Self::Command { argv } => argv.as_deref().map(|a| (a, PatternTarget::Command)),
            Self::ManagedScript { argv } => Some((argv, PatternTarget::ManagedScript)),
            Self::InlineScript => None,
        }
    }
}

impl GrantScope {
    /// Whether `call` is within this scope: its tool is covered and, when there are patterns, one
    /// of them covers its argv (see [`ArgvPattern`]). Time, count and server are the engine's to
    /// check.
    pub fn covers(&self, call: &BypassCall) -> bool {
        if !self.tools.contains(call.tool()) {
            return false;
        }
        if self.patterns.is_empty() {
            return true;
        }
        call.argv().is_some_and(|(argv, target)| self.patterns.iter().any(|p| p.matches(argv, target)))
    }

    /// What a pattern is matched against under this scope's tools.
    fn targets(&self) -> Vec<PatternTarget> {
        self.tools
            .iter()
            .map(|t| match t {
                BypassTool::ExecuteCommand => PatternTarget::Command,
                BypassTool::ExecuteScript => PatternTarget::ManagedScript,
            })
            .collect()
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
            let targets = self.targets();
            for p in &self.patterns {
                if !requested.patterns.iter().any(|r| p.within(r, &targets)) {
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

    fn pattern(words: &[&str]) -> ArgvPattern {
        ArgvPattern::from_words(words).unwrap()
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn scope(tools: &[BypassTool], patterns: &[&[&str]], minutes: u32, max: u32) -> GrantScope {
        GrantScope {
            tools: BypassTools::new(tools.iter().copied()).unwrap(),
            patterns: patterns.iter().map(|p| pattern(p)).collect(),
            minutes,
            max_actions: max,
        }
    }

    fn call(line: &str) -> BypassCall {
        BypassCall::Command { argv: crate::classifier::argv(line) }
    }

    #[test]
    fn a_pattern_is_exact_unless_it_ends_in_a_star() {
        let exact = pattern(&["systemctl", "restart", "nginx"]);
        assert!(!exact.is_prefix());
        assert!(exact.matches(&argv(&["systemctl", "restart", "nginx"]), PatternTarget::Command));
        assert!(!exact.matches(&argv(&["systemctl", "restart", "nginx", "sshd"]), PatternTarget::Command));
        assert!(!exact.matches(&argv(&["systemctl", "restart"]), PatternTarget::Command));
        assert!(!exact.matches(&argv(&["systemctl", "restarting", "nginx"]), PatternTarget::Command));
        assert!(!exact.matches(&argv(&["/bin/systemctl", "restart", "nginx"]), PatternTarget::Command));
        let prefix = pattern(&["systemctl", "restart", "*"]);
        assert!(prefix.is_prefix());
        assert!(prefix.matches(&argv(&["systemctl", "restart", "nginx", "sshd"]), PatternTarget::Command));
        assert!(prefix.matches(&argv(&["systemctl", "restart"]), PatternTarget::Command));
        assert_eq!(serde_json::to_value(&prefix).unwrap(), serde_json::json!(["systemctl", "restart", "*"]));
        assert_eq!(serde_json::to_value(&exact).unwrap(), serde_json::json!(["systemctl", "restart", "nginx"]));
    }

    #[test]
    fn a_prefix_never_lets_further_arguments_become_another_command() {
        for (granted, line) in [
            (&["find", "/var/log", "*"][..], "find /var/log -exec sh -c id ';'"),
            (&["find", "/var/log", "*"][..], "find /var/log -delete"),
            (
                &["tar", "cf", "/tmp/x.tar", "*"][..],
                "tar cf /tmp/x.tar /etc --checkpoint=1 --checkpoint-action=exec=sh",
            ),
            (&["awk", "*"][..], "awk 'BEGIN{system(\"id\")}'"),
            (&["less", "*"][..], "less /etc/shadow"),
            (&["git", "*"][..], "git -c core.pager=sh log"),
            (&["rsync", "-a", "*"][..], "rsync -a -e 'sh -c id' a b"),
            (&["env", "*"][..], "env sh"),
            (&["xargs", "*"][..], "xargs rm"),
            (&["sudo", "*"][..], "sudo reboot"),
            (&["nice", "*"][..], "nice reboot"),
            (&["timeout", "5", "*"][..], "timeout 5 reboot"),
            (&["nohup", "*"][..], "nohup reboot"),
            (&["sh", "-c", "*"][..], "sh -c reboot"),
            (&["systemctl", "*"][..], "systemctl reboot"),
            (&["systemctl", "restart", "*"][..], "systemctl restart -H evil nginx"),
            (&["systemctl", "start", "*"][..], "systemctl start reboot.target"),
            (&["docker", "*"][..], "docker run --privileged alpine"),
            (&["docker", "restart", "*"][..], "docker restart web --help"),
            (&["cat", "*"][..], "cat /etc/shadow"),
        ] {
            let s = scope(&[BypassTool::ExecuteCommand], &[granted], 15, 3);
            assert!(!s.covers(&call(line)), "{granted:?} must not cover {line}");
        }
        let restart = scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "*"]], 15, 3);
        assert!(restart.covers(&call("systemctl restart nginx php-fpm.service --no-block")));
        let logs = scope(&[BypassTool::ExecuteCommand], &[&["journalctl", "*"]], 15, 3);
        assert!(logs.covers(&call("journalctl -u nginx -n 50")), "a read-only result may follow");
    }

    #[test]
    fn every_part_of_a_compound_command_or_none() {
        let s = scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx"], &["uptime"]], 15, 3);
        for hostile in [
            "systemctl restart nginx; uptime",
            "systemctl restart nginx && uptime",
            "systemctl restart nginx || uptime",
            "systemctl restart nginx | uptime",
            "systemctl restart nginx\nuptime",
            "systemctl restart nginx $(uptime)",
            "systemctl restart nginx `uptime`",
            "systemctl restart nginx > /etc/passwd",
            "systemctl restart nginx &",
            "FOO=1 systemctl restart nginx",
            "LD_PRELOAD=/tmp/x.so systemctl restart nginx",
            "/bin/systemctl restart nginx",
            "systemctl restart ngin\u{445}",
            "systemctl restart 'nginx sshd'",
            "systemctl\u{a0}restart nginx",
        ] {
            assert!(!s.covers(&call(hostile)), "{hostile:?}");
        }
        assert!(s.covers(&call("systemctl 'restart' \"nginx\"")), "quotes resolve as a shell's would");
        assert!(s.covers(&call("  systemctl   restart nginx ")));
    }

    #[test]
    fn managed_scripts_take_only_plain_names_after_a_prefix() {
        let s = scope(&[BypassTool::ExecuteScript], &[&["fix.sh", "*"], &["exact.sh"]], 15, 3);
        let script = |w: &[&str]| BypassCall::ManagedScript { argv: argv(w) };
        assert!(s.covers(&script(&["fix.sh", "nginx", "eu-1"])));
        assert!(!s.covers(&script(&["fix.sh", "--force"])));
        assert!(!s.covers(&script(&["fix.sh", "a;b"])));
        assert!(!s.covers(&script(&["exact.sh", "x"])));
        assert!(s.covers(&script(&["exact.sh"])));
        assert!(!s.covers(&BypassCall::InlineScript), "an inline script never matches a pattern");
    }

    #[test]
    fn coverage_needs_the_tool_and_with_patterns_a_matching_argv() {
        let any_command = scope(&[BypassTool::ExecuteCommand], &[], 15, 3);
        assert!(any_command.covers(&BypassCall::Command { argv: None }), "no patterns: any command");
        assert!(!any_command.covers(&BypassCall::InlineScript));
        let narrow = scope(&BypassTool::ALL, &[&["systemctl", "restart", "nginx"], &["fix.sh", "*"]], 15, 3);
        assert!(narrow.covers(&call("systemctl restart nginx")));
        assert!(!narrow.covers(&call("systemctl stop nginx")));
        assert!(!narrow.covers(&BypassCall::Command { argv: None }), "shell features never match a pattern");
        assert!(narrow.covers(&BypassCall::ManagedScript { argv: argv(&["fix.sh", "now"]) }));
    }

    #[test]
    fn a_grant_may_narrow_and_never_widen() {
        let asked = scope(&BypassTool::ALL, &[&["systemctl", "restart", "*"]], 30, 5);
        let exact = scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx"]], 10, 2);
        assert!(exact.narrows(&asked).is_ok());
        let narrower_prefix = scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx", "*"]], 10, 2);
        assert!(narrower_prefix.narrows(&asked).is_ok());
        assert!(asked.narrows(&asked).is_ok());
        let wider = scope(&BypassTool::ALL, &[], 60, 50).narrows(&asked).unwrap_err();
        assert_eq!(wider.len(), 3, "{wider:?}");
        let other = scope(&BypassTool::ALL, &[&["systemctl", "*"]], 30, 5).narrows(&asked).unwrap_err();
        assert!(other[0].contains("not within"), "{other:?}");
        // An exact request cannot be granted as a prefix, nor as anything longer.
        let asked_exact = scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx"]], 15, 3);
        assert!(
            scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx", "*"]], 15, 3)
                .narrows(&asked_exact)
                .is_err()
        );
        assert!(
            scope(&[BypassTool::ExecuteCommand], &[&["systemctl", "restart", "nginx", "sshd"]], 15, 3)
                .narrows(&asked_exact)
                .is_err()
        );
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
    fn inputs_refuse_what_could_mislead_or_never_match() {
        assert!(serde_json::from_value::<BypassTools>(serde_json::json!([])).is_err());
        for bad in [
            serde_json::json!([]),
            serde_json::json!([""]),
            serde_json::json!(["*"]),
            serde_json::json!(["a", "*", "b"]),
            serde_json::json!(["FOO=1", "systemctl"]),
            serde_json::json!(["systemctl", "restart\nreboot"]),
        ] {
            assert!(serde_json::from_value::<ArgvPattern>(bad.clone()).is_err(), "{bad}");
        }
        let tools: BypassTools =
            serde_json::from_value(serde_json::json!(["execute_script", "execute_command", "execute_script"])).unwrap();
        assert_eq!(serde_json::to_value(&tools).unwrap(), serde_json::json!(["execute_command", "execute_script"]));
    }

    #[test]
    fn typed_lines_and_how_a_person_sees_them() {
        assert_eq!(ArgvPattern::parse_line("systemctl restart *").unwrap(), pattern(&["systemctl", "restart", "*"]));
        assert_eq!(
            ArgvPattern::parse_line("systemctl 'restart' nginx").unwrap(),
            pattern(&["systemctl", "restart", "nginx"])
        );
        assert!(ArgvPattern::parse_line("systemctl restart nginx*").is_err(), "a glob, not the prefix word");
        assert!(ArgvPattern::parse_line("uptime; reboot").is_err());
        assert_eq!(
            pattern(&["systemctl", "restart", "*"]).shown(),
            r#""systemctl" "restart" and any further arguments"#
        );
        assert_eq!(pattern(&["a b", "x\"y"]).shown(), r#""a b" "x\"y" exactly"#);
        assert_eq!(pattern(&["ngin\u{445}"]).shown(), r#""ngin\u{445}" exactly"#);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn word() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "systemctl",
                "restart",
                "start",
                "nginx",
                "sshd",
                "reboot.target",
                "-H",
                "--no-block",
                "journalctl",
                "-u",
                "-n",
                "5",
                "find",
                "-exec",
                "sh",
                "-c",
                "env",
                "a",
                "/bin/systemctl",
                "docker",
                "web",
            ])
            .prop_map(str::to_owned)
        }

        fn words(max: usize) -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(word(), 1..=max)
        }

        fn to_pattern((words, prefix): &(Vec<String>, bool)) -> ArgvPattern {
            let mut w = words.clone();
            if *prefix {
                w.push(ANY_FURTHER.to_owned());
            }
            ArgvPattern::from_words(&w).unwrap()
        }

        fn to_scope(ps: &[(Vec<String>, bool)]) -> GrantScope {
            GrantScope {
                tools: BypassTools::new([BypassTool::ExecuteCommand]).unwrap(),
                patterns: ps.iter().map(to_pattern).collect(),
                minutes: 15,
                max_actions: 3,
            }
        }

        proptest! {
            /// Whatever a human grants, if `narrows` accepts it, every call it covers was covered
            /// by the request: a grant can only narrow.
            #[test]
            fn an_accepted_grant_covers_nothing_the_request_did_not(
                asked in prop::collection::vec((words(3), any::<bool>()), 0..3),
                granted in prop::collection::vec((words(4), any::<bool>()), 0..3),
                call in prop::collection::vec(word(), 0..6),
            ) {
                let (asked, granted) = (to_scope(&asked), to_scope(&granted));
                let call = BypassCall::Command { argv: Some(call) };
                if granted.narrows(&asked).is_ok() && granted.covers(&call) {
                    prop_assert!(asked.covers(&call));
                }
            }

            /// Under an exact pattern, no extra argv is ever covered.
            #[test]
            fn an_exact_pattern_covers_its_words_and_nothing_longer(
                base in words(4),
                extra in prop::collection::vec(any::<String>(), 1..4),
            ) {
                let p = to_pattern(&(base.clone(), false));
                prop_assert!(p.matches(&base, PatternTarget::Command));
                let longer: Vec<String> = base.iter().cloned().chain(extra).collect();
                prop_assert!(!p.matches(&longer, PatternTarget::Command));
                prop_assert!(!p.matches(&longer, PatternTarget::ManagedScript));
            }

            /// Under a prefix pattern, further words that are options no program entry lists,
            /// or shell words, are never covered.
            #[test]
            fn a_prefix_never_covers_an_unknown_option_or_shell_word(
                base in words(3),
                before in prop::collection::vec(word(), 0..3),
                hostile in prop::sample::select(vec!["-exec", "--checkpoint-action=exec=sh", "-c", "-e", "!sh", "sh -c id", ";", "$(id)", "/tmp/x"]),
            ) {
                let p = to_pattern(&(base.clone(), true));
                let argv: Vec<String> = base.into_iter().chain(before).chain([hostile.to_owned()]).collect();
                prop_assert!(!p.matches(&argv, PatternTarget::Command) || crate::classifier::classify(&argv.join(" ")).class == crate::classifier::CommandClass::ReadOnly);
                prop_assert!(!p.matches(&argv, PatternTarget::ManagedScript));
            }
        }
    }
}
