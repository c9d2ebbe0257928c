//! A fault run worked out from its flags before anything starts: names,
//! paths, the worker's flags and what the worker will declare, so that a
//! bad flag fails before any process runs and clean-up knows every name
//! even if the run fails half-way.

use std::path::PathBuf;

use lapin::uri::AMQPUri;

use super::FaultRunError;
use super::args::FaultRunArgs;
use crate::broker::Topology;
use crate::issuance::Plan;
use crate::lab::names::RunNames;
use crate::lab::teardown::Declared;
use crate::secret::Secret;
use crate::settings::BrokerSettings;
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
        if args.worker.partner_timeout >= args.faults.fault_hold {
            return Err(FaultRunError::Flag(format!(
                "--partner-timeout ({:?}) must be shorter than --fault-hold ({:?}), or held \
                 replies never time out",
                args.worker.partner_timeout, args.faults.fault_hold
            )));
        }
        let names = RunNames::new("fault-run");
        let amqp_url = Secret::new(args.amqp_url.clone());
        let settings = args
            .worker
            .settings(&names, &amqp_url)
            .map_err(FaultRunError::Flag)?;
        let delays = Plan::new(&settings.issuance).all_delays();
        let topology = Topology::new(&settings.broker, delays);
        Ok(Self {
            dir: args.run.log_dir.join(&names.run_id),
            program: args.worker.program().map_err(FaultRunError::Flag)?,
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

fn check_numbers(args: &FaultRunArgs) -> Result<(), FaultRunError> {
    if args.commands == 0 {
        return Err(FaultRunError::Flag("--commands must be at least 1".into()));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(FaultRunError::Flag("--rate must be above 0".into()));
    }
    Ok(())
}

fn amqp_port(url: &str) -> Result<u16, FaultRunError> {
    let uri: AMQPUri = url
        .parse()
        .map_err(|_| FaultRunError::Flag("--amqp-url is not an amqp:// or amqps:// URL".into()))?;
    Ok(uri.authority.port)
}
