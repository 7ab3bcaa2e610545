//! `mttrly-central quickstart`: everything on one machine in one command.
//!
//! Initialises the data directory if needed, serves, registers this machine as a server, enrolls
//! an agent for it over the real loopback gRPC channel and runs that agent in the same process.
//! The tokens it prints are kept in `DATA_DIR/quickstart.json` (mode 0600) so a second run prints
//! the same ones instead of minting new admins.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use mttrly_core::{Environment, ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::db::{self, Db};
use crate::secrets::{self, SecretKind};
use crate::server::{self, RunningCentral, StartError};

/// What quickstart prints. Field names are a contract with scripts.
#[derive(Debug, Clone, Serialize)]
pub struct QuickstartInfo {
    /// Central's gRPC URL (agents, `mttrly-cli --central`).
    pub grpc_url: String,
    /// Central's HTTP base URL.
    pub http_url: String,
    /// The MCP endpoint (Streamable HTTP) for assistants.
    pub mcp_url: String,
    /// The web dashboard (pending actions, servers, alerts, audit), on central's public address.
    pub dashboard_url: String,
    /// A human admin token for `mttrly-cli --token`.
    pub admin_token: String,
    /// An assistant token for MCP clients without OAuth.
    pub assistant_token: String,
    /// The server registered for this machine.
    pub server_id: String,
    /// The data directory.
    pub data_dir: String,
    /// While the admin has no password and second factor yet: a single-use link (72 hours) where
    /// they set both, for everything done in a browser (OAuth consent for MCP clients,
    /// `mttrly-cli login`, approving from another device). Each run replaces the previous link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_setup_url: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedTokens {
    admin_token: String,
    assistant_token: String,
}

/// Why quickstart failed: which step, with the cause as the source (never also in the message).
#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    /// Central did not start (its own error names the step).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The data directory could not be created or initialised.
    #[error("cannot prepare the data directory")]
    DataDir(#[source] MttrlyError),
    /// The database could not be opened to mint quickstart's tokens.
    #[error("cannot open the database to mint quickstart's tokens")]
    Database(#[source] db::OpenError),
    /// The admin or assistant token could not be minted or saved.
    #[error("cannot prepare quickstart's tokens")]
    Tokens(#[source] MttrlyError),
    /// This machine could not be registered as a server.
    #[error("cannot register this machine as a server")]
    Register(#[source] MttrlyError),
    /// The local agent's state directory could not be read or updated.
    #[error("cannot use the local agent's state")]
    AgentState(#[source] mttrly_agent::AgentError),
    /// The in-process agent could not enroll.
    #[error("cannot enroll the local agent")]
    Enroll(#[source] mttrly_agent::AgentError),
}

/// A running quickstart: central plus the in-process agent.
pub struct Quickstart {
    /// Central.
    pub central: RunningCentral,
    /// What to print.
    pub info: QuickstartInfo,
    agent_stop: watch::Sender<bool>,
    agent: JoinHandle<Result<(), mttrly_agent::AgentError>>,
}

impl Quickstart {
    /// Stops the agent, then central.
    pub async fn shutdown(self) {
        let _ = self.agent_stop.send(true);
        let _ = self.agent.await;
        self.central.shutdown().await;
    }
}

impl QuickstartInfo {
    /// The text quickstart prints for people. Tokens appear only in `export` lines the reader
    /// pastes into their shell, never inside a command to run: a command line with a token ends up
    /// in shell history and in `ps` for every user of the machine; the commands after it read the
    /// variables (`mttrly-cli` takes `MTTRLY_CENTRAL` and `MTTRLY_TOKEN` itself).
    pub fn banner(&self) -> String {
        format!(
            "mttrly is running.\n\n  Dashboard: {}\n  gRPC:      {}\n  HTTP:      {}\n  MCP:       {}\n  data dir:  {}\n  server:    {} (this machine, agent connected)\n\n\
             Paste these into your shell (the tokens are secrets; they are also in {}/quickstart.json, mode 0600):\n\n\
             export MTTRLY_CENTRAL={}\nexport MTTRLY_TOKEN={}\nexport MTTRLY_ASSISTANT_TOKEN={}\n\n\
             try:  mttrly-cli servers list\n\
             MCP:  claude mcp add --transport http mttrly {} --header \"Authorization: Bearer $MTTRLY_ASSISTANT_TOKEN\"\n\n\
             {}Ctrl-C stops everything.",
            self.dashboard_url,
            self.grpc_url,
            self.http_url,
            self.mcp_url,
            self.data_dir,
            self.server_id,
            self.data_dir,
            self.grpc_url,
            self.admin_token,
            self.assistant_token,
            self.mcp_url,
            self.admin_setup_url.as_deref().map_or_else(String::new, |url| format!(
                "Sign-in for the browser (OAuth consent, `mttrly-cli login`, approving from another device):\n\
                 set your password and second factor at {url}\n(single use, 72 hours; shown until you do)\n\n"
            )),
        )
    }
}

fn step(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, message)
}

fn write_private(path: &Path, body: &[u8]) -> Result<(), MttrlyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()))
        .map_err(|e| step(format!("cannot write {}: {e}", path.display())))
}

/// Makes sure the data directory is initialised and returns the admin and assistant tokens.
fn ensure_tokens(config: &Config) -> Result<SavedTokens, QuickstartError> {
    let file = config.data_dir.join("quickstart.json");
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Ok(saved) = serde_json::from_str::<SavedTokens>(&text)
    {
        return Ok(saved);
    }
    let admin_token = if config.database_path().exists() {
        // Initialised by `init`: its admin token was shown once; mint a new one for quickstart.
        mint(config, None)?
    } else {
        crate::init::init(config, None).map_err(QuickstartError::DataDir)?.admin_token
    };
    let assistant_token = mint(config, Some("quickstart"))?;
    let saved = SavedTokens { admin_token, assistant_token };
    let body = serde_json::to_vec_pretty(&saved).map_err(|e| QuickstartError::Tokens(step(e.to_string())))?;
    write_private(&file, &body).map_err(QuickstartError::Tokens)?;
    Ok(saved)
}

fn mint(config: &Config, assistant: Option<&str>) -> Result<String, QuickstartError> {
    let db = Db::open(&config.database_path()).map_err(QuickstartError::Database)?;
    let kind = if assistant.is_some() { SecretKind::Assistant } else { SecretKind::Human };
    let token = secrets::generate(kind);
    let hash = secrets::hash(&token);
    db.insert_first_admin_token(&hash, assistant).map_err(QuickstartError::Tokens)?;
    Ok(token)
}

fn local_server_name() -> String {
    let host = mttrly_agent::host::facts().hostname;
    let name: String =
        host.chars().map(|c| if c.is_ascii_alphanumeric() || "-._".contains(c) { c } else { '-' }).take(64).collect();
    if name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) { name } else { "this-host".to_owned() }
}

/// An invite link for the first admin while they have no confirmed second factor (so no browser
/// sign-in yet); `None` once they have one. Replaces the link an earlier run printed.
async fn admin_setup_url(central: &crate::state::Central, base_url: &str) -> Result<Option<String>, MttrlyError> {
    let Some((account, _)) = central.db.first_account().await? else { return Ok(None) };
    let users = central.db.account(&account).users();
    let Some(admin) = users.first_admin().await? else { return Ok(None) };
    if crate::second_factor::enrolled(central, &account, &admin).await? {
        return Ok(None);
    }
    let Some(user) = users.list().await?.into_iter().find(|u| u.id == admin) else { return Ok(None) };
    let (secret, hash) = crate::signin::invite::fresh();
    let expires_at = db::now_ms().saturating_add(crate::signin::invite::TTL_MS);
    // Gated in the re-invite's own transaction: if the admin enrolled a factor since the check
    // above, the link would replace it, so none is made (they sign in with their factor).
    let gate = crate::db::accounts::FactorGate::Checked { code_verified: false };
    match central.db.account(&account).people().reinvite_gated(&user.name, &hash, expires_at, gate).await? {
        Ok(_) => Ok(Some(crate::signin::invite::url(base_url, &secret))),
        Err(crate::db::accounts::UserRefusal::SecondFactorRequired) => Ok(None),
        Err(refusal) => Err(step(format!("cannot make the admin's sign-in link: {refusal:?}"))),
    }
}

/// Starts everything and returns once the local agent has enrolled.
pub async fn start(config: Config) -> Result<Quickstart, QuickstartError> {
    crate::init::create_data_dir(&config.data_dir).map_err(QuickstartError::DataDir)?;
    let tokens = ensure_tokens(&config)?;
    let state_dir: PathBuf = config.data_dir.join("agent");
    let running = server::start(config).await?;
    let central = &running.central;

    // Re-use the local agent's enrollment if its server still exists; otherwise enroll afresh.
    let existing = mttrly_agent::Credentials::load(&state_dir).map_err(QuickstartError::AgentState)?;
    let live = match &existing {
        Some(creds) => {
            let claimed = mttrly_core::ids::ServerId::parse(&creds.server_id).ok();
            match crate::auth::resolve_agent(central, Some(&creds.agent_secret), claimed).await {
                Ok(_) => true,
                Err(e) if e.code() == ErrorCode::AuthFailed => false,
                Err(e) => return Err(QuickstartError::Register(e)),
            }
        }
        None => false,
    };
    let server_id = if let (true, Some(creds)) = (live, existing) {
        // The port may have changed since the last run: point the agent at this run's central.
        let creds = mttrly_agent::Credentials { central_url: running.grpc_url().to_owned(), ..creds };
        creds.save(&state_dir).map_err(QuickstartError::AgentState)?;
        creds.server_id
    } else {
        let (account, plan) = central
            .db
            .first_account()
            .await
            .and_then(|found| found.ok_or_else(|| step("no account in the database".into())))
            .map_err(QuickstartError::Register)?;
        let mut name = local_server_name();
        let crate::servers::Added { install_token, .. } =
            match crate::servers::add(central, &account, plan, name.clone(), Environment::Development).await {
                Ok(added) => added,
                Err(e) if e.code() == ErrorCode::ValidationError => {
                    // A server of that name exists from an earlier run whose agent state was lost.
                    name = format!("{name}-{}", &mttrly_core::ids::ServerId::generate().as_str()[4..12]);
                    crate::servers::add(central, &account, plan, name, Environment::Development)
                        .await
                        .map_err(QuickstartError::Register)?
                }
                Err(e) => return Err(QuickstartError::Register(e)),
            };
        let ca = central.tls.as_ref().map(|t| t.ca_pem.clone());
        mttrly_agent::enroll::enroll(running.grpc_url(), &install_token, ca, &state_dir, true)
            .await
            .map_err(QuickstartError::Enroll)?
            .server_id
    };

    let (agent_stop, stopped) = watch::channel(false);
    let options = mttrly_agent::RunOptions::new(state_dir, mttrly_agent::policy::LocalPolicy::default());
    let agent = tokio::spawn(mttrly_agent::run(options, stopped));
    let admin_setup_url = admin_setup_url(central, &running.http_url()).await.map_err(QuickstartError::Tokens)?;
    let info = QuickstartInfo {
        grpc_url: running.grpc_url().to_owned(),
        http_url: running.http_url(),
        mcp_url: running.mcp_url(),
        dashboard_url: format!("{}/", running.central.site_url.get().cloned().unwrap_or_else(|| running.http_url())),
        admin_token: tokens.admin_token,
        assistant_token: tokens.assistant_token,
        server_id,
        data_dir: running.central.config.data_dir.display().to_string(),
        admin_setup_url,
    };
    Ok(Quickstart { central: running, info, agent_stop, agent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_exports_the_tokens_and_never_puts_one_in_a_command() {
        let info = QuickstartInfo {
            grpc_url: "http://127.0.0.1:50051".into(),
            http_url: "http://127.0.0.1:8080".into(),
            mcp_url: "http://127.0.0.1:8080/mcp".into(),
            dashboard_url: "http://127.0.0.1:8080/".into(),
            admin_token: "mttrly_h_ADMIN".into(),
            assistant_token: "mttrly_a_ASSISTANT".into(),
            server_id: "srv_x".into(),
            data_dir: "/tmp/d".into(),
            admin_setup_url: Some("http://127.0.0.1:8080/invite/SECRET".into()),
        };
        let text = info.banner();
        assert!(text.contains("\nexport MTTRLY_TOKEN=mttrly_h_ADMIN\n"), "{text}");
        assert!(text.contains("\n  Dashboard: http://127.0.0.1:8080/\n"), "{text}");
        assert!(text.contains("second factor at http://127.0.0.1:8080/invite/SECRET\n"), "{text}");
        assert!(text.contains("\nexport MTTRLY_ASSISTANT_TOKEN=mttrly_a_ASSISTANT\n"), "{text}");
        assert!(text.contains("\nexport MTTRLY_CENTRAL=http://127.0.0.1:50051\n"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with("export ")) {
            assert!(
                !line.contains("mttrly_h_") && !line.contains("mttrly_a_"),
                "a token outside an export line: {line}"
            );
        }
    }
}
