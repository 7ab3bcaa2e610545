//! `mttrly-cli`: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = mttrly_cli::Cli::parse();
    mttrly_cli::run(&cli)
}
