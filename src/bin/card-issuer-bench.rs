//! `card-issuer-bench`: measurement tooling for the worker, not part of it;
//! everything lives in `card_issuer::bench`.

use std::process::ExitCode;

fn main() -> ExitCode {
    card_issuer::bench::main()
}
