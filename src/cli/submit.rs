//! `card-issuer submit`: one command in, its event out.

use std::io::Read;
use std::time::Duration;

use clap::Args;

use super::{CliError, Loaded};
use crate::ops::submit::submit;
use crate::settings::{BrokerArgs, BrokerSettings, TopologyArgs};

/// Publish one open-card command, as an upstream service would, and wait for
/// its event, which is printed as JSON (without the full card number). Exit code 0 for `card.issued`, 2 for
/// `card.failed`, 1 when nothing arrived in time.
#[derive(Args)]
pub struct SubmitArgs {
    /// The command as JSON: a file, or `-` for standard input (personal data
    /// typed on the command line would show in `ps` and shell history).
    #[arg(value_name = "FILE")]
    command: String,

    /// How long to wait for the event.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    wait: Duration,

    /// A `correlation_id` for the command, carried into the event.
    #[arg(long)]
    correlation_id: Option<String>,

    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    topology: TopologyArgs,
}

/// Submits and prints; returns whether the card was issued.
pub async fn run(args: &SubmitArgs, loaded: Loaded<'_>) -> Result<bool, CliError> {
    let broker = BrokerSettings::load(&loaded.layers()?)?;
    let body = read_body(&args.command)?;
    let event = submit(&broker, &body, args.correlation_id.as_deref(), args.wait).await?;
    // The full card number is for the upstream service, not a terminal or
    // its scrollback; the masked one stays.
    let mut shown = event.body.clone();
    if let Some(body) = shown.as_object_mut() {
        body.remove("cardNumber");
    }
    println!("{} {shown}", event.routing_key);
    Ok(event.routing_key == "card.issued")
}

fn read_body(source: &str) -> Result<Vec<u8>, CliError> {
    let mut body = Vec::new();
    let read = if source == "-" {
        std::io::stdin().read_to_end(&mut body).map(drop)
    } else {
        std::fs::read(source).map(|bytes| body = bytes)
    };
    read.map_err(|error| CliError::Input {
        what: format!("the command {source}"),
        why: error.to_string(),
    })?;
    Ok(body)
}
