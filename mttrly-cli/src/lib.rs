//! The human's command-line tool for mttrly.
//!
//! Every command prints a readable table by default and stable JSON with `--output json`, so
//! scripts can drive it. Errors go to stderr (as the seed's error body in JSON mode) with a
//! non-zero exit status: 1 when the request failed, 2 when the command line itself is wrong.

mod cli;
mod client;
mod commands;
mod credentials;
mod output;

use std::process::ExitCode;

pub use cli::{Cli, Command, OutputFormat};
use mttrly_core::{ErrorCode, MttrlyError};
use output::Printer;

/// Parses the process's command line (exiting on a bad one, as clap does), noting where
/// `--token` and `--central` came from: the credentials file `login` wrote stands in only for
/// what was given neither as a flag nor in the environment.
pub fn parse() -> Cli {
    use clap::parser::ValueSource;
    use clap::{CommandFactory as _, FromArgMatches as _};
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.token_from_env = matches.value_source("token") == Some(ValueSource::EnvVariable);
    cli.central_defaulted = matches.value_source("central") == Some(ValueSource::DefaultValue);
    cli
}

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: &Cli) -> ExitCode {
    let printer = Printer::new(cli.output);
    let result = match &cli.command {
        Command::Tools(cmd) => commands::tools::run(cmd, &printer),
        Command::Releases(cmd) if cmd.is_offline() => commands::releases::run_offline(cmd, &printer),
        Command::Policy(cmd) if cmd.is_offline() => match commands::policy::run(cmd, &printer) {
            // A denied path: the verdict is already printed; the status says it.
            Ok(false) => return ExitCode::from(1),
            other => other.map(|_| ()),
        },
        remote => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => match runtime.block_on(run_remote(cli, remote, &printer)) {
                // A decided action that failed: the outcome is already printed; the status says it.
                Ok(false) => return ExitCode::from(1),
                other => other.map(|_| ()),
            },
            Err(e) => Err(MttrlyError::new(ErrorCode::InternalError, format!("cannot start the runtime: {e}"))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            ExitCode::from(1)
        }
    }
}

/// Runs a command against central; `Ok(false)` when it printed an outcome that is a failure
/// (an approved action that failed), so the exit status can say so.
async fn run_remote(cli: &Cli, command: &Command, printer: &Printer) -> Result<bool, MttrlyError> {
    match command {
        Command::Login => return commands::login::login(cli, printer).await.map(|()| true),
        Command::Logout => return commands::login::logout(cli, printer).await.map(|()| true),
        _ => {}
    }
    let (token, bare_token) = caller_token(cli)?;
    let caller = credentials::caller(
        &cli.central,
        cli.central_defaulted,
        token,
        bare_token || cli.token_from_env,
        cli.ca_cert.as_deref(),
    )?;
    let channel = client::connect(&caller.central, caller.token.as_deref(), caller.ca_cert.as_deref()).await?;
    match command {
        Command::Servers(cmd) => commands::servers::run(cmd, channel, printer).await.map(|()| true),
        Command::Alerts(cmd) => commands::alerts::run(cmd, channel, printer).await.map(|()| true),
        Command::Deploys(cmd) => commands::deploys::run(cmd, channel, printer).await.map(|()| true),
        Command::Knowledge(cmd) => commands::knowledge::run(cmd, channel, printer).await.map(|()| true),
        Command::Actions(cmd) => commands::actions::run(cmd, channel, printer).await,
        Command::Tokens(cmd) => commands::tokens::run(cmd, channel, printer).await.map(|()| true),
        Command::Audit(cmd) => commands::audit::run(cmd, channel, printer).await.map(|()| true),
        Command::Investigations(cmd) => commands::investigations::run(cmd, channel, printer).await.map(|()| true),
        Command::Users(cmd) => commands::users::run(cmd, bare_token, channel, printer).await.map(|()| true),
        Command::Whoami => commands::users::whoami(channel, printer, &caller.source).await.map(|()| true),
        Command::Policy(cmd) => commands::policy::run_remote(cmd, channel, printer).await,
        Command::Totp(cmd) => commands::totp::run(cmd, channel, printer).await.map(|()| true),
        Command::Releases(cmd) => commands::releases::run(cmd, channel, printer).await.map(|()| true),
        Command::Tools(_) | Command::Login | Command::Logout => Ok(true),
    }
}

/// The caller's own token, and whether `--token` was given without a value. A bare `--token` is
/// `users add`'s request for the new user's token (the grammar the issue promised: `users add
/// NAME --role R --token`); clap cannot have a subcommand flag share the global option's name, so
/// the global option takes an optional value and the bare form is told apart here. The caller's
/// own token then comes from `MTTRLY_TOKEN`. Anywhere else a bare `--token` is a mistake.
fn caller_token(cli: &Cli) -> Result<(Option<String>, bool), MttrlyError> {
    if cli.token.as_deref() != Some("") {
        return Ok((cli.token.clone(), false));
    }
    if !matches!(&cli.command, Command::Users(cli::UsersCommand::Add(_))) {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "--token needs a value: your token (or set MTTRLY_TOKEN)",
        )
        .with_detail("field", "token"));
    }
    match std::env::var("MTTRLY_TOKEN") {
        Ok(mine) if !mine.is_empty() => Ok((Some(mine), true)),
        _ => Err(MttrlyError::new(
            ErrorCode::AuthFailed,
            "a bare --token asks for the new user's token, so yours must come from MTTRLY_TOKEN; or pass --token YOURS with --print-token",
        )),
    }
}
