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
    /// Install this agent as a hardened systemd service (as root): the system user `mttrly-agent`,
    /// the state dir (0700) with credentials (0600, enrolled with the token), the versions dir
    /// with this binary, the units, and a root-owned receipt (/etc/mttrly-agent/install.json);
    /// then enable and start. Running it again is harmless. Without systemd it says so and prints
    /// the foreground command. With --root DIR everything is laid down under DIR and nothing on
    /// this host is touched (no user created, no systemctl): the service user of such a staged
    /// install is whoever runs it (its uid/gid own the files and are recorded in the receipt);
    /// the units still name `User=mttrly-agent` for the image.
    Install {
        /// Central's gRPC URL, as printed by `mttrly-cli servers add`.
        #[arg(long, env = env::CENTRAL)]
        central: String,
        /// The single-use install token (read from the environment by the install script, so it
        /// never appears in a URL or a process list). Unused when credentials are already there.
        #[arg(long, env = env::INSTALL_TOKEN, hide_env_values = true)]
        token: String,
        /// Central's CA certificate, base64 of its PEM (for https:// centrals).
        #[arg(long)]
        ca_cert_b64: Option<String>,
        /// Stage the install under this directory instead of the host.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Lay everything down but do not enable or start the service.
        #[arg(long)]
        no_start: bool,
        /// The owner's policy file to install as /etc/mttrly-agent/policy.toml (validated first;
        /// its `service_capabilities` become the unit's capabilities).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Remove what `install` laid down, exactly as its receipt lists (as root, or under --root).
    Uninstall {
        /// The staged install's directory.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Keep the state dir (credentials, ledger, versions) for a later reinstall.
        #[arg(long)]
        keep_state: bool,
    },
    /// Connect to central and stay connected (reconnecting with backoff) until SIGINT or SIGTERM.
    Run {
        /// Where the credentials are.
        #[arg(long, env = env::STATE_DIR, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// The server owner's policy file (TOML); built-in defaults when absent.
        #[arg(long, env = env::POLICY)]
        policy: Option<PathBuf>,
        /// The root of this agent's installation, for install health and repair: `/` on a host,
        /// the directory of an install staged with `install --root DIR`.
        #[arg(long, default_value = "/")]
        install_root: PathBuf,
    },
    /// As root, performs a pending repair the agent requested (started by the path unit
    /// mttrly-agent-repair.path): recomputes the plan from the root-owned receipt and performs it
    /// only if its hash equals the approved one. Prints the result.
    Repair {
        /// Perform the pending request (`repair-request.json` in the state dir).
        #[arg(long, required = true)]
        pending: bool,
        /// A staged install's directory.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Internal: started by the agent at start when it runs from an installed release; prints the
    /// release's version if this binary is the one the release's verified manifest names (see
    /// `update::identity`).
    #[command(hide = true)]
    ProveIdentity {
        /// The version directory holding this binary and its `manifest.json`.
        #[arg(long)]
        dir: PathBuf,
        /// The trusted root keys, space separated (`ed25519:<base64>`).
        #[arg(long, default_value = "")]
        roots: String,
    },
    /// Internal: started by the agent before it restarts into a new version; kills that version
    /// if it neither commits nor rolls back by the update's deadline (see `update::watchdog`).
    #[command(hide = true)]
    UpdateWatchdog {
        /// The versions directory holding the update marker.
        #[arg(long)]
        versions_dir: PathBuf,
        /// The process to watch.
        #[arg(long)]
        pid: i32,
        /// The update action.
        #[arg(long)]
        action: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The watchdog needs no runtime and no logging setup beyond stderr.
    if let Command::UpdateWatchdog { versions_dir, pid, action } = &cli.command {
        mttrly_agent::update::watchdog::watch(versions_dir, *pid, action);
        return ExitCode::SUCCESS;
    }
    if let Command::ProveIdentity { dir, roots } = &cli.command {
        return mttrly_agent::update::identity::prove(dir, roots);
    }
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
        Command::Install { central, token, ca_cert_b64, root, no_start, policy } => {
            let ca = mttrly_agent::enroll::ca_certificate(ca_cert_b64.as_deref(), None).map_err(|e| (output, e))?;
            let binary = std::env::current_exe().map_err(|source| {
                (output, AgentError::State { what: "cannot find", path: "this executable".into(), source })
            })?;
            let opts = mttrly_agent::install::setup::InstallOptions {
                layout: layout_of(root),
                central,
                token,
                ca_pem: ca,
                policy,
                no_start,
                binary,
            };
            let done = mttrly_agent::install::setup::install(&opts).await.map_err(|e| (output, e.into()))?;
            print_installed(output, &done);
            Ok(())
        }
        Command::Uninstall { root, keep_state } => {
            let done = mttrly_agent::install::setup::uninstall(&layout_of(root), keep_state)
                .map_err(|e| (output, e.into()))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({ "removed": done.removed, "kept": done.kept, "removed_user": done.removed_user })
                ),
                Output::Table => {
                    println!(
                        "removed {} path(s){}",
                        done.removed.len(),
                        if done.removed_user { " and the user mttrly-agent" } else { "" }
                    );
                    for kept in &done.kept {
                        println!("kept {}", kept.display());
                    }
                }
            }
            Ok(())
        }
        Command::Repair { pending: _, root } => {
            let result =
                mttrly_agent::install::repair::perform_pending(&layout_of(root)).map_err(|e| (output, e.into()))?;
            match (output, result) {
                (Output::Json, result) => println!("{}", serde_json::to_string(&result).unwrap_or_default()),
                (Output::Table, None) => println!("no pending repair"),
                (Output::Table, Some(r)) => match (&r.outcome, &r.error) {
                    (Some(o), _) => println!("repaired ({}): {} change(s)", o.strategy.as_str(), o.changed.len()),
                    (None, Some(e)) => println!("refused: {e}"),
                    (None, None) => println!("nothing done"),
                },
            }
            Ok(())
        }
        Command::Run { state_dir, policy, install_root } => {
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
            let mut options = RunOptions::new(state_dir, policy);
            options.install = layout_of(Some(install_root));
            mttrly_agent::run(options, stopped).await.map_err(|e| (output, e))
        }
        Command::UpdateWatchdog { .. } | Command::ProveIdentity { .. } => Ok(()),
    }
}

fn layout_of(root: Option<PathBuf>) -> mttrly_agent::install::layout::Layout {
    root.map_or_else(mttrly_agent::install::layout::Layout::system, mttrly_agent::install::layout::Layout::under)
}

fn print_installed(output: Output, done: &mttrly_agent::install::setup::Installed) {
    use mttrly_agent::install::setup::Started;
    let started = match &done.started {
        Started::Systemd => "started by systemd".to_owned(),
        Started::NoSystemd { foreground } => {
            format!("this host has no systemd: run the agent in the foreground with\n  {foreground}")
        }
        Started::Staged => "staged: nothing on this host was started".to_owned(),
        Started::NotStarted => {
            "not started (--no-start): systemctl enable --now mttrly-agent-repair.path mttrly-agent.service".to_owned()
        }
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "server_id": done.receipt.server_id,
                "version": done.receipt.version,
                "binary_sha256": done.receipt.binary_sha256,
                "enrolled": done.enrolled,
                "systemd": matches!(done.started, Started::Systemd),
                "started": started,
            })
        ),
        Output::Table => println!(
            "installed mttrly-agent {} as {} ({}); {}",
            done.receipt.version,
            done.receipt.server_id,
            if done.enrolled { "enrolled" } else { "existing credentials kept" },
            started
        ),
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
