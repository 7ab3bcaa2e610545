//! The human's command-line tool for mttrly.
//!
//! Every command prints a readable table by default and stable JSON with `--output json`, so
//! scripts can drive it. Errors go to stderr (as the seed's error body in JSON mode) with a
//! non-zero exit status: 1 when the request failed, 2 when the command line itself is wrong.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

pub use cli::{Cli, Command, OutputFormat};
use output::Printer;

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: &Cli) -> ExitCode {
    let printer = Printer::new(cli.output);
    let result = match &cli.command {
        Command::Tools(cmd) => commands::tools::run(cmd, &printer),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            ExitCode::from(1)
        }
    }
}
