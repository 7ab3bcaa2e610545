//! Starting and stopping a central: database, background tasks, gRPC and HTTP listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mttrly_proto::central::v1::account_service_server::AccountServiceServer;
use mttrly_proto::central::v1::action_service_server::ActionServiceServer;
use mttrly_proto::central::v1::alert_service_server::AlertServiceServer;
use mttrly_proto::central::v1::audit_service_server::AuditServiceServer;
use mttrly_proto::central::v1::login_service_server::LoginServiceServer;
use mttrly_proto::central::v1::server_service_server::ServerServiceServer;
use mttrly_proto::central::v1::tool_service_server::ToolServiceServer;
use mttrly_proto::central::v1::user_service_server::UserServiceServer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;

use crate::agents::registry::AgentRegistry;
use crate::alerts::engine::AlertEngine;
use crate::config::Config;
use crate::conn::{ConnLimits, TrackLayer, Tracker};
use crate::db::{self, Db};
use crate::grpc;
use crate::state::Central;

/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why central could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration")]
    Config(#[source] mttrly_core::MttrlyError),
    /// The data directory has not been initialised.
    #[error("{path} is not initialised: run `mttrly-central init --data-dir {path}` first")]
    NotInitialised {
        /// The data directory.
        path: String,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Database(#[from] db::OpenError),
    /// Reading state at start failed.
    #[error("cannot load state")]
    Load(#[source] mttrly_core::MttrlyError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Plaintext on a public address without `--insecure`.
    #[error(
        "refusing plaintext gRPC on non-loopback address {0}: agents would send credentials in the clear. \
         Listen on a loopback address, or pass --insecure if a TLS proxy terminates in front of central"
    )]
    Plaintext(SocketAddr),
    /// The TLS material is unusable.
    #[error("cannot use the TLS certificate")]
    Tls(#[source] tonic::transport::Error),
    /// The gRPC reflection service could not be built.
    #[error("cannot build the reflection service")]
    Reflection(#[source] mttrly_proto::ReflectionError),
}

/// A running central.
pub struct RunningCentral {
    /// The bound gRPC address (port 0 resolved).
    pub grpc_addr: SocketAddr,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// The state, for in-process callers (quickstart, tests).
    pub central: Arc<Central>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningCentral {
    /// The gRPC URL clients use.
    pub fn grpc_url(&self) -> &str {
        &self.central.grpc_url
    }

    /// The HTTP base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The MCP endpoint (Streamable HTTP).
    pub fn mcp_url(&self) -> String {
        format!("{}{}", self.http_url(), crate::http::MCP_PATH)
    }

    /// Stops accepting, lets in-flight requests finish, flushes heartbeats, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Agent streams never end on their own: close them so graceful shutdown can finish.
        self.central.agents.kick_all();
        for task in self.tasks {
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                tracing::warn!("a server task did not stop within the grace period");
            }
        }
        crate::background::flush_heartbeats(&self.central).await;
        // Everything appended so far is durable; anything appended while the state is dropped
        // too (the database's journal writer ends with its last handle).
        let audit = self.central.audit.clone();
        audit.flush().await;
        drop(self.central);
        audit.flush().await;
    }
}

/// Opens the database and starts serving. Listeners bind before this returns, so the returned
/// addresses are live.
pub async fn start(mut config: Config) -> Result<RunningCentral, StartError> {
    config.validate().map_err(StartError::Config)?;
    config.hooks.resolve(|k| std::env::var(k).ok()).map_err(StartError::Config)?;
    let approvals = config.approval_policy().map_err(StartError::Config)?;
    let db_path = config.database_path();
    if !db_path.exists() {
        return Err(StartError::NotInitialised { path: config.data_dir.display().to_string() });
    }
    let tls = crate::tls::load(&config.data_dir).map_err(StartError::Load)?;
    if tls.is_none() && !config.grpc_listen.ip().is_loopback() {
        if !config.insecure {
            return Err(StartError::Plaintext(config.grpc_listen));
        }
        tracing::warn!(addr = %config.grpc_listen, "serving plaintext gRPC on a non-loopback address (--insecure)");
    }
    let db = Db::open(&db_path)?;
    // Single sign-on is checked end to end (the table, the secret, the account, the provider's
    // discovery and keys) before anything listens: a sign-in that cannot work stops the start.
    let oidc = match &config.oidc {
        Some(oidc) => {
            Some(crate::signin::oidc::client::OidcClient::start(oidc, &db).await.map_err(StartError::Config)?)
        }
        None => None,
    };

    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .map_err(|source| StartError::Bind { addr: config.grpc_listen, source })?;
    let http_listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| StartError::Bind { addr: config.http_listen, source })?;
    let grpc_addr =
        grpc_listener.local_addr().map_err(|source| StartError::Bind { addr: config.grpc_listen, source })?;
    let http_addr =
        http_listener.local_addr().map_err(|source| StartError::Bind { addr: config.http_listen, source })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let grpc_url = config.public_grpc_url.clone().unwrap_or_else(|| format!("{scheme}://{grpc_addr}"));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let agents = AgentRegistry::new(config.offline_after());
    let (servers, open_alerts) = db.fleet().seed().await.map_err(StartError::Load)?;
    for row in servers {
        let metrics = row.metrics_json.as_deref().and_then(|j| serde_json::from_str(j).ok());
        agents.seed(row.id, row.account_id, row.last_seen_at, metrics);
    }
    let rules = crate::alerts::config::rules(&config.alerts).map_err(StartError::Config)?;
    // An alert a now-disabled built-in rule opened would stay open forever (nothing judges it
    // again): it resolves at start.
    let disabled = crate::alerts::config::disabled_alerts(&rules, &open_alerts, crate::db::now_ms());
    let alerts = AlertEngine::new(rules, open_alerts);
    let (alert_tx, alert_rx) = mpsc::unbounded_channel();
    if !disabled.is_empty() {
        let _ = alert_tx.send(disabled);
    }
    let events = crate::events::Bus::default();
    let audit = crate::audit::AuditLog::start(&db, events.clone());
    let mut notifiers: Vec<Arc<dyn crate::notify::Notifier>> = Vec::new();
    for hook in &config.webhooks {
        let webhook = crate::notify::webhook::Webhook::from_config(hook, |k| std::env::var(k).ok()).map_err(|e| {
            StartError::Config(mttrly_core::MttrlyError::new(mttrly_core::ErrorCode::ValidationError, e.to_string()))
        })?;
        notifiers.push(Arc::new(webhook));
    }
    // Chat providers: each configured one is a channel approval messages go out through.
    let mut chat_channels: Vec<Arc<dyn crate::chat::ChatChannel>> = Vec::new();
    let slack = match &config.slack {
        Some(slack) => {
            let slack =
                crate::chat::slack::Slack::from_config(slack, |k| std::env::var(k).ok()).map_err(StartError::Config)?;
            chat_channels.push(Arc::clone(&slack) as Arc<dyn crate::chat::ChatChannel>);
            Some(slack)
        }
        None => None,
    };
    let telegram = match config.telegram.as_mut() {
        Some(section) => {
            section.resolve(|k| std::env::var(k).ok()).map_err(StartError::Config)?;
            let telegram = crate::chat::telegram::Telegram::new(section).map_err(StartError::Config)?;
            chat_channels.push(Arc::clone(&telegram) as Arc<dyn crate::chat::ChatChannel>);
            Some(telegram)
        }
        None => None,
    };
    let providers: Vec<mttrly_core::ChatProvider> = chat_channels.iter().map(|c| c.provider()).collect();
    let mut decision_channels = crate::chat::decision_channels(&providers);
    // The dashboard is a way to decide wherever a person can sign in to it: over HTTPS, or plain
    // HTTP on loopback (sessions never travel over plain HTTP to another host). Elsewhere nothing
    // names it or links to it: a refusal or a chat message pointing at a page that cannot sign
    // anyone in would send people nowhere.
    let site_url = crate::app_state::public_base_url(&config, http_addr);
    if crate::signin::web::transport_of(&site_url).is_some() {
        decision_channels.insert(1, mttrly_core::Source::Dashboard);
    }
    let chat = (!chat_channels.is_empty()).then(|| {
        crate::chat::Chat::new(
            chat_channels,
            db.clone(),
            approvals.clone(),
            decision_channels.clone(),
            site_url.clone(),
        )
    });
    let prompts = crate::notify::Prompts::new(notifiers, chat.clone());
    // Subscribed before anything is recorded, so they see every event from the first.
    let mut subscribers = vec![
        prompts.spawn(&events, audit.clone(), shutdown_rx.clone()),
        crate::events::log::spawn(&events, shutdown_rx.clone()),
    ];
    if let Some(chat) = &chat {
        subscribers.push(chat.spawn_followups(&events, shutdown_rx.clone()));
    }
    let central = Central::new(
        config,
        approvals,
        db,
        agents,
        alerts,
        grpc_url,
        tls.clone(),
        audit,
        events,
        prompts,
        chat,
        decision_channels,
        alert_tx,
    );
    if let Some(oidc) = oidc {
        let _ = central.oidc.set(oidc);
    }
    let _ = central.stopping.set(shutdown_rx.clone());
    let _ = central.site_url.set(crate::app_state::public_base_url(&central.config, http_addr));
    if let Some(slack) = slack {
        let _ = central.slack.set(slack);
    }
    if let Some(telegram) = telegram {
        let _ = central.telegram.set(telegram);
    }

    // Actions a crash left running are failed before anything else can look at them.
    let recovered = crate::actions::recover(&central).await.map_err(StartError::Load)?;
    if recovered > 0 {
        tracing::warn!(
            count = recovered,
            "actions interrupted by the last shutdown were marked failed (outcome unknown)"
        );
    }
    // Whether every account's people can satisfy every approval rule: WARN lines with the fix,
    // before the first request, so a team learns it from the log rather than from an expiry.
    crate::approvals::report_at_start(&central).await;
    let mut tasks = crate::background::spawn(&central, alert_rx, &shutdown_rx);
    tasks.extend(subscribers);
    if let Some(chat) = &central.chat {
        tasks.push(chat.spawn_notices(&central.warroom, shutdown_rx.clone()));
    }
    tasks.extend(crate::warroom::autopost::spawn(&central, shutdown_rx.clone()));
    if let Some(receiver) =
        central.telegram.get().and_then(|t| crate::chat::telegram::receiver::spawn(t, &central, shutdown_rx.clone()))
    {
        tasks.push(receiver);
    }

    let (health_reporter, health) = mttrly_proto::health_reporter();
    for name in grpc::MOUNTED {
        health_reporter.set_service_status(name, mttrly_proto::ServingStatus::Serving).await;
    }
    let reflection = mttrly_proto::reflection_service(&grpc::MOUNTED).map_err(StartError::Reflection)?;
    let limits = |max: u32, idle_seconds: u32| ConnLimits {
        max: usize::try_from(max).unwrap_or(usize::MAX),
        max_handshaking: usize::try_from(central.config.max_handshaking_connections).unwrap_or(usize::MAX),
        handshake_timeout: central.config.handshake_timeout(),
        idle_timeout: Duration::from_secs(u64::from(idle_seconds)),
    };
    // One descriptor per connection: the soft limit goes up to the hard one, with a warning when
    // even that cannot hold the caps.
    crate::fd_limit::raise(
        u64::from(central.config.grpc_max_connections) + u64::from(central.config.http_max_connections),
    );
    let grpc_tracker =
        Tracker::new("grpc", limits(central.config.grpc_max_connections, central.config.grpc_idle_timeout_seconds));
    let http_tracker =
        Tracker::new("http", limits(central.config.http_max_connections, central.config.http_idle_timeout_seconds));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        let identity = tonic::transport::Identity::from_pem(&tls.chain_pem, &tls.key_pem);
        builder = builder
            .tls_config(
                tonic::transport::ServerTlsConfig::new().identity(identity).timeout(central.config.handshake_timeout()),
            )
            .map_err(StartError::Tls)?;
    }
    let grpc_server = grpc::tuning::http2(builder.layer(TrackLayer))
        .add_service(health)
        .add_service(reflection)
        .add_service(grpc::agent::service(Arc::clone(&central)))
        .add_service(AccountServiceServer::new(grpc::account::AccountApi::new(Arc::clone(&central))))
        .add_service(ToolServiceServer::new(grpc::tools::ToolApi::new(Arc::clone(&central))))
        .add_service(ServerServiceServer::new(grpc::servers::ServerApi::new(Arc::clone(&central))))
        .add_service(AlertServiceServer::new(grpc::alerts::AlertApi::new(Arc::clone(&central))))
        .add_service(AuditServiceServer::new(grpc::audit::AuditApi::new(Arc::clone(&central))))
        .add_service(ActionServiceServer::new(grpc::actions::ActionApi::new(Arc::clone(&central))))
        .add_service(mttrly_proto::central::v1::deploy_service_server::DeployServiceServer::new(
            grpc::deploys::DeployApi::new(Arc::clone(&central)),
        ))
        .add_service(mttrly_proto::central::v1::knowledge_service_server::KnowledgeServiceServer::new(
            grpc::knowledge::KnowledgeApi::new(Arc::clone(&central)),
        ))
        .add_service(mttrly_proto::central::v1::release_service_server::ReleaseServiceServer::new(
            grpc::releases::ReleaseApi::new(Arc::clone(&central)),
        ))
        .add_service(mttrly_proto::central::v1::investigation_service_server::InvestigationServiceServer::new(
            grpc::investigations::InvestigationApi::new(Arc::clone(&central)),
        ))
        .add_service(UserServiceServer::new(grpc::users::UserApi::new(
            Arc::clone(&central),
            crate::app_state::public_base_url(&central.config, http_addr),
        )))
        .add_service(LoginServiceServer::new(grpc::login::LoginApi::new(
            Arc::clone(&central),
            crate::app_state::public_base_url(&central.config, http_addr),
        )));
    let mut grpc_shutdown = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
        // Accepted sockets get TCP_NODELAY here (the builder's setting only applies to listeners
        // tonic binds itself): without it, Nagle holds a response's trailers for a delayed ACK,
        // adding ~40 ms to every call.
        let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)))
            .filter_map(move |accepted| match accepted {
                // Refused (over a cap): dropping the stream closes it.
                Ok(tcp) => grpc_tracker.admit(tcp).map(Ok),
                Err(e) => Some(Err(e)),
            });
        let stop = async move {
            let _ = grpc_shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = grpc_server.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }));
    let mut http_shutdown = shutdown_rx;
    let app = crate::http::router(Arc::clone(&central), http_addr);
    let header_timeout = central.config.handshake_timeout();
    tasks.push(tokio::spawn(async move {
        let stop = async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        };
        // Leave the last second of the shutdown grace to the task's own join.
        let grace = SHUTDOWN_GRACE.saturating_sub(Duration::from_secs(1));
        crate::http_serve::serve(http_listener, app, http_tracker, header_timeout, stop, grace).await;
    }));
    tracing::info!(%grpc_addr, %http_addr, "central listening");
    Ok(RunningCentral { grpc_addr, http_addr, central, shutdown, tasks })
}
