//! `mttrly-central`: parses arguments, loads configuration, and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mttrly_central::config::Config;
use mttrly_core::{MttrlyError, Plan};
use serde_json::json;

/// mimalloc rather than glibc's allocator: a request allocates and frees many small buffers
/// (JSON, HTTP, SQLite rows) across threads, and glibc's `malloc`/`free` (with its arena
/// consolidation) measured about a fifth of central's CPU under publish load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mttrly-central: the server of mttrly, the incident-response action layer for MCP. Agents
/// connect to it over gRPC; humans use mttrly-cli.
#[derive(Debug, Parser)]
#[command(name = "mttrly-central", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// How to print results: readable text, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Readable text.
    Table,
    /// JSON.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database, the first account and its admin; print the admin's token once.
    Init {
        #[command(flatten)]
        common: Common,
        /// The first account's plan.
        #[arg(long, value_parser = parse_plan)]
        plan: Option<Plan>,
        /// Also create a private CA and a server certificate: gRPC is then served over TLS and
        /// agents pin this CA.
        #[arg(long)]
        tls: bool,
        /// An extra host name or IP for the server certificate (repeatable; with --tls).
        #[arg(long = "tls-name", requires = "tls")]
        tls_names: Vec<String>,
    },
    /// Accounts (tenants) on this central, for those who host several teams: create, list.
    /// Works on the data directory directly, like `init`, and may run while central serves.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Serve gRPC (agents, CLI, API) and HTTP until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
    },
    /// Init if needed, serve, enroll and run an agent for this machine, print URLs and tokens.
    #[cfg(feature = "quickstart-agent")]
    Quickstart {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Create an account with its first admin and print that admin's single-use invite link
    /// (valid 72 hours), where they set a password and a second factor. No token is printed:
    /// the admin gets one with `mttrly-cli login` after signing in.
    Create {
        #[command(flatten)]
        common: Common,
        /// The account's name (letters, digits, `.`, `-`, `_`; unique on this central).
        name: String,
        /// The account's plan.
        #[arg(long, value_parser = parse_plan)]
        plan: Plan,
        /// The first admin's user name.
        #[arg(long, default_value = "admin")]
        admin: String,
    },
    /// List the accounts: id, name, plan, users, servers, created.
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// A TOML configuration file (environment variables and flags override it). The limits
    /// against hostile load (mcp_sessions_per_token, mcp_sessions_per_user,
    /// mcp_session_idle_seconds, max_pending_actions_per_server, http_max_connections,
    /// grpc_max_connections, max_handshaking_connections, handshake_timeout_seconds,
    /// http_idle_timeout_seconds, grpc_idle_timeout_seconds, mcp_approval_wait_seconds,
    /// investigation_idle_minutes, bypass_max_minutes) are also
    /// read from MTTRLY_<KEY>.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the database and state live [env: MTTRLY_DATA_DIR] [default: ./mttrly-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct Listen {
    /// gRPC listen address; port 0 picks a free port [env: MTTRLY_GRPC_LISTEN] [default: 127.0.0.1:50051]
    #[arg(long)]
    grpc_listen: Option<SocketAddr>,
    /// HTTP listen address; port 0 picks a free port [env: MTTRLY_HTTP_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Allow plaintext gRPC on a non-loopback address (logs a warning) [env: MTTRLY_INSECURE]
    #[arg(long)]
    insecure: bool,
    /// Expose only tools that change nothing, to MCP and the API alike [env: MTTRLY_READ_ONLY]
    #[arg(long)]
    read_only: bool,
    /// Expose only these toolsets, comma-separated: servers, diagnostics, playbooks, commands,
    /// files, actions, install, investigations, knowledge [env: MTTRLY_TOOLSETS] [default: all]
    #[arg(long, value_name = "LIST")]
    toolsets: Option<String>,
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse().map_err(|e: mttrly_core::plan::UnknownPlan| e.to_string())
}

fn load(common: &Common, listen: Option<&Listen>) -> Result<Config, MttrlyError> {
    let mut config = match &common.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(dir) = &common.data_dir {
        config.data_dir.clone_from(dir);
    }
    if let Some(listen) = listen {
        if let Some(addr) = listen.grpc_listen {
            config.grpc_listen = addr;
        }
        if let Some(addr) = listen.http_listen {
            config.http_listen = addr;
        }
        config.insecure |= listen.insecure;
        config.tools.read_only |= listen.read_only;
        if let Some(list) = &listen.toolsets {
            config.tools = mttrly_core::ToolSurface::from_flags(config.tools.read_only, Some(list))?;
        }
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // MTTRLY_LOG, else RUST_LOG, else info without rmcp's per-session chatter (one
            // line per action event is what an operator watches).
            tracing_subscriber::EnvFilter::try_from_env(mttrly_central::env::LOG)
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let output = cli.output;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            match output {
                Output::Json => eprintln!("{}", json!({ "code": err.code, "message": err.message })),
                Output::Table => eprintln!("error[{}]: {}", err.code, err.message),
            }
            ExitCode::FAILURE
        }
    }
}

struct Failure {
    code: &'static str,
    message: String,
}

impl From<MttrlyError> for Failure {
    fn from(e: MttrlyError) -> Self {
        Self { code: e.code().as_str(), message: e.message().to_owned() }
    }
}

/// An error with its whole chain of causes (errors keep inner errors as sources, not in their
/// messages), under the code of the seed error inside it, or `code` when there is none.
fn failure(code: &'static str, e: &(dyn std::error::Error + 'static)) -> Failure {
    let chain = mttrly_core::ErrorChain(e);
    Failure { code: chain.code().map_or(code, |c| c.as_str()), message: chain.to_string() }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Init { common, plan, tls, tls_names } => {
            let mut config = load(&common, None)?;
            if let Some(plan) = plan {
                config.plan = plan;
            }
            let done = mttrly_central::init::init(&config, tls.then_some(tls_names.as_slice()))?;
            match cli.output {
                Output::Json => println!("{}", json!(done)),
                Output::Table => {
                    println!(
                        "initialised {} (account {}, plan {})\n\nadmin token (shown once; store it now):\n  {}\n\n\
                         use it with: export MTTRLY_TOKEN={}",
                        done.data_dir, done.account_id, done.plan, done.admin_token, done.admin_token
                    );
                    if let Some(sha) = &done.tls_ca_sha256 {
                        println!(
                            "\nTLS: private CA in {}/tls/ca.pem (sha256 {sha}); gRPC is served over TLS.\n\
                             mttrly-cli needs --ca-cert {}/tls/ca.pem (or MTTRLY_CA_CERT).",
                            done.data_dir, done.data_dir
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Accounts { command } => accounts(command, cli.output).await,
        Command::Serve { common, listen } => {
            let config = load(&common, Some(&listen))?;
            let mut signal = listen_for_signals()?;
            let running = mttrly_central::server::start(config).await.map_err(|e| failure("INTERNAL_ERROR", &e))?;
            match cli.output {
                Output::Json => {
                    println!(
                        "{}",
                        json!({ "grpc_url": running.grpc_url(), "http_url": running.http_url(), "mcp_url": running.mcp_url() })
                    );
                }
                Output::Table => {
                    println!("gRPC: {}\nHTTP: {}\nMCP:  {}", running.grpc_url(), running.http_url(), running.mcp_url());
                }
            }
            signal.recv().await;
            tracing::info!("shutting down");
            running.shutdown().await;
            Ok(())
        }
        #[cfg(feature = "quickstart-agent")]
        Command::Quickstart { common, listen } => {
            let config = load(&common, Some(&listen))?;
            let mut signal = listen_for_signals()?;
            let quick = mttrly_central::quickstart::start(config).await.map_err(|e| failure("INTERNAL_ERROR", &e))?;
            let info = &quick.info;
            match cli.output {
                Output::Json => println!("{}", json!(info)),
                Output::Table => println!("{}", info.banner()),
            }
            signal.recv().await;
            tracing::info!("shutting down");
            quick.shutdown().await;
            Ok(())
        }
    }
}

/// Opens an initialised data directory's database (never creates one: a typo in `--data-dir`
/// must not make a fresh, empty central).
fn open_initialised(config: &Config) -> Result<mttrly_central::db::Db, Failure> {
    let path = config.database_path();
    if !path.exists() {
        return Err(Failure {
            code: "VALIDATION_ERROR",
            message: format!(
                "{} is not initialised (no {}); run `mttrly-central init` or `quickstart` first",
                config.data_dir.display(),
                path.display()
            ),
        });
    }
    mttrly_central::db::Db::open(&path).map_err(|e| failure("INTERNAL_ERROR", &e))
}

async fn accounts(command: AccountsCommand, output: Output) -> Result<(), Failure> {
    match command {
        AccountsCommand::Create { common, name, plan, admin } => {
            let config = load(&common, None)?;
            let db = open_initialised(&config)?;
            let created = mttrly_central::accounts::create(&config, &db, &name, plan, &admin).await?;
            match output {
                Output::Json => println!("{}", json!(created)),
                Output::Table => println!(
                    "created account {} ({}, plan {})\n\n\
                     first admin `{}`: send them this single-use link (valid until {}):\n  {}\n\n\
                     There they set a password and a second factor; then `mttrly-cli login` gives them a CLI token.",
                    created.name,
                    created.account_id,
                    created.plan,
                    created.admin_name,
                    jiff::Timestamp::from_millisecond(created.expires_at)
                        .map_or_else(|_| "?".to_owned(), |t| t.to_string()),
                    created.invite_url
                ),
            }
            Ok(())
        }
        AccountsCommand::List { common } => {
            let config = load(&common, None)?;
            let db = open_initialised(&config)?;
            let rows = mttrly_central::accounts::list(&db).await?;
            match output {
                Output::Json => println!("{}", json!(rows)),
                Output::Table => {
                    println!("{:<36}  {:<20}  {:<16}  {:>5}  {:>7}  CREATED", "ID", "NAME", "PLAN", "USERS", "SERVERS");
                    for r in rows {
                        let created = jiff::Timestamp::from_millisecond(r.created_at)
                            .map_or_else(|_| "?".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M").to_string());
                        println!(
                            "{:<36}  {:<20}  {:<16}  {:>5}  {:>7}  {created}",
                            r.id.as_str(),
                            r.name,
                            r.plan.as_str(),
                            r.users,
                            r.servers
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

/// Installs the SIGINT/SIGTERM handlers before anything announces readiness.
fn listen_for_signals() -> Result<mttrly_central::signal::ShutdownSignal, Failure> {
    mttrly_central::signal::ShutdownSignal::listen().map_err(|e| failure("INTERNAL_ERROR", &e))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// `serve --help` names every limit key, so an operator finds them without the README.
    #[test]
    fn serve_help_names_every_limit_key() {
        let mut cli = Cli::command();
        let help = cli.find_subcommand_mut("serve").expect("serve").render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for var in mttrly_central::env::LIMITS {
            let key = var.trim_start_matches("MTTRLY_").to_ascii_lowercase();
            assert!(help.contains(&key), "`serve --help` does not name {key}:\n{help}");
        }
        assert!(help.contains("MTTRLY_<KEY>"), "{help}");
    }
}
