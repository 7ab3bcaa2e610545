//! `mttrly-agent`: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mttrly_agent::env;
use mttrly_agent::policy::LocalPolicy;
use mttrly_agent::{AgentError, RunOptions};

/// Where credentials and state live unless `--state-dir` or [`env::STATE_DIR`] says otherwise.
const DEFAULT_STATE_DIR: &str = "/var/lib/mttrly-agent";

/// mttrly-agent: connects this server outbound to mttrly central and does only what central's
/// approval flow and this server's local policy both allow. It never listens on a port.
#[derive(Debug, Parser)]
#[command(name = "mttrly-agent", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// How to print results: readable text, or one JSON object for scripts.
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
    /// Trade a single-use install token for this server's credentials (saved with mode 0600).
    Enroll {
        /// Central's gRPC URL, as printed by `mttrly-cli servers add`.
        #[arg(long, env = env::CENTRAL)]
        central: String,
        /// The install token printed by `mttrly-cli servers add`.
        #[arg(long, env = env::INSTALL_TOKEN, hide_env_values = true)]
        token: String,
        /// Where to keep credentials and state.
        #[arg(long, env = env::STATE_DIR, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Central's CA certificate, base64 of its PEM, as printed by `mttrly-cli servers add`
        /// (for https:// centrals; the agent trusts this CA only).
        #[arg(long, conflicts_with = "ca_cert")]
        ca_cert_b64: Option<String>,
        /// Central's CA certificate as a PEM file (alternative to --ca-cert-b64).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        /// Replace existing credentials (reinstall with a new token).
        #[arg(long)]
        force: bool,
    },
    /// Connect to central and stay connected (reconnecting with backoff) until SIGINT or SIGTERM.
    Run {
        /// Where the credentials are.
        #[arg(long, env = env::STATE_DIR, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// The server owner's policy file (TOML); built-in defaults when absent.
        #[arg(long, env = env::POLICY)]
        policy: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(env::LOG)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((output, err)) => {
            report(output, &err);
            ExitCode::FAILURE
        }
    }
}

fn report(output: Output, err: &AgentError) {
    match (output, err) {
        (Output::Json, AgentError::Central(e)) => eprintln!("{}", serde_json::to_string(&e.body()).unwrap_or_default()),
        (Output::Json, other) => {
            let message = mttrly_core::ErrorChain(other).to_string();
            eprintln!("{}", serde_json::json!({ "code": "VALIDATION_ERROR", "message": message }));
        }
        (Output::Table, AgentError::Central(e)) => {
            eprintln!("error[{}]: {}\n  hint: {}", e.code(), e.message(), e.code().suggested_action());
        }
        // The whole chain: `State` keeps the I/O error as its source, not in its message.
        (Output::Table, other) => eprintln!("error: {}", mttrly_core::ErrorChain(other)),
    }
}

async fn run(cli: Cli) -> Result<(), (Output, AgentError)> {
    let output = cli.output;
    match cli.command {
        Command::Enroll { central, token, state_dir, ca_cert_b64, ca_cert, force } => {
            let ca = mttrly_agent::enroll::ca_certificate(ca_cert_b64.as_deref(), ca_cert.as_deref())
                .map_err(|e| (output, e))?;
            let creds =
                mttrly_agent::enroll::enroll(&central, &token, ca, &state_dir, force).await.map_err(|e| (output, e))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({ "server_id": creds.server_id, "state_dir": state_dir.display().to_string() })
                ),
                Output::Table => println!(
                    "enrolled as {}; credentials saved in {}\nstart the agent with: mttrly-agent run --state-dir {}",
                    creds.server_id,
                    state_dir.display(),
                    state_dir.display()
                ),
            }
            Ok(())
        }
        Command::Run { state_dir, policy } => {
            let policy = match policy {
                Some(path) => LocalPolicy::load(&path).map_err(|e| (output, e))?,
                None => LocalPolicy::default(),
            };
            let mut signal =
                mttrly_agent::signal::ShutdownSignal::listen().map_err(|e| (output, AgentError::Signals(e)))?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                signal.recv().await;
                let _ = stop.send(true);
            });
            mttrly_agent::run(RunOptions::new(state_dir, policy), stopped).await.map_err(|e| (output, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every variable the agent documents in `env.rs` is the one its arguments read.
    #[test]
    fn arguments_read_the_variables_env_rs_declares() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let env_of = |sub: &str, arg: &str| {
            let sub = cli.find_subcommand(sub).unwrap_or_else(|| panic!("no subcommand {sub}"));
            let arg = sub.get_arguments().find(|a| a.get_id() == arg).unwrap_or_else(|| panic!("no --{arg}"));
            arg.get_env().and_then(|e| e.to_str()).map(str::to_owned)
        };
        assert_eq!(env_of("enroll", "central").as_deref(), Some(env::CENTRAL));
        assert_eq!(env_of("enroll", "token").as_deref(), Some(env::INSTALL_TOKEN));
        assert_eq!(env_of("enroll", "state_dir").as_deref(), Some(env::STATE_DIR));
        assert_eq!(env_of("run", "state_dir").as_deref(), Some(env::STATE_DIR));
        assert_eq!(env_of("run", "policy").as_deref(), Some(env::POLICY));
    }
}
