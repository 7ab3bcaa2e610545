//! The shared state of a running central.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::agents::registry::AgentRegistry;
use crate::alerts::engine::AlertEngine;
use crate::config::Config;
use crate::db::Db;
use crate::db::alerts::AlertChange;

/// Everything the request handlers share.
pub struct Central {
    /// The configuration it started with.
    pub config: Config,
    /// The approval rules, checked from `config.approvals` at start: the one place the action
    /// engine asks which rule governs an action.
    pub approvals: mttrly_core::approval::config::ApprovalPolicy,
    /// The database.
    pub db: Db,
    /// Live agents.
    pub agents: AgentRegistry,
    /// The alert rules' state.
    pub alerts: AlertEngine,
    /// Heartbeats held just under an alert rule's threshold (proactive near-miss events).
    pub near_misses: crate::proactive::near_miss::NearMisses,
    /// The per-server bound on agents' proactive events and detected deploys.
    pub report_limits: crate::proactive::flood::ReportLimits,
    /// The URL agents and the CLI reach central's gRPC at.
    pub grpc_url: String,
    /// Central's TLS material, when it serves TLS.
    pub tls: Option<crate::tls::TlsMaterial>,
    /// The audit log.
    pub audit: crate::audit::AuditLog,
    /// Tool-call rate limits.
    pub limits: crate::ratelimit::Limits,
    /// Where approval prompts go, and the submitters waiting on them.
    pub prompts: Arc<crate::notify::Prompts>,
    /// Every audited event, published once its row is durable.
    pub events: crate::events::Bus,
    /// Per-server cooldowns of diagnostics and live discovery.
    pub cooldowns: Cooldowns,
    /// Every stored notification, for this process's listeners (MCP pushes, chat delivery).
    pub warroom: crate::warroom::feed::Feed,
    /// Resolved API tokens; whatever revokes or narrows a credential calls its invalidation hook.
    pub auth_cache: crate::auth_cache::AuthCache,
    /// When API tokens were last used, written at most once a minute per token.
    pub token_usage: crate::tokens::Usage,
    /// Single sign-on through the `[oidc]` provider, set once at start when configured (discovery
    /// and keys already fetched).
    pub oidc: std::sync::OnceLock<Arc<crate::signin::oidc::client::OidcClient>>,
    /// `mttrly-cli login`'s guessing limits: device logins started, wrong codes per person.
    pub device_logins: crate::signin::device_flow::Guards,
    /// The key TOTP secrets are sealed with (the data directory's `second_factor.key`).
    pub second_factor_key: crate::second_factor::KeyCell,
    /// The human channels this central offers for decisions: the CLI, the dashboard (central
    /// always serves HTTP), and each configured chat provider. Refusals and instructions name
    /// only these.
    pub decision_channels: Vec<mttrly_core::Source>,
    /// The chat router, when a chat provider is configured (`[telegram]`, `[slack]`).
    pub chat: Option<Arc<crate::chat::Chat>>,
    /// The Slack app (`[slack]`), set once at start when configured: the interaction and
    /// slash-command routes verify requests with its signing secret and answer through it.
    pub slack: std::sync::OnceLock<Arc<crate::chat::slack::Slack>>,
    /// The Telegram bot (`[telegram]`), set once at start when configured: `POST /hooks/telegram`
    /// reaches it in webhook mode.
    pub telegram: std::sync::OnceLock<Arc<crate::chat::telegram::Telegram>>,
    /// Turns `true` when central stops, set once at start: long-lived responses (the dashboard's
    /// live events) end on it so a graceful shutdown never waits for them.
    pub stopping: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>>,
    /// The group-commit queue in front of inbound alert writes (`hooks::batch`), started by the
    /// first delivery.
    pub inbound: std::sync::OnceLock<crate::hooks::batch::Batcher>,
    /// Chain verifications of the audit log, per account (the dashboard's and `audit verify`'s):
    /// one at a time per account, one at a time across accounts, results shared.
    pub verifications: crate::audit::verified::Verifications,
    /// Central's public HTTP address (`public_http_url`, else the bound listener), set once at
    /// start: links to an action's dashboard page (IDE approvals, chat messages) start with it.
    pub site_url: std::sync::OnceLock<String>,
    alert_writes: mpsc::UnboundedSender<Vec<AlertChange>>,
}

impl Central {
    /// Assembles the state; `alert_writes` is drained in order by the alert writer task.
    #[allow(clippy::too_many_arguments)] // one place assembles everything the handlers share
    pub fn new(
        config: Config,
        approvals: mttrly_core::approval::config::ApprovalPolicy,
        db: Db,
        agents: AgentRegistry,
        alerts: AlertEngine,
        grpc_url: String,
        tls: Option<crate::tls::TlsMaterial>,
        audit: crate::audit::AuditLog,
        events: crate::events::Bus,
        prompts: Arc<crate::notify::Prompts>,
        chat: Option<Arc<crate::chat::Chat>>,
        decision_channels: Vec<mttrly_core::Source>,
        alert_writes: mpsc::UnboundedSender<Vec<AlertChange>>,
    ) -> Arc<Self> {
        let limits =
            crate::ratelimit::Limits::new(config.rate_limit_account_per_minute, config.rate_limit_principal_per_minute);
        Arc::new(Self {
            config,
            approvals,
            db,
            agents,
            alerts,
            near_misses: crate::proactive::near_miss::NearMisses::default(),
            report_limits: crate::proactive::flood::ReportLimits::default(),
            grpc_url,
            tls,
            audit,
            limits,
            prompts,
            events,
            cooldowns: Cooldowns::default(),
            warroom: crate::warroom::feed::Feed::default(),
            auth_cache: crate::auth_cache::AuthCache::default(),
            token_usage: crate::tokens::Usage::default(),
            oidc: std::sync::OnceLock::new(),
            device_logins: crate::signin::device_flow::Guards::default(),
            second_factor_key: crate::second_factor::KeyCell::default(),
            decision_channels,
            chat,
            slack: std::sync::OnceLock::new(),
            telegram: std::sync::OnceLock::new(),
            stopping: std::sync::OnceLock::new(),
            inbound: std::sync::OnceLock::new(),
            verifications: crate::audit::verified::Verifications::default(),
            site_url: std::sync::OnceLock::new(),
            alert_writes,
        })
    }

    /// The address of action `id`'s dashboard page, where a signed-in human sees exactly what
    /// will run and decides; `None` before the HTTP listener is up (never in a running central).
    pub fn action_page(&self, id: &mttrly_core::ids::ActionId) -> Option<String> {
        self.site_url.get().map(|base| format!("{base}{}", crate::dashboard::action_path(id)))
    }

    /// Whether an action needing approval must have reached someone (fail closed otherwise):
    /// `require_approval_prompt` when set, else whenever webhooks or a chat provider are
    /// configured (a team that set up a channel expects to be told, not to find out at expiry).
    pub fn prompt_required(&self) -> bool {
        self.config.require_approval_prompt.unwrap_or(!self.config.webhooks.is_empty() || self.chat.is_some())
    }

    /// Records an event in the audit log (queued; written in order within milliseconds, then
    /// published on [`Central::events`]). A plain `AuditEvent` gets its kind's payload; producers
    /// that know more pass a [`crate::events::Recorded`].
    pub fn audit(&self, event: impl Into<crate::events::Recorded>) {
        self.audit.append(event);
    }

    /// Queues a server's alert changes for the writer (in order, off the request path) and
    /// records each in the audit log.
    pub fn write_alerts(
        &self,
        account: &mttrly_core::ids::AccountId,
        server: &mttrly_core::ids::ServerId,
        changes: Vec<AlertChange>,
    ) {
        if changes.is_empty() {
            return;
        }
        for change in &changes {
            let event = match change {
                AlertChange::Open(a) => crate::events::Recorded::new(
                    crate::audit::events::alert(
                        account,
                        server,
                        a.id.as_str(),
                        serde_json::json!({ "change": "opened", "rule": a.rule, "severity": a.severity, "summary": a.summary }),
                    ),
                    crate::events::Payload::AlertOpened {
                        alert_id: a.id.clone(),
                        rule: a.rule.clone(),
                        severity: a.severity,
                        summary: a.summary.clone(),
                    },
                ),
                AlertChange::Resolve(id, _) => crate::events::Recorded::new(
                    crate::audit::events::alert(
                        account,
                        server,
                        id.as_str(),
                        serde_json::json!({ "change": "resolved" }),
                    ),
                    crate::events::Payload::AlertResolved { alert_id: id.clone() },
                ),
            };
            self.audit(event);
        }
        if self.alert_writes.send(changes).is_err() {
            tracing::warn!("alert writer stopped; alert changes dropped during shutdown");
        }
    }
}

/// Per-server cooldown windows (in memory: a restart forgets them, which only ever allows one
/// extra run).
#[derive(Default)]
pub struct Cooldowns {
    last: std::sync::Mutex<std::collections::HashMap<(&'static str, String), std::time::Instant>>,
}

impl Cooldowns {
    /// Starts a run of `what` on `server` if the previous one is at least `window` ago; otherwise
    /// returns how long is left.
    pub fn try_start(
        &self,
        what: &'static str,
        server: &str,
        window: std::time::Duration,
    ) -> Result<(), std::time::Duration> {
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = last.get(&(what, server.to_owned())) {
            let since = now.duration_since(*at);
            if since < window {
                return Err(window.saturating_sub(since));
            }
        }
        last.insert((what, server.to_owned()), now);
        // Forget old entries so the map stays as small as the set of busy servers.
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < std::time::Duration::from_secs(3600));
        }
        Ok(())
    }
}
