//! Central's configuration: defaults, then the TOML file, then environment variables, then flags.
//!
//! Every field has a safe default (loopback listeners, the self-hosting plan), so `serve` with no
//! configuration at all works on a laptop and exposes nothing to the network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mttrly_core::{ErrorCode, MttrlyError, Plan};
use serde::{Deserialize, Serialize};

use crate::env;

/// Central's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, TLS material and local state live.
    pub data_dir: PathBuf,
    /// gRPC listener (agents, CLI, API). Port 0 picks a free port.
    pub grpc_listen: SocketAddr,
    /// HTTP listener. Port 0 picks a free port.
    pub http_listen: SocketAddr,
    /// The URL agents and the CLI should use, when it is not the listen address.
    pub public_grpc_url: Option<String>,
    /// The plan `init` gives the first account.
    pub plan: Plan,
    /// The first account's name.
    pub account_name: String,
    /// Expected seconds between heartbeats (1 to 3600).
    pub heartbeat_interval_seconds: u32,
    /// Missed heartbeats before a server is offline (1 to 100).
    pub offline_after_missed_heartbeats: u32,
    /// How long an install token stays valid, in minutes (1 to 10080).
    pub install_token_ttl_minutes: u32,
    /// How long a pending action waits for a human decision, in minutes (1 to 1440).
    pub action_ttl_minutes: u32,
    /// Serve plaintext gRPC on a non-loopback address.
    pub insecure: bool,
    /// Tool calls one account may make per minute (all its principals together).
    pub rate_limit_account_per_minute: u32,
    /// Tool calls one token may make per minute: every MCP session and every gRPC call made with
    /// the same token share this bucket, so opening more sessions buys no more calls. (The name
    /// is kept from when the bucket was per principal, so existing files keep working.)
    pub rate_limit_principal_per_minute: u32,
    /// Live MCP sessions one token may hold (1 to 10000). At the cap, `initialize` replaces the
    /// token's least recently used session if it has been idle for a minute, and is refused with
    /// `RATE_LIMITED` otherwise.
    pub mcp_sessions_per_token: u32,
    /// Live MCP sessions one user may hold across all their tokens (1 to 10000).
    pub mcp_sessions_per_user: u32,
    /// Seconds without a request after which an MCP session ends and frees its slot (10 to 86400).
    pub mcp_session_idle_seconds: u32,
    /// Seconds an MCP `mttrly_approve_action` call that sent its user to the action's dashboard
    /// page (URL-mode elicitation) waits for a human to decide there (1 to 3600).
    pub mcp_approval_wait_seconds: u32,
    /// Actions waiting for a human on one server (1 to 10000). Beyond it, new requests for that
    /// server are refused with `RATE_LIMITED` until one is decided or expires, so a looping
    /// assistant cannot bury the requests that matter.
    pub max_pending_actions_per_server: u32,
    /// Minutes an investigation stays open without a call under it (1 to 1440). Past it, the
    /// sweep closes it and revokes its bypass; activity under it renews the time.
    pub investigation_idle_minutes: u32,
    /// The longest an investigation bypass may last once granted, in minutes (5 to 60): longer
    /// requests are refused, so an unattended grant cannot outlive an incident.
    pub bypass_max_minutes: u32,
    /// Open HTTP connections (1 to 1000000). Connections beyond it are closed at once.
    pub http_max_connections: u32,
    /// Open gRPC connections (1 to 1000000): every agent holds one, so this is sized for a fleet.
    /// Each is a file descriptor: central raises its open-files soft limit to the hard limit at
    /// start and warns when that cannot hold both listeners' caps (raise `LimitNOFILE=`).
    pub grpc_max_connections: u32,
    /// Connections per listener still in their handshake (TLS, HTTP/2 preface, first request)
    /// (1 to 1000000). This is the cap an unauthenticated client can reach; beyond it new
    /// connections are closed at once.
    pub max_handshaking_connections: u32,
    /// Seconds a new connection has to complete its first request, TLS, the HTTP/2 preface and the
    /// request's body included (1 to 300). Also HTTP/1's limit for reading any request's headers.
    pub handshake_timeout_seconds: u32,
    /// Seconds an HTTP connection may sit with no request in flight before it is closed
    /// (1 to 86400). Open SSE streams are requests in flight.
    pub http_idle_timeout_seconds: u32,
    /// Seconds a gRPC connection may sit with no call in flight before it is closed
    /// (1 to 86400). An agent's session stream is a call in flight for as long as it lives.
    pub grpc_idle_timeout_seconds: u32,
    /// Webhooks that receive approval prompts (signed JSON).
    pub webhooks: Vec<crate::notify::webhook::WebhookConfig>,
    /// Inbound alerts from monitoring (`[hooks]`, `[hooks.alertmanager]`, `[hooks.grafana]`): off
    /// until a source is configured. Secrets are named by environment variable and read at start.
    pub hooks: crate::hooks::HooksConfig,
    /// Whether an action needing approval must have had its prompt delivered; when no notifier
    /// can deliver it, the action is failed closed. Defaults to true when webhooks or a chat
    /// provider (`[telegram]`, `[slack]`) are configured.
    pub require_approval_prompt: Option<bool>,
    /// The tools this deployment exposes (read-only mode, toolsets); tokens can narrow it further.
    pub tools: mttrly_core::ToolSurface,
    /// The URL people and MCP clients reach central's HTTP at (`https://mttrly.example.com`), when
    /// it is not the listen address. Names the MCP resource in OAuth metadata.
    pub public_http_url: Option<String>,
    /// Browser origins allowed to call `/mcp` (`https://app.example.com`). A request carrying any
    /// other `Origin` is refused with 403 before authentication; requests without one are not
    /// affected. Central's own HTTP origin is always allowed.
    pub mcp_allowed_origins: Vec<String>,
    /// `Host` names (or `host:port`) `/mcp` answers to, against DNS rebinding. Loopback names and
    /// the host of `public_http_url` are always allowed.
    pub mcp_allowed_hosts: Vec<String>,
    /// Approval rules: `[approvals.ENV]`, `[approvals.ENV.action.TYPE]`,
    /// `[approvals.ENV.playbook.NAME]` (see `mttrly_core::approval::config`). Checked at start
    /// into [`Config::approval_policy`]; a scope left out keeps the built-in rule, with
    /// `action_ttl_minutes` as its ttl.
    pub approvals: mttrly_core::approval::config::ApprovalsConfig,
    /// Single sign-on through an OpenID Connect provider (`[oidc]`, see
    /// `crate::signin::oidc::config`). Checked at start, discovery and keys included.
    pub oidc: Option<crate::signin::oidc::config::OidcConfig>,
    /// Approvals in Slack (`[slack]`, see `crate::chat::slack::config`): off until configured;
    /// the bot token and signing secret are named by environment variable and read at start.
    pub slack: Option<crate::chat::slack::config::SlackConfig>,
    /// Approvals in Telegram (`[telegram]`, see `crate::chat::telegram::config`): off until
    /// configured; the bot token (and the webhook secret) are named by environment variable and
    /// read at start.
    pub telegram: Option<crate::chat::telegram::TelegramConfig>,
    /// A directory of agent binaries central serves for `curl … /install.sh | sh` installs, one
    /// per target: `DIR/<arch>-<os>/mttrly-agent` (`x86_64-linux`, `aarch64-linux`). The
    /// `mttrly-agent` next to central's own executable is always served for central's own target.
    pub agent_dist_dir: Option<PathBuf>,
    /// Thresholds for the built-in alert rules (`[alerts.disk_usage] threshold = 90`,
    /// `[alerts.memory] enabled = false`; see `crate::alerts::config`). Checked at start.
    pub alerts: crate::alerts::config::AlertsConfig,
    /// The war room (`[warroom] incident_channel = "incidents"`, `incidents_from_events = true`):
    /// where central opens incident threads from alerts and posts their servers' actions (see
    /// `crate::warroom::autopost`).
    pub warroom: crate::warroom::autopost::WarRoomConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("mttrly-data"),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_grpc_url: None,
            plan: Plan::DeploymentCrew,
            account_name: "default".to_owned(),
            heartbeat_interval_seconds: 10,
            offline_after_missed_heartbeats: 3,
            install_token_ttl_minutes: 60,
            action_ttl_minutes: 30,
            insecure: false,
            rate_limit_account_per_minute: 3000,
            rate_limit_principal_per_minute: 600,
            mcp_sessions_per_token: 32,
            mcp_sessions_per_user: 64,
            mcp_session_idle_seconds: 300,
            mcp_approval_wait_seconds: 600,
            max_pending_actions_per_server: 20,
            investigation_idle_minutes: 60,
            bypass_max_minutes: 60,
            http_max_connections: 4096,
            grpc_max_connections: 100_000,
            max_handshaking_connections: 1024,
            handshake_timeout_seconds: 10,
            http_idle_timeout_seconds: 120,
            grpc_idle_timeout_seconds: 600,
            webhooks: Vec::new(),
            hooks: crate::hooks::HooksConfig::default(),
            require_approval_prompt: None,
            tools: mttrly_core::ToolSurface::ALL,
            public_http_url: None,
            mcp_allowed_origins: Vec::new(),
            mcp_allowed_hosts: Vec::new(),
            approvals: mttrly_core::approval::config::ApprovalsConfig::new(),
            oidc: None,
            slack: None,
            telegram: None,
            agent_dist_dir: None,
            alerts: crate::alerts::config::AlertsConfig::new(),
            warroom: crate::warroom::autopost::WarRoomConfig::default(),
        }
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn invalid(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

impl Config {
    /// Reads a TOML file (unknown keys are refused, so a typo never silently falls back to a
    /// default).
    pub fn from_file(path: &Path) -> Result<Self, MttrlyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| invalid(format!("invalid config file {}: {e}", path.display())))
    }

    /// Applies `MTTRLY_*` environment variables over the current values.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), MttrlyError> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, MttrlyError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e| invalid(format!("invalid {name}=`{value}`: {e}")))
        }
        if let Some(v) = get(env::DATA_DIR) {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get(env::GRPC_LISTEN) {
            self.grpc_listen = parse(env::GRPC_LISTEN, &v)?;
        }
        if let Some(v) = get(env::HTTP_LISTEN) {
            self.http_listen = parse(env::HTTP_LISTEN, &v)?;
        }
        if let Some(v) = get(env::PUBLIC_GRPC_URL) {
            self.public_grpc_url = Some(v);
        }
        if let Some(v) = get(env::PLAN) {
            self.plan = parse(env::PLAN, &v)?;
        }
        if let Some(v) = get(env::HEARTBEAT_INTERVAL_SECONDS) {
            self.heartbeat_interval_seconds = parse(env::HEARTBEAT_INTERVAL_SECONDS, &v)?;
        }
        if let Some(v) = get(env::OFFLINE_AFTER_MISSED_HEARTBEATS) {
            self.offline_after_missed_heartbeats = parse(env::OFFLINE_AFTER_MISSED_HEARTBEATS, &v)?;
        }
        if let Some(v) = get(env::INSECURE) {
            self.insecure = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get(env::READ_ONLY) {
            self.tools.read_only = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get(env::TOOLSETS) {
            self.tools = mttrly_core::ToolSurface::from_flags(self.tools.read_only, Some(&v))?;
        }
        if let Some(v) = get(env::PUBLIC_HTTP_URL) {
            self.public_http_url = Some(v);
        }
        if let Some(v) = get(env::MCP_ALLOWED_ORIGINS) {
            self.mcp_allowed_origins = split_list(&v);
        }
        if let Some(v) = get(env::MCP_ALLOWED_HOSTS) {
            self.mcp_allowed_hosts = split_list(&v);
        }
        for (name, field) in env::LIMITS.into_iter().zip(self.limit_fields()) {
            if let Some(v) = get(name) {
                *field = parse(name, &v)?;
            }
        }
        Ok(())
    }

    /// Checks ranges that types cannot express.
    pub fn validate(&self) -> Result<(), MttrlyError> {
        if !(1..=3600).contains(&self.heartbeat_interval_seconds) {
            return Err(invalid("heartbeat_interval_seconds must be between 1 and 3600".into()));
        }
        if !(1..=100).contains(&self.offline_after_missed_heartbeats) {
            return Err(invalid("offline_after_missed_heartbeats must be between 1 and 100".into()));
        }
        if !(1..=10_080).contains(&self.install_token_ttl_minutes) {
            return Err(invalid("install_token_ttl_minutes must be between 1 and 10080".into()));
        }
        if !(1..=1440).contains(&self.action_ttl_minutes) {
            return Err(invalid("action_ttl_minutes must be between 1 and 1440".into()));
        }
        for (name, value, range) in self.limit_ranges() {
            if !range.contains(&value) {
                return Err(invalid(format!(
                    "{name} must be between {} and {} (got {value})",
                    range.start(),
                    range.end()
                )));
            }
        }
        crate::alerts::config::rules(&self.alerts)?;
        self.warroom.validate()?;
        if self.account_name.trim().is_empty() {
            return Err(invalid("account_name must not be empty".into()));
        }
        if let Some(url) = &self.public_http_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(format!("public_http_url `{url}` must start with http:// or https://")));
        }
        for origin in &self.mcp_allowed_origins {
            if origin != "null" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(format!(
                    "MCP allowed origin `{origin}` must include its scheme, like https://app.example.com"
                )));
            }
        }
        self.approval_policy().map(|_| ())
    }

    /// The checked approval rules: the `[approvals]` tables layered over the built-in rules, with
    /// `action_ttl_minutes` as the ttl where no table sets one. `VALIDATION_ERROR` lists every
    /// problem at once (in the message, one per line, and as `details.problems`), so a bad file
    /// is fixed in one pass rather than one restart per typo.
    pub fn approval_policy(&self) -> Result<mttrly_core::approval::config::ApprovalPolicy, MttrlyError> {
        mttrly_core::approval::config::ApprovalPolicy::from_config(&self.approvals, Some(self.action_ttl()))
            .map_err(|e| invalid(e.to_string()).with_detail("problems", e.problems))
    }

    /// The limit fields, in the order of [`env::LIMITS`] and [`Self::limit_ranges`].
    fn limit_fields(&mut self) -> [&mut u32; 13] {
        [
            &mut self.mcp_sessions_per_token,
            &mut self.mcp_sessions_per_user,
            &mut self.mcp_session_idle_seconds,
            &mut self.max_pending_actions_per_server,
            &mut self.http_max_connections,
            &mut self.grpc_max_connections,
            &mut self.max_handshaking_connections,
            &mut self.handshake_timeout_seconds,
            &mut self.http_idle_timeout_seconds,
            &mut self.grpc_idle_timeout_seconds,
            &mut self.mcp_approval_wait_seconds,
            &mut self.investigation_idle_minutes,
            &mut self.bypass_max_minutes,
        ]
    }

    /// The limits against hostile load, with their allowed ranges (one table, so a new limit
    /// cannot be added without a range).
    fn limit_ranges(&self) -> [(&'static str, u32, std::ops::RangeInclusive<u32>); 13] {
        [
            ("mcp_sessions_per_token", self.mcp_sessions_per_token, 1..=10_000),
            ("mcp_sessions_per_user", self.mcp_sessions_per_user, 1..=10_000),
            ("mcp_session_idle_seconds", self.mcp_session_idle_seconds, 10..=86_400),
            ("max_pending_actions_per_server", self.max_pending_actions_per_server, 1..=10_000),
            ("http_max_connections", self.http_max_connections, 1..=1_000_000),
            ("grpc_max_connections", self.grpc_max_connections, 1..=1_000_000),
            ("max_handshaking_connections", self.max_handshaking_connections, 1..=1_000_000),
            ("handshake_timeout_seconds", self.handshake_timeout_seconds, 1..=300),
            ("http_idle_timeout_seconds", self.http_idle_timeout_seconds, 1..=86_400),
            ("grpc_idle_timeout_seconds", self.grpc_idle_timeout_seconds, 1..=86_400),
            ("mcp_approval_wait_seconds", self.mcp_approval_wait_seconds, 1..=3_600),
            ("investigation_idle_minutes", self.investigation_idle_minutes, 1..=1_440),
            ("bypass_max_minutes", self.bypass_max_minutes, 5..=60),
        ]
    }

    /// How long a new connection has to complete its first request.
    pub fn handshake_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.handshake_timeout_seconds))
    }

    /// How long after start central waits before judging any agent offline: agents reconnect
    /// with backoff after a restart, and a central that just started has not heard from anyone
    /// yet. One offline window plus one heartbeat, so a quick restart never raises a false alarm.
    pub fn offline_grace(&self) -> std::time::Duration {
        self.offline_after() + std::time::Duration::from_secs(u64::from(self.heartbeat_interval_seconds))
    }

    /// The SQLite file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("central.db")
    }

    /// How long a pending action lives.
    pub fn action_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.action_ttl_minutes) * 60)
    }

    /// How long without a heartbeat before a server is offline.
    pub fn offline_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::from(self.heartbeat_interval_seconds) * u64::from(self.offline_after_missed_heartbeats),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values_and_bad_values_are_named() {
        let mut config: Config = toml::from_str("grpc_listen = \"127.0.0.1:1\"\nplan = \"watchdog\"").unwrap();
        assert_eq!(config.plan, Plan::Watchdog);
        config
            .apply_env(|k| match k {
                "MTTRLY_GRPC_LISTEN" => Some("127.0.0.1:0".into()),
                "MTTRLY_PLAN" => Some("deployment_bro".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.grpc_listen.port(), 0);
        assert_eq!(config.plan, Plan::DeploymentBro);
        let err = config.apply_env(|k| (k == "MTTRLY_HTTP_LISTEN").then(|| "nope".into())).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.message().contains("MTTRLY_HTTP_LISTEN"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("grpc_lissen = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("grpc_lissen"), "{err}");
    }

    #[test]
    fn ranges_are_checked() {
        let config = Config { heartbeat_interval_seconds: 0, ..Config::default() };
        assert!(config.validate().is_err());
        assert!(Config::default().validate().is_ok());
        let config = Config { mcp_sessions_per_token: 0, ..Config::default() };
        let err = config.validate().unwrap_err();
        assert!(err.message().contains("mcp_sessions_per_token"), "{err}");
        let config = Config { handshake_timeout_seconds: 301, ..Config::default() };
        assert!(config.validate().is_err());
    }

    #[test]
    fn approvals_are_checked_with_every_problem_and_action_ttl_is_their_default_ttl() {
        use mttrly_core::Environment;
        use mttrly_core::action::ActionType;
        let config: Config =
            toml::from_str("action_ttl_minutes = 12\n[approvals.production.action.command]\nquorum = 2\n").unwrap();
        let policy = config.approval_policy().unwrap();
        let staging = policy.rule_for(Environment::Staging, ActionType::Command, None);
        assert_eq!(staging.ttl, std::time::Duration::from_secs(12 * 60));
        assert_eq!(policy.rule_for(Environment::Production, ActionType::Command, None).quorum, 2);
        assert_eq!(policy.rule_for(Environment::Production, ActionType::Script, None).quorum, 1);
        let config: Config =
            toml::from_str("[approvals.production]\nquorum = 0\nsecond_factor = \"sms\"\n[approvals.qa]\n").unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert_eq!(err.details()["problems"].as_array().map(Vec::len), Some(3), "{err}");
        assert!(err.message().contains("quorum: 0") && err.message().contains("`sms`"), "{err}");
    }

    #[test]
    fn every_limit_has_an_environment_variable_matching_its_key() {
        let mut config = Config::default();
        let names: Vec<&str> = config.limit_ranges().iter().map(|(name, _, _)| *name).collect();
        for (env_name, key) in env::LIMITS.iter().zip(&names) {
            assert_eq!(env_name.strip_prefix("MTTRLY_").unwrap().to_ascii_lowercase(), *key);
        }
        config.apply_env(|k| (k == "MTTRLY_MCP_SESSIONS_PER_TOKEN").then(|| "7".into())).unwrap();
        assert_eq!(config.mcp_sessions_per_token, 7);
        let err = config.apply_env(|k| (k == "MTTRLY_HANDSHAKE_TIMEOUT_SECONDS").then(|| "x".into())).unwrap_err();
        assert!(err.message().contains("MTTRLY_HANDSHAKE_TIMEOUT_SECONDS"), "{err}");
    }
}
