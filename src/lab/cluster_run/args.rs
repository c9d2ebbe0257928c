//! `card-issuer-lab cluster-run`'s flags.

use std::time::Duration;

use clap::Args;

use crate::lab::faults::FaultMix;
use crate::lab::run::RunOptions;
use crate::lab::worker::WorkerTuning;

/// Start a three-node RabbitMQ cluster of the lab's own on loopback, run
/// worker replicas connected to different nodes against the partner
/// simulator, push commands, and meanwhile stop the node that leads the
/// command queue, start it again, stop another, and roll a restart through
/// every node. Print what was lost, duplicated or conflicting, the
/// failovers each replica saw and how long outcomes stalled after each
/// node loss. Needs Debian's rabbitmq-server and root (or the rabbitmq
/// user). Exits 0 when nothing was lost and nothing conflicts, 1 when
/// something was, 2 when the run could not be completed.
#[derive(Args)]
pub struct ClusterRunArgs {
    /// Commands to publish, each with its own request id and customer.
    #[arg(long, default_value_t = 600)]
    pub commands: u32,

    /// Commands published per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,

    /// Worker replicas; replica i connects to node i first (in turn when
    /// there are more replicas than nodes).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,

    /// Node i of the cluster listens for AMQP on this port + i - 1 and for
    /// Erlang distribution 20000 above; none may be 5672.
    #[arg(long, default_value_t = 5691)]
    pub base_port: u16,

    /// How long a stopped node stays down.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub node_down: Duration,

    /// How each worker runs.
    #[command(flatten)]
    pub worker: WorkerTuning,

    /// Patience, where the logs and the nodes' data go (the data is
    /// deleted at the end), the simulator's seed.
    #[command(flatten)]
    pub run: RunOptions,

    /// Comes last: its help heading would otherwise cover the flags after it.
    #[command(flatten)]
    pub faults: FaultMix,
}
