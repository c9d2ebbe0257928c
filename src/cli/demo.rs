//! `card-issuer demo`: the whole flow on the local broker.

use std::net::SocketAddr;

use clap::Args;

use super::{CliError, Loaded};
use crate::demo;
use crate::settings::{BrokerArgs, BrokerSettings};

/// Start the partner simulator and a worker against the local broker, send a
/// command for each kind of outcome, and print the outcomes as they arrive.
/// Exits 0 when every command reached the outcome it should.
#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    broker: BrokerArgs,

    /// Where the demo worker serves /metrics; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    metrics_addr: SocketAddr,
}

/// Runs the demo; a demo whose commands went astray is an error.
pub async fn run(args: &DemoArgs, loaded: Loaded<'_>) -> Result<(), CliError> {
    let broker = BrokerSettings::load_connection(&loaded.layers()?)?;
    if demo::run(broker, args.metrics_addr).await? {
        Ok(())
    } else {
        Err(CliError::DemoFailed)
    }
}
