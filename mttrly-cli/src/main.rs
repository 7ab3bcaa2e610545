//! `mttrly-cli`: parses arguments and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mttrly_cli::parse();
    mttrly_cli::run(&cli)
}
