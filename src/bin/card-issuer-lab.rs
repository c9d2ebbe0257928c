//! The `card-issuer-lab` binary: measurement runs against the real worker
//! and simulator processes. Not part of the worker; see `card_issuer::lab`.

use std::process::ExitCode;

fn main() -> ExitCode {
    card_issuer::lab::main()
}
