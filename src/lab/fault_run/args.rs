//! `card-issuer-lab fault-run`'s flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::lab::faults::FaultMix;
use crate::lab::run::RunOptions;
use crate::lab::worker::WorkerTuning;

/// Push commands through a real worker process and the partner simulator
/// while killing the worker, restarting the broker and faulting partner
/// calls; print what was lost, duplicated or conflicting. Exits 0 when
/// nothing was lost and nothing conflicts, 1 when something was, 2 when the
/// run could not be completed.
#[derive(Args)]
pub struct FaultRunArgs {
    /// Commands to publish, each with its own request id and customer.
    #[arg(long, default_value_t = 300)]
    pub commands: u32,

    /// Commands published per second.
    #[arg(long, default_value_t = 30.0)]
    pub rate: f64,

    /// Times the worker is killed with SIGKILL and started again, spread
    /// over the run.
    #[arg(long, default_value_t = 1)]
    pub kills: u32,

    /// Times the broker application is stopped and started again
    /// (`rabbitmqctl stop_app`, `start_app`), spread over the run. This
    /// disrupts everyone on that broker: see --rabbitmq-node.
    #[arg(long, default_value_t = 1)]
    pub broker_restarts: u32,

    /// How long the broker application stays stopped each time.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub broker_down: Duration,

    /// The broker the worker and the lab use.
    #[arg(
        long,
        value_name = "URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_default_value = true
    )]
    pub amqp_url: String,

    /// The node rabbitmqctl restarts (`rabbitmqctl -n NODE`), such as
    /// `lab@localhost` from `scripts/lab-broker`; rabbitmqctl's default node
    /// when not given. It must listen on the port of --amqp-url.
    #[arg(long, value_name = "NODE")]
    pub rabbitmq_node: Option<String>,

    /// The rabbitmqctl program.
    #[arg(long, default_value = "rabbitmqctl")]
    pub rabbitmqctl: PathBuf,

    /// How each worker runs.
    #[command(flatten)]
    pub worker: WorkerTuning,

    /// Patience, where the logs go, the simulator's seed.
    #[command(flatten)]
    pub run: RunOptions,

    /// Comes last: its help heading would otherwise cover the flags after it.
    #[command(flatten)]
    pub faults: FaultMix,
}
