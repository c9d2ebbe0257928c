//! The benchmark: measurement tooling for the `card-issuer-bench` binary, not
//! part of the worker (it is built only with the `bench` feature).
//!
//! One run (`card-issuer-bench run`, or `scripts/bench`) measures, in rounds
//! that interleave every subject so that a noisy neighbour on the machine
//! hits them alike:
//!
//! - the **null worker** ([`null_worker`]): the worker's message flow on the
//!   broker (consume the command, publish a confirmed status check with zero
//!   delay, consume it, publish a confirmed event, acknowledge each step)
//!   with no HTTP and no decision logic; it runs as a process of its own,
//!   `card-issuer-bench null-worker`, as the real worker does;
//! - the **real worker** (`card-issuer run`, a process) against the partner
//!   simulator (`card-issuer simulate-partner`, a process) with no latency;
//! - the real worker against a simulator with 100 ms latency, against the
//!   ideal `C / ((1 + k) * L)`, beside the null worker sleeping the same
//!   latency in place of each call.
//!
//! Throughput is read from a backlog: the commands are published before the
//! subject starts, and cards a second are counted from the tenth event to
//! the last, so start-up and the publishing are outside the window. The
//! latency the worker adds is read at half its measured maximum, with
//! commands published at a steady rate to the worker and to the null
//! worker in turn. CPU comes from `/proc/<pid>/stat` of each process (the
//! broker is the `beam.smp` that listens on the AMQP port), memory from
//! `/proc/<pid>/status`.
//!
//! - [`plan`]: the run, round by round; [`trial`]: one measurement.
//! - [`traffic`]: commands out and events in; [`names`]: per-trial names.
//! - [`process`]: the child processes and what `/proc` says of them.
//! - [`stats`], [`report`], [`plot`]: figures, the markdown report, the PNG.

pub mod names;
pub mod null_worker;
pub mod plan;
pub mod plot;
pub mod process;
pub mod report;
pub mod stats;
pub mod traffic;
pub mod trial;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::broker::BrokerError;

/// Measures the card-issuer worker against a null worker on the local broker.
#[derive(Parser)]
#[command(name = "card-issuer-bench", version, about, long_about = None)]
struct BenchCli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Run the whole benchmark and write the report and the plot.
    Run(RunArgs),
    /// The null worker alone (the benchmark starts it; not for people).
    #[command(hide = true)]
    NullWorker(null_worker::NullWorkerArgs),
}

/// What one benchmark run measures and where it writes.
#[derive(Args, Clone)]
pub struct RunArgs {
    /// The broker; the run creates and deletes its own exchanges and queues.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,

    /// The `card-issuer` binary; by default the one beside this binary.
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,

    /// Cards per throughput trial.
    #[arg(long, default_value_t = 10000)]
    pub cards: usize,

    /// Rounds; each subject is measured once per round.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Concurrency (prefetch, and partner calls in flight) levels of the
    /// zero-latency sweep that the plot shows.
    #[arg(long, value_delimiter = ',', default_value = "8,32,64,128,256")]
    pub concurrency: Vec<u16>,

    /// The concurrency of the headline zero-latency comparison and of the
    /// latency measurement (the worker's default).
    #[arg(long, default_value_t = 64)]
    pub headline_concurrency: u16,

    /// The simulator's latency in the slow-partner trials.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub slow_latency: Duration,

    /// The concurrency of the slow-partner trials.
    #[arg(long, default_value_t = 256)]
    pub slow_concurrency: u16,

    /// How long each latency trial publishes at half load.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub latency_duration: Duration,

    /// Commands a second in the latency trials, instead of half the
    /// worker's measured maximum.
    #[arg(long)]
    pub latency_per_second: Option<f64>,

    /// Commands a second in the light-load latency trials, which show what
    /// the worker adds when the machine has CPU to spare.
    #[arg(long, default_value_t = 100.0)]
    pub light_per_second: f64,

    /// The broker's process id, when finding it by its listening socket
    /// fails (another user's broker, say).
    #[arg(long)]
    pub broker_pid: Option<u32>,

    /// Where the report (`benchmark.md`), the plot (`benchmark.png`) and the
    /// child processes' logs go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
}

/// Why a benchmark run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A broker operation failed.
    #[error("{what}")]
    Amqp {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: lapin::Error,
    },
    /// A file or process could not be used.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something did not happen in time or as it should.
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// A broker error with what was being done.
    pub fn amqp(what: impl Into<String>) -> impl FnOnce(lapin::Error) -> Self {
        let what = what.into();
        move |source| Self::Amqp { what, source }
    }
}

/// Parses the command line, runs the benchmark or the null worker, and turns
/// the result into an exit code.
pub fn main() -> ExitCode {
    let cli = BenchCli::parse();
    crate::telemetry::init(crate::telemetry::LogFormat::Text, "warn");
    crate::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("card-issuer-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            BenchCommand::Run(args) => plan::run(args).await,
            BenchCommand::NullWorker(args) => null_worker::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("card-issuer-bench: {}", crate::worker::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
