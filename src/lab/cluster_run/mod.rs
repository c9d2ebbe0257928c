//! `card-issuer-lab cluster-run`: competing replicas on a three-node
//! cluster that loses nodes, measured.
//!
//! It starts a cluster of its own ([`crate::lab::cluster`]), the partner
//! simulator and the worker replicas, each replica given every node's URL
//! starting with a different node. It publishes the commands at a steady
//! pace while [`script`] stops and starts nodes; events are gathered in a
//! durable quorum queue of the lab's own, from whichever node is up. When
//! every command has its outcome, or patience runs out, it prints the fault
//! run's figures, then what the nodes went through: each loss and how long
//! it was until the next outcome, and the failovers each replica counted.
//! Then it stops everything it started, nodes included, also when
//! interrupted or failing.

mod args;
mod script;

use std::fmt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use self::args::ClusterRunArgs;
use self::script::{Gate, NodeLoss};
use crate::broker::{BrokerError, Topology};
use crate::issuance::Plan;
use crate::lab::cluster::{Addresses, Cluster, ClusterError, ClusterLayout};
use crate::lab::collector::{Collector, CollectorSource};
use crate::lab::faults::FaultMixError;
use crate::lab::figures::{Figures, Logs};
use crate::lab::names::RunNames;
use crate::lab::partner::{SimulatorLaunch, SimulatorProcess};
use crate::lab::process::ProcessError;
use crate::lab::run::{self, Outcomes, Report};
use crate::lab::sender::{CommandSender, SendError};
use crate::lab::teardown::Declared;
use crate::lab::worker::{WorkerLaunch, WorkerProcess};
use crate::secret::Secret;
use crate::settings::BrokerSettings;
use crate::worker::error_chain;

/// The nodes of the cluster.
const NODES: usize = 3;

/// How long the sender keeps trying one command: a node stop and the
/// sender's move to the next node fit well within it.
const SEND_PATIENCE: Duration = Duration::from_secs(120);

/// How long after a node is back its loss may still slow outcomes down
/// (replicas reconnect with backoff, leaders move).
const SETTLING: Duration = Duration::from_secs(15);

/// Why a cluster run could not be completed; the figures so far are
/// printed all the same, and what was started is stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterRunError {
    /// A flag makes the run impossible; nothing was started.
    #[error("{0}")]
    Flag(String),
    /// The fault shares cannot be injected; nothing was started.
    #[error(transparent)]
    Faults(#[from] FaultMixError),
    /// A node could not be started, asked or stopped.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A process of the run could not start or come up.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A command could not be published.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The run's directory cannot be created; nothing was started.
    #[error("cannot create the run's directory {path}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The script that stops nodes panicked.
    #[error("the node-stopping script failed: {0}")]
    Script(String),
    /// SIGINT or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

/// The name the run's messages start with.
const KIND: &str = "cluster-run";

/// Runs a cluster run and turns its result into the exit code.
pub async fn main(args: ClusterRunArgs) -> ExitCode {
    let mut lab = match Lab::new(&args) {
        Ok(lab) => lab,
        Err(error) => return run::fail(KIND, &error),
    };
    let measured = tokio::select! {
        measured = lab.measure(&args) => measured,
        () = run::interrupted(KIND) => Err(ClusterRunError::Interrupted),
    };
    let report = lab.finish(measured.is_ok()).await;
    run::conclude(KIND, report, &lab.dir, measured)
}

/// One worker replica: how it is started, the process now running, and
/// which node it connects to first.
struct Replica {
    launch: WorkerLaunch,
    process: WorkerProcess,
    first_node: String,
    starts: u32,
}

/// Everything the run started or counted, kept outside the measuring
/// future so that an interrupted run can still report and clean up.
struct Lab {
    names: RunNames,
    dir: std::path::PathBuf,
    program: std::path::PathBuf,
    partner_password: Secret<String>,
    broker: BrokerSettings,
    command_queue: String,
    declared: Declared,
    cluster: Option<Arc<tokio::sync::Mutex<Cluster>>>,
    outcomes: Outcomes,
    losses: Arc<Mutex<Vec<NodeLoss>>>,
    simulator: Option<SimulatorProcess>,
    replicas: Vec<Replica>,
    collector: Option<Collector>,
    recorder: Option<JoinHandle<()>>,
    sender_reconnects: u32,
    unexpected_exits: Vec<String>,
    started: Option<Instant>,
    wall: Duration,
    publishing: Duration,
    publisher_held: Duration,
    gave_up: bool,
    http: reqwest::Client,
}

impl Lab {
    /// Checks the flags and works out names and paths; starts nothing.
    fn new(args: &ClusterRunArgs) -> Result<Self, ClusterRunError> {
        if args.commands == 0 || args.replicas == 0 {
            return Err(ClusterRunError::Flag(
                "--commands and --replicas must be at least 1".into(),
            ));
        }
        if !(args.rate.is_finite() && args.rate > 0.0) {
            return Err(ClusterRunError::Flag("--rate must be above 0".into()));
        }
        let names = RunNames::new("cluster-run");
        // Any URL does for working out the names; the nodes' come later.
        let placeholder = Secret::new(format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            args.base_port
        ));
        let settings = args
            .worker
            .settings(&names, &placeholder)
            .map_err(ClusterRunError::Flag)?;
        let topology = Topology::new(&settings.broker, Plan::new(&settings.issuance).all_delays());
        Ok(Self {
            dir: args.run.log_dir.join(&names.run_id),
            program: args.worker.program().map_err(ClusterRunError::Flag)?,
            partner_password: Secret::new(format!("{:016x}", fastrand::u64(..))),
            broker: settings.broker,
            command_queue: topology.command_queue.clone(),
            declared: Declared::worker(&topology).with_queue(&names.collector_queue),
            names,
            cluster: None,
            outcomes: Outcomes::default(),
            losses: Arc::default(),
            simulator: None,
            replicas: Vec::new(),
            collector: None,
            recorder: None,
            sender_reconnects: 0,
            unexpected_exits: Vec::new(),
            started: None,
            wall: Duration::ZERO,
            publishing: Duration::ZERO,
            publisher_held: Duration::ZERO,
            gave_up: false,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client builds"),
        })
    }

    async fn measure(&mut self, args: &ClusterRunArgs) -> Result<(), ClusterRunError> {
        let cluster = self.start_cluster(args).await?;
        self.start_collector(&cluster).await?;
        self.start_processes(args, &cluster).await?;
        let started = Instant::now();
        self.started = Some(started);
        let gate = Arc::new(Gate::new(args.commands, script::stops(NODES)));
        let shared = self.cluster.clone().expect("the cluster was started");
        let losses = self.losses.clone();
        let queue = self.command_queue.clone();
        let down = args.node_down;
        let script_gate = gate.clone();
        let disruptions = tokio::spawn(async move {
            let done = script::run(&shared, &queue, down, &script_gate, &losses).await;
            script_gate.release();
            done
        });
        let published = self.publish(args, &gate).await;
        self.publishing = started.elapsed();
        self.publisher_held = gate.held();
        if published.is_err() {
            // The script waits for commands that will not come; clean-up
            // stops whatever nodes it left up or down.
            disruptions.abort();
        }
        let disrupted = match disruptions.await {
            Ok(done) => done.map_err(ClusterRunError::from),
            Err(ended) if ended.is_cancelled() => Ok(()),
            Err(ended) => Err(ClusterRunError::Script(ended.to_string())),
        };
        published?;
        disrupted?;
        self.await_outcomes(args).await;
        Ok(())
    }

    /// Starts the nodes; the cluster is kept in `self` for clean-up.
    async fn start_cluster(&mut self, args: &ClusterRunArgs) -> Result<Addresses, ClusterRunError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| ClusterRunError::Dir {
            path: self.dir.display().to_string(),
            source,
        })?;
        eprintln!(
            "cluster-run {}: starting {NODES} nodes on ports {}-{}, logs in {}",
            self.names.run_id,
            args.base_port,
            usize::from(args.base_port) + NODES - 1,
            self.dir.display()
        );
        let layout = ClusterLayout {
            prefix: "card-issuer-lab".into(),
            nodes: NODES,
            base_port: args.base_port,
            dir: self.dir.join("nodes"),
        };
        let cluster = Cluster::new(&layout)?;
        let addresses = cluster.addresses();
        // The script and clean-up share this one handle on the nodes, kept
        // before any node starts so an interrupted start is cleaned up too.
        let cluster = self
            .cluster
            .insert(Arc::new(tokio::sync::Mutex::new(cluster)));
        cluster.lock().await.form().await?;
        self.broker.urls = (0..NODES).map(|i| Secret::new(addresses.url(i))).collect();
        eprintln!("{KIND}: the cluster is up");
        Ok(addresses)
    }

    /// Declares the collector's queue (a quorum queue, on every node) and
    /// starts collecting before any worker runs.
    async fn start_collector(&mut self, cluster: &Addresses) -> Result<(), ClusterRunError> {
        let source = CollectorSource {
            brokers: (0..NODES).map(|i| Secret::new(cluster.url(i))).collect(),
            events_exchange: self.names.events_exchange.clone(),
            queue: self.names.collector_queue.clone(),
        };
        source.declare().await?;
        let (sink, events) = mpsc::unbounded_channel();
        self.collector = Some(source.start(sink));
        self.recorder = Some(self.outcomes.record(events));
        Ok(())
    }

    async fn start_processes(
        &mut self,
        args: &ClusterRunArgs,
        cluster: &Addresses,
    ) -> Result<(), ClusterRunError> {
        let rules = args.faults.rules()?;
        let simulator = SimulatorProcess::start(SimulatorLaunch {
            program: &self.program,
            rules: &rules,
            seed: args.run.seed,
            password: &self.partner_password,
            log: &self.dir.join("simulator.log"),
            log_filter: None,
        })
        .await?;
        let flags = args.worker.flags(&self.names, simulator.base_url());
        self.simulator = Some(simulator);
        for r in 0..args.replicas {
            let first = r % NODES;
            let launch = WorkerLaunch {
                program: self.program.clone(),
                flags: flags.clone(),
                amqp_url: Secret::new(cluster.urls_from(first)),
                partner_password: self.partner_password.clone(),
                log_filter: args.worker.worker_log.clone(),
                log_dir: self.dir.clone(),
            };
            let ordinal = self.next_ordinal();
            let process = launch.start(ordinal)?;
            self.replicas.push(Replica {
                launch,
                process,
                first_node: cluster.names[first].clone(),
                starts: 1,
            });
        }
        for replica in &mut self.replicas {
            replica.process.wait_until_ready(&self.http).await?;
        }
        Ok(())
    }

    /// Worker log numbers go on across replicas and their restarts.
    fn next_ordinal(&self) -> u32 {
        self.replicas.iter().map(|r| r.starts).sum::<u32>() + 1
    }

    /// Publishes every command at the asked pace.
    async fn publish(&mut self, args: &ClusterRunArgs, gate: &Gate) -> Result<(), ClusterRunError> {
        let mut sender = CommandSender::new(self.broker.clone(), SEND_PATIENCE);
        let mut pace = run::pace(args.rate);
        for number in 0..args.commands {
            gate.before_send(number).await;
            pace.tick().await;
            let sent = self
                .outcomes
                .send(&mut sender, &self.names.run_id, number)
                .await;
            self.sender_reconnects = sender.reconnects();
            sent?;
            gate.sent(number + 1);
            self.restart_replicas_that_died()?;
            self.outcomes
                .published(KIND, number + 1, args.commands, self.started);
        }
        sender.close().await;
        Ok(())
    }

    /// A replica that ended by itself is a finding: noted, and started
    /// again so the run can go on.
    fn restart_replicas_that_died(&mut self) -> Result<(), ClusterRunError> {
        for r in 0..self.replicas.len() {
            let Some(status) = self.replicas[r].process.exited() else {
                continue;
            };
            let exit = format!(
                "worker {} exited by itself ({status}); see {}",
                self.replicas[r].process.ordinal,
                self.replicas[r].process.log().display()
            );
            eprintln!("{KIND}: {exit}");
            self.unexpected_exits.push(exit);
            let ordinal = self.next_ordinal();
            let replica = &mut self.replicas[r];
            replica.process = replica.launch.start(ordinal)?;
            replica.starts += 1;
        }
        Ok(())
    }

    /// Waits until every sent command has an outcome, then lingers for late
    /// events; or gives up after the patience.
    async fn await_outcomes(&mut self, args: &ClusterRunArgs) {
        let outcomes = self.outcomes.clone();
        let started = self.started;
        let (ended, gave_up) = outcomes
            .wait_for_all(KIND, &args.run, started, || {
                if let Err(error) = self.restart_replicas_that_died() {
                    eprintln!("{KIND}: {}", error_chain(&error));
                }
            })
            .await;
        self.gave_up = gave_up;
        if let Some(started) = self.started {
            self.wall = ended - started;
        }
    }

    /// Works out the figures (none if no command was published), then stops
    /// every process and node.
    async fn finish(&mut self, completed: bool) -> Option<ClusterReport> {
        if self.started.is_none() {
            self.clean_up().await;
            return None;
        }
        let stats = match &self.simulator {
            Some(simulator) => simulator
                .stats()
                .await
                .inspect_err(|error| eprintln!("{KIND}: {}", error_chain(error)))
                .ok(),
            None => None,
        };
        let mut replicas = Vec::new();
        for replica in &self.replicas {
            replicas.push(ReplicaFigures {
                ordinal: replica.process.ordinal,
                first_node: replica.first_node.clone(),
                starts: replica.starts,
                failovers: replica.process.broker_reconnects(&self.http).await,
                ready_at_end: replica.process.is_ready(&self.http).await,
            });
        }
        let mut figures = Figures::new(&self.names.run_id, &self.outcomes.ledger(), stats.as_ref());
        figures.completed = completed;
        figures.disruptions.worker_starts = self.replicas.iter().map(|r| r.starts).sum();
        figures.disruptions.unexpected_exits = std::mem::take(&mut self.unexpected_exits);
        figures.disruptions.sender_reconnects = self.sender_reconnects;
        figures.disruptions.collector_reconnects =
            self.collector.as_ref().map_or(0, Collector::reconnects);
        figures.timing.wall = if self.wall.is_zero() {
            self.started.map(|s| s.elapsed()).unwrap_or_default()
        } else {
            self.wall
        };
        figures.timing.gave_up = self.gave_up;
        figures.timing.publishing = self.publishing;
        figures.logs = Logs {
            dir: self.dir.clone(),
            workers: self.dir.join("worker-*.log"),
            simulator: self.dir.join("simulator.log"),
            broker: self.dir.join("nodes/rabbitmqctl.log"),
        };
        let losses = self.loss_figures();
        figures.disruptions.broker_restarts = losses.len() as u32;
        figures.teardown = self.clean_up().await;
        Some(ClusterReport {
            figures,
            losses,
            replicas,
            publisher_held: self.publisher_held,
        })
    }

    /// Each node loss with the wait from it to the first outcome after it,
    /// and the longest wait between outcomes while the node was down and
    /// for [`SETTLING`] after it came back.
    fn loss_figures(&self) -> Vec<LossFigures> {
        let arrivals = self.outcomes.arrivals();
        self.losses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|loss| {
                let from = loss.stopped_at;
                // Not past the last outcome of the run: the quiet after it is
                // the end of the commands, not a stall.
                let last = arrivals.last().copied().unwrap_or(from);
                let until = (from + loss.down_for.unwrap_or_default() + SETTLING).min(last);
                let (next_outcome_after, longest_gap) = after_loss(&arrivals, from, until);
                LossFigures {
                    node: loss.node.clone(),
                    why: loss.pick.describe(),
                    down_for: loss.down_for,
                    next_outcome_after,
                    longest_gap,
                }
            })
            .collect()
    }

    /// Stops the replicas and the collector before the nodes, reports what
    /// was left in the run's queues, and stops every node, deleting their
    /// data.
    async fn clean_up(&mut self) -> Option<crate::lab::teardown::TeardownReport> {
        for replica in &mut self.replicas {
            replica.process.stop().await;
        }
        if let Some(mut simulator) = self.simulator.take() {
            simulator.stop().await;
        }
        if let Some(collector) = self.collector.take() {
            collector.stop().await;
        }
        if let Some(recorder) = self.recorder.take() {
            recorder.abort();
        }
        let cluster = self.cluster.take()?;
        let mut cluster = cluster.lock().await;
        let report = match self.broker.urls.first() {
            Some(url) => self
                .declared
                .delete(url)
                .await
                .inspect_err(|error| eprintln!("{KIND}: {}", error_chain(error)))
                .ok(),
            None => None,
        };
        cluster.shut_down().await;
        report
    }
}

/// From `arrivals` (in order), the wait from `from` to the first outcome
/// after it, and the longest wait between outcomes from `from` to `until`.
fn after_loss(arrivals: &[Instant], from: Instant, until: Instant) -> (Option<Duration>, Duration) {
    let next = arrivals.iter().find(|&&at| at >= from).map(|&at| at - from);
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for &at in arrivals.iter().filter(|&&at| at >= from && at <= until) {
        longest = longest.max(at - previous);
        previous = at;
    }
    longest = longest.max(until.saturating_duration_since(previous));
    (next, longest)
}

/// The fault run's figures, and what the cluster went through.
struct ClusterReport {
    figures: Figures,
    losses: Vec<LossFigures>,
    replicas: Vec<ReplicaFigures>,
    publisher_held: Duration,
}

struct LossFigures {
    node: String,
    why: &'static str,
    down_for: Option<Duration>,
    next_outcome_after: Option<Duration>,
    longest_gap: Duration,
}

struct ReplicaFigures {
    ordinal: u32,
    first_node: String,
    starts: u32,
    failovers: Option<u64>,
    ready_at_end: bool,
}

impl Report for ClusterReport {
    /// Passes when the figures pass and every node came back.
    fn passed(&self) -> bool {
        self.figures.passed()
            && self.losses.len() == script::stops(NODES)
            && self.losses.iter().all(|loss| loss.down_for.is_some())
    }
}

impl fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.figures)?;
        } else {
            write!(f, "{}", self.figures)?;
        }
        writeln!(
            f,
            "node losses (why stopped, down for, first outcome after the stop, longest wait \
             between outcomes until {}s after it was back):",
            SETTLING.as_secs()
        )?;
        for loss in &self.losses {
            let seconds = |d: Option<Duration>| {
                d.map_or("never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()))
            };
            writeln!(
                f,
                "  {:<28} {:<24} down {:>6}  next outcome {:>6}  longest wait {:>6}",
                loss.node,
                loss.why,
                seconds(loss.down_for),
                seconds(loss.next_outcome_after),
                seconds(Some(loss.longest_gap))
            )?;
        }
        writeln!(
            f,
            "  (the publisher waited {:.1}s in all for node stops to come round; outcomes \
             pause meanwhile for want of commands)",
            self.publisher_held.as_secs_f64()
        )?;
        writeln!(f, "replicas (first node, failovers, starts, at the end):")?;
        for replica in &self.replicas {
            let failovers = replica
                .failovers
                .map_or("unknown".to_owned(), |n| n.to_string());
            let state = if replica.ready_at_end {
                "consuming"
            } else {
                "NOT READY"
            };
            writeln!(
                f,
                "  worker {:<3} {:<28} failovers {:>3}  starts {}  {state}",
                replica.ordinal, replica.first_node, failovers, replica.starts
            )?;
        }
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(
            f,
            "cluster result: {verdict} ({} node stops)",
            self.losses.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_is_timed_to_the_next_outcome_and_its_longest_stall() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let arrivals = [at(0), at(900), at(1_000), at(4_000), at(4_100), at(20_000)];

        let (next, longest) = after_loss(&arrivals, at(500), at(5_000));

        assert_eq!(next, Some(Duration::from_millis(400)));
        // 1.0 s to 4.0 s; the outcome at 20 s is past `until`.
        assert_eq!(longest, Duration::from_secs(3));
    }

    #[test]
    fn a_loss_with_no_outcome_after_it_is_one_long_wait() {
        let t0 = Instant::now();

        let (next, longest) = after_loss(
            &[t0],
            t0 + Duration::from_secs(1),
            t0 + Duration::from_secs(9),
        );

        assert_eq!((next, longest), (None, Duration::from_secs(8)));
    }
}
