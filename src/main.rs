//! The `card-issuer` binary: parses the command line and runs a subcommand.

use std::process::ExitCode;

fn main() -> ExitCode {
    card_issuer::cli::main()
}
