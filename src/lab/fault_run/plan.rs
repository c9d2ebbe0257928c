//! A fault run worked out from its flags before anything starts: names,
//! paths, the worker's flags and what the worker will declare, so that a
//! bad flag fails before any process runs and clean-up knows every name
//! even if the run fails half-way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lapin::uri::AMQPUri;

use super::FaultRunError;
use super::args::FaultRunArgs;
use crate::broker::Topology;
use crate::issuance::Plan;
use crate::lab::names::RunNames;
use crate::lab::partner::PARTNER_USERNAME;
use crate::lab::teardown::Declared;
use crate::secret::Secret;
use crate::settings::{BrokerSettings, Settings};
use crate::simulator::FaultRule;

/// Everything a fault run needs to know before it starts.
pub struct RunPlan {
    /// The run's names on the broker.
    pub names: RunNames,
    /// The run's directory for logs and figures.
    pub dir: PathBuf,
    /// The `card-issuer` binary.
    pub program: PathBuf,
    /// The broker URL.
    pub amqp_url: Secret<String>,
    /// Its port, to check that rabbitmqctl restarts the same broker.
    pub amqp_port: u16,
    /// The simulator's fault rules.
    pub rules: Vec<FaultRule>,
    /// The partner password shared by the simulator and the workers.
    pub partner_password: Secret<String>,
    /// The broker side as the worker will see it: where the lab publishes.
    pub broker: BrokerSettings,
    /// What the worker and the lab will declare, for clean-up.
    pub declared: Declared,
}

impl RunPlan {
    /// Checks the flags and works out the run.
    pub fn new(args: &FaultRunArgs) -> Result<Self, FaultRunError> {
        check_numbers(args)?;
        let rules = args.faults.rules()?;
        if args.partner_timeout >= args.faults.fault_hold {
            return Err(FaultRunError::Flag(format!(
                "--partner-timeout ({:?}) must be shorter than --fault-hold ({:?}), or held \
                 replies never time out",
                args.partner_timeout, args.faults.fault_hold
            )));
        }
        let names = RunNames::new("fault-run");
        let amqp_url = Secret::new(args.amqp_url.clone());
        // The partner URL is only known once the simulator listens; any
        // will do for working out names.
        let settings = worker_settings(args, &names, &amqp_url, "http://127.0.0.1:1")?;
        let delays = Plan::new(&settings.issuance).all_delays();
        let topology = Topology::new(&settings.broker, delays);
        Ok(Self {
            dir: args.log_dir.join(&names.run_id),
            program: program(args)?,
            amqp_port: amqp_port(&args.amqp_url)?,
            declared: Declared::worker(&topology).with_queue(&names.collector_queue),
            broker: settings.broker,
            partner_password: Secret::new(format!("{:016x}", fastrand::u64(..))),
            names,
            amqp_url,
            rules,
        })
    }
}

/// `run`'s flags for every worker of the run, without secrets and without
/// `--metrics-addr`, which each start picks anew.
pub fn worker_flags(args: &FaultRunArgs, names: &RunNames, partner_url: &str) -> Vec<String> {
    let flags = [
        ("--commands-exchange", names.commands_exchange.clone()),
        ("--events-exchange", names.events_exchange.clone()),
        ("--queue-prefix", names.queue_prefix.clone()),
        ("--partner-url", partner_url.to_owned()),
        ("--partner-username", PARTNER_USERNAME.to_owned()),
        (
            "--partner-timeout",
            humantime::format_duration(args.partner_timeout).to_string(),
        ),
        ("--status-check-delays", args.status_check_delays.clone()),
        ("--retry-delays", args.retry_delays.clone()),
        (
            "--partner-calls-per-second",
            args.partner_calls_per_second.to_string(),
        ),
        ("--shutdown-grace", "5s".to_owned()),
    ];
    flags
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .chain(args.worker_args.iter().cloned())
        .collect()
}

/// The settings a worker started with these flags will have, read by the
/// worker's own code, so the lab's idea of its names cannot drift from it.
fn worker_settings(
    args: &FaultRunArgs,
    names: &RunNames,
    amqp_url: &Secret<String>,
    partner_url: &str,
) -> Result<Settings, FaultRunError> {
    let mut flags = worker_flags(args, names, partner_url);
    flags.extend(["--amqp-url".to_owned(), amqp_url.expose().clone()]);
    let mut settings = Settings::from_flags(&flags).map_err(|error| {
        FaultRunError::Flag(format!("the worker would refuse its flags: {error}"))
    })?;
    settings.broker.publish_timeout = Duration::from_secs(5);
    Ok(settings)
}

fn check_numbers(args: &FaultRunArgs) -> Result<(), FaultRunError> {
    if args.commands == 0 {
        return Err(FaultRunError::Flag("--commands must be at least 1".into()));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(FaultRunError::Flag("--rate must be above 0".into()));
    }
    Ok(())
}

/// The worker binary: as given, or `card-issuer` next to this binary.
fn program(args: &FaultRunArgs) -> Result<PathBuf, FaultRunError> {
    let program = match &args.worker_bin {
        Some(path) => path.clone(),
        None => sibling("card-issuer")?,
    };
    if !program.is_file() {
        return Err(FaultRunError::Flag(format!(
            "no worker binary at {}; build it (`cargo build --release`) or pass --worker-bin",
            program.display()
        )));
    }
    Ok(program)
}

fn sibling(name: &str) -> Result<PathBuf, FaultRunError> {
    let me = std::env::current_exe().map_err(|error| {
        FaultRunError::Flag(format!("cannot tell where this binary is: {error}"))
    })?;
    Ok(me.parent().unwrap_or(Path::new(".")).join(name))
}

fn amqp_port(url: &str) -> Result<u16, FaultRunError> {
    let uri: AMQPUri = url
        .parse()
        .map_err(|_| FaultRunError::Flag("--amqp-url is not an amqp:// or amqps:// URL".into()))?;
    Ok(uri.authority.port)
}
