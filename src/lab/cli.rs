//! The `card-issuer-lab` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::cluster_run::{self, ClusterRunArgs};
use super::fault_run::{self, FaultRunArgs};
use super::scaling::{self, ScalingArgs};
use crate::telemetry::{self, LogFormat};
use crate::tls;

/// Measurement runs for card-issuer: start the real worker and partner
/// simulator processes, break things on purpose, and print the figures.
#[derive(Parser)]
#[command(name = "card-issuer-lab", version)]
pub struct LabCli {
    /// The lab's own log lines, in RUST_LOG syntax; the processes it starts
    /// log to files of their own. lapin is silenced by default: it reports
    /// every broker restart the lab causes on purpose as an error.
    #[arg(long, default_value = "warn,lapin=off", global = true)]
    log: String,

    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Subcommand)]
enum LabCommand {
    FaultRun(Box<FaultRunArgs>),
    ClusterRun(Box<ClusterRunArgs>),
    Scaling(Box<ScalingArgs>),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = LabCli::parse();
    telemetry::init(LogFormat::Text, &cli.log);
    tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("card-issuer-lab: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        LabCommand::FaultRun(args) => runtime.block_on(fault_run::main(*args)),
        LabCommand::ClusterRun(args) => runtime.block_on(cluster_run::main(*args)),
        LabCommand::Scaling(args) => runtime.block_on(scaling::main(*args)),
    }
}
