//! `card-issuer-lab fault-run`: the worker under faults, measured.
//!
//! It starts the partner simulator (stateful, faulting a share of calls)
//! and a worker as real processes on the run's own broker names, publishes
//! the commands at a steady pace, and on schedule kills the worker with
//! SIGKILL (and starts another) or restarts the broker application. Events
//! are gathered in a durable queue of the lab's own. When every command has
//! its outcome, or patience runs out, it holds the events against what the
//! partner saw and prints the figures; then it stops what it started and
//! deletes what it declared, also when interrupted or failing.

mod args;
mod plan;
mod schedule;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use self::args::FaultRunArgs;
use self::plan::RunPlan;
use self::schedule::{Disruption, Schedule};
use crate::broker::BrokerError;
use crate::lab::broker::{BrokerControl, BrokerControlError};
use crate::lab::collector::{Collector, CollectorSource};
use crate::lab::faults::FaultMixError;
use crate::lab::figures::{Disruptions, Figures, Logs, Timing};
use crate::lab::partner::{SimulatorLaunch, SimulatorProcess};
use crate::lab::partner_stats::PartnerStats;
use crate::lab::process::ProcessError;
use crate::lab::run::{self, Outcomes};
use crate::lab::sender::{CommandSender, SendError};
use crate::lab::worker::{WorkerLaunch, WorkerProcess};
use crate::settings::redact_url;
use crate::worker::error_chain;

/// How long the sender keeps trying one command before the run stops: long
/// enough for a broker restart and the worker's reconnect.
const SEND_PATIENCE: Duration = Duration::from_secs(120);

/// Why a fault run could not be completed; the figures so far are printed
/// all the same, and what was started is stopped.
#[derive(Debug, thiserror::Error)]
pub enum FaultRunError {
    /// A flag makes the run impossible; nothing was started.
    #[error("{0}")]
    Flag(String),
    /// The fault shares cannot be injected; nothing was started.
    #[error(transparent)]
    Faults(#[from] FaultMixError),
    /// The run's directory cannot be created; nothing was started.
    #[error("cannot create the run's directory {path}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process of the run could not start or come up.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// rabbitmqctl failed.
    #[error(transparent)]
    BrokerControl(#[from] BrokerControlError),
    /// A command could not be published.
    #[error(transparent)]
    Send(#[from] SendError),
    /// SIGINT or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

/// The name the run's messages start with.
const KIND: &str = "fault-run";

/// Runs a fault run and turns its result into the exit code.
pub async fn main(args: FaultRunArgs) -> ExitCode {
    let plan = match RunPlan::new(&args) {
        Ok(plan) => plan,
        Err(error) => return run::fail(KIND, &error),
    };
    let mut lab = Lab::new(&args, &plan);
    let measured = tokio::select! {
        measured = lab.measure(&args, &plan) => measured,
        () = run::interrupted(KIND) => Err(FaultRunError::Interrupted),
    };
    let figures = lab.finish(&plan, measured.is_ok()).await;
    run::conclude(KIND, figures, &plan.dir, measured)
}

/// Everything the run started or counted, kept outside the measuring
/// future so that an interrupted run can still report and clean up.
struct Lab {
    outcomes: Outcomes,
    broker: BrokerControl,
    simulator: Option<SimulatorProcess>,
    launch: Option<WorkerLaunch>,
    worker: Option<WorkerProcess>,
    collector: Option<Collector>,
    recorder: Option<JoinHandle<()>>,
    sender_reconnects: u32,
    disruptions: Disruptions,
    timing: Timing,
    logs: Logs,
    started: Option<Instant>,
    http: reqwest::Client,
}

impl Lab {
    fn new(args: &FaultRunArgs, plan: &RunPlan) -> Self {
        let logs = Logs {
            dir: plan.dir.clone(),
            workers: plan.dir.join("worker-*.log"),
            simulator: plan.dir.join("simulator.log"),
            broker: plan.dir.join("rabbitmqctl.log"),
        };
        Self {
            outcomes: Outcomes::default(),
            broker: BrokerControl::new(
                args.rabbitmqctl.clone(),
                args.rabbitmq_node.clone(),
                logs.broker.clone(),
            ),
            simulator: None,
            launch: None,
            worker: None,
            collector: None,
            recorder: None,
            sender_reconnects: 0,
            disruptions: Disruptions::default(),
            timing: Timing::default(),
            logs,
            started: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    async fn measure(&mut self, args: &FaultRunArgs, plan: &RunPlan) -> Result<(), FaultRunError> {
        self.prepare(args, plan).await?;
        self.start_processes(args, plan).await?;
        let started = Instant::now();
        self.started = Some(started);
        self.publish(args, plan).await?;
        self.timing.publishing = started.elapsed();
        self.await_outcomes(args).await;
        Ok(())
    }

    /// Checks rabbitmqctl reaches the run's broker, creates the run's
    /// directory, and starts collecting events before any worker runs.
    async fn prepare(&mut self, args: &FaultRunArgs, plan: &RunPlan) -> Result<(), FaultRunError> {
        std::fs::create_dir_all(&plan.dir).map_err(|source| FaultRunError::Dir {
            path: plan.dir.display().to_string(),
            source,
        })?;
        eprintln!(
            "fault-run {}: broker {}, logs in {}",
            plan.names.run_id,
            redact_url(plan.amqp_url.expose()),
            plan.dir.display()
        );
        if args.broker_restarts > 0 {
            self.broker.check_serves(plan.amqp_port).await?;
        }
        let source = CollectorSource {
            brokers: vec![plan.amqp_url.clone()],
            events_exchange: plan.names.events_exchange.clone(),
            queue: plan.names.collector_queue.clone(),
        };
        source.declare().await?;
        let (sink, events) = mpsc::unbounded_channel();
        self.collector = Some(source.start(sink));
        self.recorder = Some(self.outcomes.record(events));
        Ok(())
    }

    async fn start_processes(
        &mut self,
        args: &FaultRunArgs,
        plan: &RunPlan,
    ) -> Result<(), FaultRunError> {
        let simulator = SimulatorProcess::start(SimulatorLaunch {
            program: &plan.program,
            rules: &plan.rules,
            seed: args.run.seed,
            password: &plan.partner_password,
            log: &self.logs.simulator,
            log_filter: None,
        })
        .await?;
        let launch = WorkerLaunch {
            program: plan.program.clone(),
            flags: args.worker.flags(&plan.names, simulator.base_url()),
            amqp_url: plan.amqp_url.clone(),
            partner_password: plan.partner_password.clone(),
            log_filter: args.worker.worker_log.clone(),
            log_dir: plan.dir.clone(),
        };
        self.simulator = Some(simulator);
        // Kept in `self` before waiting, so that clean-up stops it with
        // SIGTERM if it never gets ready or the run is interrupted.
        let worker = self.worker.insert(launch.start(1)?);
        self.launch = Some(launch);
        self.disruptions.worker_starts = 1;
        worker.wait_until_ready(&self.http).await?;
        Ok(())
    }

    /// Publishes every command at the asked pace, disrupting on schedule.
    async fn publish(&mut self, args: &FaultRunArgs, plan: &RunPlan) -> Result<(), FaultRunError> {
        let mut sender = CommandSender::new(plan.broker.clone(), SEND_PATIENCE);
        let mut schedule = Schedule::spread(args.commands, args.kills, args.broker_restarts);
        let mut pace = run::pace(args.rate);
        for number in 0..args.commands {
            while let Some(disruption) = schedule.due(number) {
                self.disrupt(disruption, args.broker_down).await?;
            }
            pace.tick().await;
            let sent = self
                .outcomes
                .send(&mut sender, &plan.names.run_id, number)
                .await;
            self.sender_reconnects = sender.reconnects();
            sent?;
            self.restart_worker_if_it_died()?;
            self.outcomes
                .published(KIND, number + 1, args.commands, self.started);
        }
        sender.close().await;
        Ok(())
    }

    async fn disrupt(
        &mut self,
        disruption: Disruption,
        down: Duration,
    ) -> Result<(), FaultRunError> {
        match disruption {
            Disruption::KillWorker => {
                if let Some(worker) = &mut self.worker {
                    worker.kill().await;
                    eprintln!("{KIND}: killed worker {} (SIGKILL)", worker.ordinal);
                }
                self.disruptions.kills += 1;
                self.start_next_worker()?;
            }
            Disruption::RestartBroker => {
                eprintln!("{KIND}: stopping the broker application for {down:?}");
                self.broker.restart(down).await?;
                self.disruptions.broker_restarts += 1;
                eprintln!("{KIND}: broker application started again");
            }
        }
        Ok(())
    }

    /// A worker that ended by itself is a finding: noted, and replaced so
    /// the run can go on.
    fn restart_worker_if_it_died(&mut self) -> Result<(), FaultRunError> {
        let Some(worker) = &mut self.worker else {
            return Ok(());
        };
        let Some(status) = worker.exited() else {
            return Ok(());
        };
        let exit = format!(
            "worker {} exited by itself ({status}); see {}",
            worker.ordinal,
            worker.log().display()
        );
        eprintln!("{KIND}: {exit}");
        self.disruptions.unexpected_exits.push(exit);
        self.start_next_worker()
    }

    fn start_next_worker(&mut self) -> Result<(), FaultRunError> {
        let Some(launch) = &self.launch else {
            return Ok(());
        };
        let ordinal = self.disruptions.worker_starts + 1;
        self.worker = Some(launch.start(ordinal)?);
        self.disruptions.worker_starts = ordinal;
        Ok(())
    }

    /// Waits until every sent command has an outcome, then lingers for late
    /// events; or gives up after the patience.
    async fn await_outcomes(&mut self, args: &FaultRunArgs) {
        let outcomes = self.outcomes.clone();
        let started = self.started;
        let (ended, gave_up) = outcomes
            .wait_for_all(KIND, &args.run, started, || {
                if let Err(error) = self.restart_worker_if_it_died() {
                    eprintln!("{KIND}: {}", error_chain(&error));
                }
            })
            .await;
        self.timing.gave_up = gave_up;
        if let Some(started) = self.started {
            self.timing.wall = ended - started;
        }
    }

    /// Reads the partner's side, works out the figures (none if no command
    /// was published), then stops every process and deletes every name of
    /// the run.
    async fn finish(&mut self, plan: &RunPlan, completed: bool) -> Option<Figures> {
        if self.started.is_none() {
            self.clean_up(plan).await;
            return None;
        }
        let stats = self.partner_stats().await;
        if let Some(worker) = &self.worker {
            self.disruptions.ready_at_end = Some(worker.is_ready(&self.http).await);
        }
        if self.timing.wall.is_zero() {
            self.timing.wall = self.started.map(|s| s.elapsed()).unwrap_or_default();
        }
        let mut figures = Figures::new(&plan.names.run_id, &self.outcomes.ledger(), stats.as_ref());
        figures.completed = completed;
        figures.disruptions = std::mem::take(&mut self.disruptions);
        figures.timing = std::mem::take(&mut self.timing);
        figures.logs = self.logs.clone();
        figures.disruptions.sender_reconnects = self.sender_reconnects;
        figures.disruptions.collector_reconnects =
            self.collector.as_ref().map_or(0, Collector::reconnects);
        figures.teardown = self.clean_up(plan).await;
        Some(figures)
    }

    async fn partner_stats(&self) -> Option<PartnerStats> {
        let simulator = self.simulator.as_ref()?;
        match simulator.stats().await {
            Ok(stats) => Some(stats),
            Err(error) => {
                eprintln!("{KIND}: {}", error_chain(&error));
                None
            }
        }
    }

    /// Stops the workers before deleting their queues (a live worker would
    /// declare them again), and the collector for the same reason.
    async fn clean_up(&mut self, plan: &RunPlan) -> Option<crate::lab::teardown::TeardownReport> {
        if let Some(mut worker) = self.worker.take() {
            worker.stop().await;
        }
        if let Some(mut simulator) = self.simulator.take() {
            simulator.stop().await;
        }
        if let Err(error) = self.broker.ensure_started().await {
            eprintln!(
                "fault-run: the broker application may still be stopped: {}",
                error_chain(&error)
            );
        }
        if let Some(collector) = self.collector.take() {
            collector.stop().await;
        }
        if let Some(recorder) = self.recorder.take() {
            recorder.abort();
        }
        match plan.declared.delete(&plan.amqp_url).await {
            Ok(report) => {
                for (name, why) in &report.failures {
                    eprintln!("{KIND}: could not delete {name}: {why}");
                }
                Some(report)
            }
            Err(error) => {
                eprintln!(
                    "fault-run: could not clean up the broker ({}); delete by hand: {}",
                    error_chain(&error),
                    [
                        plan.declared.queues.clone(),
                        plan.declared.exchanges.clone()
                    ]
                    .concat()
                    .join(" ")
                );
                None
            }
        }
    }
}
