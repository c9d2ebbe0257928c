//! `card-issuer-lab scaling`: cards per second with 1, 2 and 3 replicas, on
//! one broker and on a three-node cluster, measured in one run.
//!
//! It starts a standalone node and a three-node cluster of its own
//! ([`crate::lab::cluster`]) and one partner simulator with no latency and
//! no faults. Each trial uses fresh names: it starts the replicas (on the
//! cluster, replica i connects to node i first), waits until they consume,
//! publishes the commands with many confirms in flight, and counts cards
//! per second from the first publish to the last outcome. Trials are
//! interleaved (every target and replica count once, then again), so a
//! machine that gets busier half-way shows as spread, not as a trend. The
//! machine's CPU use over each trial says what limits it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::cluster::{Addresses, Cluster, ClusterError, ClusterLayout};
use super::collector::{CollectorSource, ReceivedEvent};
use super::commands;
use super::names::RunNames;
use super::partner::{SimulatorLaunch, SimulatorProcess};
use super::process::ProcessError;
use super::teardown::Declared;
use super::worker::{WorkerLaunch, WorkerProcess, WorkerTuning};
use crate::broker::{BrokerError, PublishError, Topology};
use crate::issuance::Plan;
use crate::lab::run;
use crate::proc_stat;
use crate::secret::Secret;
use crate::upstream::Upstream;
use crate::worker::error_chain;

/// Publishes in flight at once: enough that the publisher is never what
/// the trial measures.
const PUBLISHES_IN_FLIGHT: usize = 256;

/// How long a trial waits for the next outcome before it gives up.
const OUTCOME_WAIT: Duration = Duration::from_secs(60);

/// Measure cards per second with 1, 2 and 3 worker replicas, on one broker
/// and on a three-node cluster, against the partner simulator with no
/// latency. Needs Debian's rabbitmq-server and root (or the rabbitmq user);
/// the nodes are the lab's own, on ports of their own, and are stopped and
/// deleted at the end.
#[derive(Args)]
pub struct ScalingArgs {
    /// Commands per trial.
    #[arg(long, default_value_t = 10_000)]
    pub commands: u32,

    /// Times each (target, replicas) trial is repeated, interleaved.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,

    /// The replica counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub replicas: Vec<usize>,

    /// Each replica's --concurrency.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u16,

    /// The cluster's nodes listen for AMQP on this port and the next two,
    /// the single broker on the one after.
    #[arg(long, default_value_t = 5691)]
    pub base_port: u16,

    /// The `card-issuer` binary; by default the one next to this binary.
    #[arg(long, value_name = "PATH")]
    pub worker_bin: Option<PathBuf>,

    /// Where the run gets a directory for its logs and nodes.
    #[arg(long, default_value = "/tmp/card-issuer-lab")]
    pub log_dir: PathBuf,
}

/// Why the run could not be completed.
#[derive(Debug, thiserror::Error)]
enum ScalingError {
    #[error("{0}")]
    Flag(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("a command could not be published")]
    Publish(#[from] PublishError),
    #[error("{missing} of {commands} outcomes never came")]
    Missing { missing: usize, commands: u32 },
    #[error("cannot create the run's directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

/// Where a trial's broker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Single,
    Cluster,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Single => "one broker",
            Target::Cluster => "3-node cluster",
        }
    }
}

/// One target's nodes: where they listen and their processes.
struct Brokers {
    target: Target,
    addresses: Addresses,
    pids: Vec<u32>,
}

/// What one trial runs: how many replicas on which brokers, under which
/// names; `number` counts the trials of the run from 0.
struct TrialPlan<'a> {
    args: &'a ScalingArgs,
    brokers: &'a Brokers,
    replicas: usize,
    partner_url: &'a str,
    number: usize,
    names: &'a RunNames,
}

/// Outcomes counted as they arrive (each `message_id` once), with the
/// moment of the latest.
struct OutcomeCount {
    received: Arc<AtomicUsize>,
    last: Arc<Mutex<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl OutcomeCount {
    fn start(mut events: mpsc::UnboundedReceiver<ReceivedEvent>) -> Self {
        let received = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(Instant::now()));
        let task = tokio::spawn({
            let (received, last) = (received.clone(), last.clone());
            async move {
                let mut seen = std::collections::HashSet::new();
                while let Some(event) = events.recv().await {
                    if seen.insert(event.message_id) {
                        received.fetch_add(1, Ordering::Relaxed);
                        *last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
                    }
                }
            }
        });
        Self {
            received,
            last,
            task,
        }
    }

    /// Waits until `count` outcomes came, or none came for
    /// [`OUTCOME_WAIT`]; returns how many came.
    async fn wait_for(&self, count: usize) -> usize {
        let mut seen = 0;
        let mut waited_since = Instant::now();
        loop {
            let now = self.received.load(Ordering::Relaxed);
            if now >= count {
                return now;
            }
            if now != seen {
                seen = now;
                waited_since = Instant::now();
            } else if waited_since.elapsed() > OUTCOME_WAIT {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One trial's result.
struct Trial {
    target: Target,
    replicas: usize,
    measured: Measured,
}

/// What one trial measured.
struct Measured {
    cards_per_second: f64,
    /// The machine's CPU use over the trial, from 0 to 1.
    machine_busy: f64,
    /// Cores used by each of [`ROLES`], in that order.
    cores: [f64; 4],
}

/// The name the run's messages start with.
const KIND: &str = "scaling";

/// Runs the measurement and prints the table, with the trials done so far
/// when it stops early.
pub async fn main(args: ScalingArgs) -> ExitCode {
    let mut bed = match Bed::new(&args) {
        Ok(bed) => bed,
        Err(error) => return run::fail(KIND, &error),
    };
    let measured = tokio::select! {
        measured = bed.measure(&args) => measured,
        () = run::interrupted(KIND) => Err(ScalingError::Interrupted),
    };
    bed.shut_down().await;
    if !bed.trials.is_empty() {
        println!("{}", table(&bed.trials, &args));
    }
    match measured {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => run::fail(KIND, &error),
    }
}

/// The brokers, the simulator and what every trial shares.
struct Bed {
    dir: PathBuf,
    program: PathBuf,
    tuning: WorkerTuning,
    password: Secret<String>,
    single: Option<Cluster>,
    cluster: Option<Cluster>,
    simulator: Option<SimulatorProcess>,
    trials: Vec<Trial>,
    http: reqwest::Client,
}

impl Bed {
    fn new(args: &ScalingArgs) -> Result<Self, ScalingError> {
        if args.commands == 0 || args.repeats == 0 || args.replicas.contains(&0) {
            return Err(ScalingError::Flag(
                "--commands, --repeats and each of --replicas must be at least 1".into(),
            ));
        }
        let tuning = WorkerTuning {
            worker_bin: args.worker_bin.clone(),
            partner_timeout: Duration::from_secs(5),
            status_check_delays: "0ms".into(),
            retry_delays: "1s".into(),
            partner_calls_per_second: 0,
            worker_args: vec![format!("--concurrency={}", args.concurrency)],
            worker_log: "warn".into(),
        };
        let run = RunNames::new("scaling").run_id;
        Ok(Self {
            dir: args.log_dir.join(run),
            program: tuning.program().map_err(ScalingError::Flag)?,
            tuning,
            password: Secret::new(format!("{:016x}", fastrand::u64(..))),
            single: None,
            cluster: None,
            simulator: None,
            trials: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client builds"),
        })
    }

    async fn measure(&mut self, args: &ScalingArgs) -> Result<(), ScalingError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| ScalingError::Dir {
            path: self.dir.clone(),
            source,
        })?;
        eprintln!(
            "scaling: starting the brokers; logs in {}",
            self.dir.display()
        );
        // Each handle is kept before its nodes start, so an interrupted
        // start is cleaned up too.
        let cluster = self.cluster.insert(Cluster::new(&ClusterLayout {
            prefix: "card-issuer-lab".into(),
            nodes: 3,
            base_port: args.base_port,
            dir: self.dir.join("cluster"),
        })?);
        cluster.form().await?;
        let cluster = Brokers {
            target: Target::Cluster,
            addresses: cluster.addresses(),
            pids: cluster.os_pids().await,
        };
        let single = self.single.insert(Cluster::new(&ClusterLayout {
            prefix: "card-issuer-lab-single".into(),
            nodes: 1,
            base_port: args.base_port.saturating_add(3),
            dir: self.dir.join("single"),
        })?);
        single.form().await?;
        let single = Brokers {
            target: Target::Single,
            addresses: single.addresses(),
            pids: single.os_pids().await,
        };
        let simulator = SimulatorProcess::start(SimulatorLaunch {
            program: &self.program,
            rules: &[],
            seed: 1,
            password: &self.password,
            log: &self.dir.join("simulator.log"),
            log_filter: Some("warn"),
        })
        .await?;
        let partner_url = self.simulator.insert(simulator).base_url().to_owned();

        for repeat in 0..args.repeats {
            for brokers in [&single, &cluster] {
                for &replicas in &args.replicas {
                    let trial = self.trial(args, brokers, replicas, &partner_url).await?;
                    eprintln!(
                        "scaling: round {} {} x{replicas}: {:.0} cards/s, machine {:.0}% busy",
                        repeat + 1,
                        brokers.target.label(),
                        trial.measured.cards_per_second,
                        trial.measured.machine_busy * 100.0
                    );
                    self.trials.push(trial);
                }
            }
        }
        Ok(())
    }

    /// One trial on fresh names; its replicas are stopped and its names
    /// deleted whatever happens.
    async fn trial(
        &self,
        args: &ScalingArgs,
        brokers: &Brokers,
        replicas: usize,
        partner_url: &str,
    ) -> Result<Trial, ScalingError> {
        let names = RunNames::new("scaling");
        let url = Secret::new(brokers.addresses.url(0));
        let settings = self
            .tuning
            .settings(&names, &url)
            .map_err(ScalingError::Flag)?;
        let topology = Topology::new(&settings.broker, Plan::new(&settings.issuance).all_delays());
        let declared = Declared::worker(&topology).with_queue(&names.collector_queue);
        let plan = TrialPlan {
            args,
            brokers,
            replicas,
            partner_url,
            number: self.trials.len(),
            names: &names,
        };

        let mut workers = Vec::new();
        let measured = self.run_trial(&plan, &mut workers).await;
        for worker in &mut workers {
            worker.stop().await;
        }
        if let Err(error) = declared.delete(&url).await {
            eprintln!(
                "{KIND}: could not delete the trial's names: {}",
                error_chain(&error)
            );
        }
        Ok(Trial {
            target: brokers.target,
            replicas,
            measured: measured?,
        })
    }

    /// Collects the trial's events while [`Bed::drive`] runs it; the
    /// collector stops however the trial ends.
    async fn run_trial(
        &self,
        trial: &TrialPlan<'_>,
        workers: &mut Vec<WorkerProcess>,
    ) -> Result<Measured, ScalingError> {
        let addresses = &trial.brokers.addresses;
        let source = CollectorSource {
            brokers: (0..addresses.names.len())
                .map(|i| Secret::new(addresses.url(i)))
                .collect(),
            events_exchange: trial.names.events_exchange.clone(),
            queue: trial.names.collector_queue.clone(),
        };
        source.declare().await?;
        let (sink, events) = mpsc::unbounded_channel::<ReceivedEvent>();
        let collector = source.start(sink);
        let outcomes = OutcomeCount::start(events);
        let measured = self.drive(trial, workers, &outcomes).await;
        collector.stop().await;
        outcomes.task.abort();
        measured
    }

    /// Starts the replicas, publishes the commands and waits for their
    /// outcomes, reading the CPU clocks before and after.
    async fn drive(
        &self,
        trial: &TrialPlan<'_>,
        workers: &mut Vec<WorkerProcess>,
        outcomes: &OutcomeCount,
    ) -> Result<Measured, ScalingError> {
        let (args, brokers, names) = (trial.args, trial.brokers, trial.names);
        let addresses = &brokers.addresses;
        let flags = self.tuning.flags(names, trial.partner_url);
        for r in 0..trial.replicas {
            let launch = WorkerLaunch {
                program: self.program.clone(),
                flags: flags.clone(),
                amqp_url: Secret::new(addresses.urls_from(r % addresses.names.len())),
                partner_password: self.password.clone(),
                log_filter: self.tuning.worker_log.clone(),
                log_dir: self.dir.clone(),
            };
            // Logs worker-<trial><replica>.log: worker-31.log is trial 3's
            // first replica.
            let ordinal = trial.number as u32 * 10 + r as u32 + 1;
            workers.push(launch.start(ordinal)?);
        }
        for worker in workers.iter_mut() {
            worker.wait_until_ready(&self.http).await?;
        }

        let mut broker = self
            .tuning
            .settings(names, &Secret::new(addresses.url(0)))
            .map_err(ScalingError::Flag)?
            .broker;
        broker.publish_timeout = Duration::from_secs(30);
        let upstream = Upstream::connect(&broker, "card-issuer-lab scaling").await?;

        let ticks_before = proc_stat::machine_ticks();
        let roles_before = cpu_by_role(&brokers.pids);
        let started = Instant::now();
        let first = trial.number as u32 * args.commands;
        let published: Vec<Result<(), PublishError>> =
            futures_util::stream::iter(first..first + args.commands)
                .map(|number| {
                    let body = commands::body(&names.run_id, number);
                    let upstream = &upstream;
                    async move { upstream.publish_command(&body, None).await }
                })
                .buffer_unordered(PUBLISHES_IN_FLIGHT)
                .collect()
                .await;
        upstream.close().await;
        published.into_iter().collect::<Result<Vec<()>, _>>()?;

        let commands = args.commands as usize;
        let received = outcomes.wait_for(commands).await;
        let ticks_after = proc_stat::machine_ticks();
        let roles_after = cpu_by_role(&brokers.pids);
        let spent = started.elapsed();
        if received < commands {
            return Err(ScalingError::Missing {
                missing: commands - received,
                commands: args.commands,
            });
        }
        let elapsed = outcomes.last() - started;
        let cores = ROLES.map(|role| {
            let used =
                roles_after.get(&role).unwrap_or(&0.0) - roles_before.get(&role).unwrap_or(&0.0);
            used / spent.as_secs_f64()
        });
        let busy = match (ticks_before, ticks_after) {
            (Some((busy0, all0)), Some((busy1, all1))) if all1 > all0 => {
                (busy1 - busy0) as f64 / (all1 - all0) as f64
            }
            _ => f64::NAN,
        };
        Ok(Measured {
            cards_per_second: commands as f64 / elapsed.as_secs_f64(),
            machine_busy: busy,
            cores,
        })
    }

    async fn shut_down(&mut self) {
        if let Some(mut simulator) = self.simulator.take() {
            simulator.stop().await;
        }
        for cluster in [self.cluster.as_mut(), self.single.as_mut()]
            .into_iter()
            .flatten()
        {
            cluster.shut_down().await;
        }
    }
}

/// Who spends the CPU in a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// The lab's RabbitMQ nodes.
    Broker,
    /// `card-issuer run`.
    Workers,
    /// `card-issuer simulate-partner`.
    Simulator,
    /// This process: the publisher and the collector.
    Lab,
}

const ROLES: [Role; 4] = [Role::Broker, Role::Workers, Role::Simulator, Role::Lab];

/// CPU seconds used so far by each role's processes; `brokers` are the
/// lab's nodes (not the shared broker beside them).
fn cpu_by_role(brokers: &[u32]) -> BTreeMap<Role, f64> {
    let mut seconds = BTreeMap::new();
    for (pid, (name, used)) in proc_stat::all_cpu_seconds() {
        let simulator = || {
            proc_stat::command_line(pid)
                .iter()
                .any(|a| a == "simulate-partner")
        };
        let role = match name.as_str() {
            _ if brokers.contains(&pid) => Role::Broker,
            "card-issuer" if simulator() => Role::Simulator,
            "card-issuer" => Role::Workers,
            "card-issuer-lab" => Role::Lab,
            _ => continue,
        };
        *seconds.entry(role).or_default() += used;
    }
    seconds
}

/// The median of each (target, replicas) with every trial's figure and
/// where the CPU went, as a Markdown table.
fn table(trials: &[Trial], args: &ScalingArgs) -> String {
    let mut groups: BTreeMap<(Target, usize), Vec<&Measured>> = BTreeMap::new();
    for trial in trials {
        groups
            .entry((trial.target, trial.replicas))
            .or_default()
            .push(&trial.measured);
    }
    let mut out = format!(
        "{} commands per trial, concurrency {} per replica, partner latency 0, {} rounds; \
         CPU in cores (of {}), averaged over the rounds\n\n\
         | broker | replicas | cards/s (median) | each round | machine busy | broker | workers \
         | simulator | lab |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        args.commands,
        args.concurrency,
        args.repeats,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    for ((target, replicas), group) in groups {
        let mut rates: Vec<f64> = group.iter().map(|m| m.cards_per_second).collect();
        let each = rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let mean = |value: &dyn Fn(&Measured) -> f64| {
            group.iter().map(|m| value(m)).sum::<f64>() / group.len() as f64
        };
        let busy = mean(&|m| m.machine_busy);
        let cores: Vec<String> = (0..ROLES.len())
            .map(|i| format!("{:.2}", mean(&|m| m.cores[i])))
            .collect();
        out.push_str(&format!(
            "| {} | {replicas} | {median:.0} | {each} | {:.0}% | {} |\n",
            target.label(),
            busy * 100.0,
            cores.join(" | ")
        ));
    }
    out
}
