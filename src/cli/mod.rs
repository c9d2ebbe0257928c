//! The command line: one binary, one file per subcommand.

mod dead_letters;
mod demo;
mod partner;
mod run;
mod simulate;
mod submit;

use std::path::Path;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::demo::DemoError;
use crate::settings::{ConfigArgs, Layers, SettingsError};
use crate::telemetry::{self, LogFormat};
use crate::worker::{WorkerError, error_chain};

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
    Run(Box<run::RunArgs>),
    SimulatePartner(simulate::SimulateArgs),
    Demo(Box<demo::DemoArgs>),
    Submit(Box<submit::SubmitArgs>),
    Partner(Box<partner::PartnerQueryArgs>),
    DeadLetters(Box<dead_letters::DeadLetterArgs>),
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
    /// The partner could not be asked.
    #[error("cannot ask the partner")]
    Partner(#[source] crate::partner::ClientError),
    /// The demo could not run.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// `submit` could not submit or got no answer.
    #[error(transparent)]
    Submit(#[from] crate::ops::submit::SubmitError),
    /// The dead-letter queue could not be used.
    #[error(transparent)]
    DeadLetters(#[from] crate::ops::dead_letters::DeadLetterError),
    /// `submit` got its answer, and it is `card.failed` (exit code 2).
    #[error("the card was not issued")]
    NotIssued,
    /// The demo ran, but not every command reached its outcome.
    #[error("not every demo command reached the outcome it should (see above)")]
    DemoFailed,
    /// A port could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An input file is unusable.
    #[error("cannot use {what}: {why}")]
    Input {
        /// The file.
        what: String,
        /// Why.
        why: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// The parsed command line of one subcommand, and its `--config` file.
pub struct Loaded<'a> {
    matches: &'a ArgMatches,
    config: Option<&'a Path>,
}

impl Loaded<'_> {
    /// The layers of settings: flags, then the file, then the environment.
    /// The file may hold any setting of any subcommand, so one file serves
    /// the worker and the operator commands alike.
    fn layers(&self) -> Result<Layers<'_>, SettingsError> {
        let known = crate::settings::all_setting_ids();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        Layers::new(self.matches, self.config, &known)
    }
}

/// Parses the command line, runs the subcommand and turns its result into
/// an exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // The demo prints its own story; its worker's routine lines would bury it.
    let quiet_demo = matches!(cli.command, Command::Demo(_))
        && matches.value_source("log") == Some(clap::parser::ValueSource::DefaultValue);
    telemetry::init(cli.log_format, if quiet_demo { "warn" } else { &cli.log });

    let log_format = cli.log_format;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|runtime| runtime.block_on(dispatch(cli, &matches)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The event was printed; the exit code tells scripts how it ended.
        Err(CliError::NotIssued) => ExitCode::from(2),
        Err(error) => {
            let chain = error_chain(&error);
            // Said once: as a JSON log line where logs are JSON (one object
            // per line), else as a plain last line, whatever the log filter.
            match log_format {
                LogFormat::Json => tracing::error!(error = %chain, "stopped"),
                LogFormat::Text => eprintln!("card-issuer: {chain}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli, matches: &ArgMatches) -> Result<(), CliError> {
    let (_, sub_matches) = matches.subcommand().expect("clap requires a subcommand");
    let loaded = Loaded {
        matches: sub_matches,
        config: cli.config.config.as_deref().map(Path::new),
    };
    match cli.command {
        Command::Run(_) => run::run(loaded).await,
        Command::SimulatePartner(args) => simulate::run(args).await,
        Command::Demo(args) => demo::run(&args, loaded).await,
        Command::Submit(args) => match submit::run(&args, loaded).await? {
            true => Ok(()),
            false => Err(CliError::NotIssued),
        },
        Command::Partner(args) => partner::run(&args, loaded).await,
        Command::DeadLetters(args) => dead_letters::run(&args, loaded).await,
    }
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
