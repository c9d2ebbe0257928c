//! The command line: one binary, a subcommand per job.

use std::process::ExitCode;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::health::{self, Readiness};
use crate::settings::{
    BrokerArgs, ConfigArgs, IssuanceArgs, Layers, PartnerArgs, Settings, SettingsError, WorkerArgs,
    ids_of, redact_url,
};
use crate::telemetry::{self, LogFormat};
use crate::worker::{self, WorkerError, error_chain};

/// Issues virtual bank cards from RabbitMQ commands through the bank
/// partner's API.
#[derive(Parser)]
#[command(name = "card-issuer", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    config: ConfigArgs,

    /// Log lines as `text` or `json` (one object per line, for Loki or ELK).
    #[arg(
        long,
        env = "CARD_ISSUER_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,

    /// Which log lines to write, in RUST_LOG syntax: `info`, `debug`,
    /// `card_issuer=debug,lapin=warn`.
    #[arg(long, env = "CARD_ISSUER_LOG", default_value = "info", global = true)]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The worker: declares its topology, consumes open-card commands, issues
    /// cards through the partner and publishes events; serves /metrics.
    Run(RunArgs),
}

/// Everything `run` can be told.
#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    partner: PartnerArgs,
    #[command(flatten)]
    issuance: IssuanceArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// What stops a subcommand; printed with its causes, and the exit code is 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A setting is missing or wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The worker could not start.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Parses the command line, runs the subcommand and turns its result into
/// an exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    telemetry::init(cli.log_format, &cli.log);

    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|runtime| runtime.block_on(dispatch(cli, &matches)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let chain = error_chain(&error);
            tracing::error!(error = %chain, "stopped");
            eprintln!("card-issuer: {chain}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli, matches: &ArgMatches) -> Result<(), CliError> {
    let (_, sub_matches) = matches.subcommand().expect("clap requires a subcommand");
    let config = cli.config.config.as_deref().map(std::path::Path::new);
    match cli.command {
        Command::Run(_) => {
            let known = known_ids(&[
                ids_of::<BrokerArgs>(),
                ids_of::<PartnerArgs>(),
                ids_of::<IssuanceArgs>(),
                ids_of::<WorkerArgs>(),
            ]);
            let layers = Layers::new(
                sub_matches,
                config,
                &known.iter().map(String::as_str).collect::<Vec<_>>(),
            )?;
            run(Settings::load(&layers)?).await
        }
    }
}

fn known_ids(groups: &[Vec<String>]) -> Vec<String> {
    groups.iter().flatten().cloned().collect()
}

async fn run(settings: Settings) -> Result<(), CliError> {
    let shutdown = shutdown_on_signal();
    let readiness = Readiness::default();
    let server_stop = CancellationToken::new();
    let addr = settings.worker.metrics_addr;
    let (bound, server) = health::serve(addr, readiness.clone(), server_stop.clone())
        .await
        .map_err(|source| CliError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let brokers: Vec<String> = settings
        .broker
        .urls
        .iter()
        .map(|url| redact_url(url.expose()))
        .collect();
    tracing::info!(
        metrics = %format!("http://{bound}/metrics"),
        brokers = ?brokers,
        partner = %redact_url(&settings.partner.url),
        concurrency = settings.worker.concurrency,
        "card-issuer starting"
    );

    let result = worker::run(settings, readiness, shutdown).await;

    server_stop.cancel();
    let _ = server.await;
    tracing::info!("card-issuer stopped");
    result.map_err(CliError::from)
}

/// A token cancelled by the first SIGTERM or SIGINT; a second one ends the
/// process at once, for an operator who will not wait for the grace period.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        for signal_number in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            if signal_number > 0 {
                tracing::warn!("second signal: stopping at once");
                std::process::exit(130);
            }
            tracing::info!("signal received: stopping");
            cancel.cancel();
        }
    });
    token
}
