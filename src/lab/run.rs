//! What the fault run and the cluster run share: their common flags, how
//! events are kept as they arrive, the wait for outcomes, and how a run
//! ends (interrupted, printed, saved, turned into an exit code).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::collector::ReceivedEvent;
use super::commands;
use super::ledger::Ledger;
use super::sender::{CommandSender, SendError};
use crate::worker::error_chain;

/// How often progress is reported while waiting for outcomes.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The flags every measured run takes.
#[derive(Args, Clone, Debug)]
pub struct RunOptions {
    /// Seeds the simulator's fault decisions. Request ids are new in every
    /// run, so two runs fault different calls even with the same seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// How long to wait, after the last command (and the last disruption),
    /// for the outcomes still missing.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    pub patience: Duration,

    /// How long to keep listening once every command has its outcome, for
    /// late duplicates or conflicting events.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub linger: Duration,

    /// Where each run gets a directory for its logs and figures.
    #[arg(long, default_value = "/tmp/card-issuer-lab")]
    pub log_dir: PathBuf,
}

/// The publishing pace: `rate` commands a second, going on at that pace
/// after a pause (a disruption, a broker that took nothing) rather than
/// catching up in a burst.
pub fn pace(rate: f64) -> tokio::time::Interval {
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pace
}

/// What the upstream side of a run saw: the ledger, and when each event
/// arrived.
#[derive(Clone, Default)]
pub struct Outcomes {
    ledger: Arc<Mutex<Ledger>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Outcomes {
    /// Moves the collector's events into the ledger until the collector
    /// stops.
    pub fn record(&self, mut events: mpsc::UnboundedReceiver<ReceivedEvent>) -> JoinHandle<()> {
        let outcomes = self.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                lock(&outcomes.arrivals).push(Instant::now());
                outcomes.ledger().record(&event);
            }
        })
    }

    /// The ledger.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// When each event arrived, in order.
    pub fn arrivals(&self) -> MutexGuard<'_, Vec<Instant>> {
        lock(&self.arrivals)
    }

    /// Publishes command `number` of run `run_id` until the broker confirms
    /// it, and enters it in the ledger as sent.
    pub async fn send(
        &self,
        sender: &mut CommandSender,
        run_id: &str,
        number: u32,
    ) -> Result<(), SendError> {
        let sent = sender.send(&commands::body(run_id, number)).await?;
        self.ledger()
            .record_sent(commands::request_id(run_id, number), sent.retries);
        Ok(())
    }

    /// Prints how far publishing is, at every tenth of the commands.
    pub fn published(&self, kind: &str, done: u32, of: u32, started: Option<Instant>) {
        if done % (of / 10).max(1) == 0 {
            self.progress(kind, "published", done, of, started);
        }
    }

    /// Prints how far the run is.
    pub fn progress(&self, kind: &str, what: &str, done: u32, of: u32, started: Option<Instant>) {
        let outcomes = self.ledger().terminal_count();
        let since = started.map(|s| s.elapsed().as_secs()).unwrap_or(0);
        eprintln!("{kind}: {what} {done}/{of}, outcomes {outcomes} ({since}s)");
    }

    /// Waits until every sent command has an outcome, calling `tend` every
    /// moment meanwhile (to replace workers that died); then lingers for
    /// late events. Returns when the wait ended (before lingering) and
    /// whether it gave up after `options.patience`.
    pub async fn wait_for_all(
        &self,
        kind: &str,
        options: &RunOptions,
        started: Option<Instant>,
        mut tend: impl FnMut(),
    ) -> (Instant, bool) {
        let give_up_at = Instant::now() + options.patience;
        let mut next_report = Instant::now() + PROGRESS_EVERY;
        let gave_up = loop {
            let (terminal, sent) = {
                let ledger = self.ledger();
                (ledger.terminal_count(), ledger.sent_count())
            };
            if terminal == sent {
                break false;
            }
            if Instant::now() > give_up_at {
                break true;
            }
            if Instant::now() > next_report {
                self.progress(kind, "waiting", terminal as u32, sent as u32, started);
                next_report += PROGRESS_EVERY;
            }
            tend();
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let ended = Instant::now();
        tokio::time::sleep(options.linger).await;
        (ended, gave_up)
    }
}

/// A run's printed result.
pub trait Report: fmt::Display {
    /// Whether nothing was lost and nothing conflicts.
    fn passed(&self) -> bool;
}

/// Prints the report (and saves its long form, which lists every request
/// that went wrong) and turns the run's end into the exit code: 0 passed,
/// 1 failed, 2 could not be completed.
pub fn conclude<R: Report>(
    kind: &str,
    report: Option<R>,
    dir: &Path,
    measured: Result<(), impl std::error::Error>,
) -> ExitCode {
    if let Some(report) = &report {
        println!("{report}");
        let _ = std::fs::write(dir.join("figures.txt"), format!("{report:#}"));
    }
    match measured {
        Err(error) => fail(kind, &error),
        Ok(()) if report.is_some_and(|r| r.passed()) => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
    }
}

/// Says why the run could not be completed; exit code 2.
pub fn fail(kind: &str, error: &dyn std::error::Error) -> ExitCode {
    eprintln!("{kind}: {}", error_chain(error));
    ExitCode::from(2)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn interrupted(kind: &str) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("{kind}: interrupted; stopping what was started and cleaning up");
}

/// Recording is a few inserts; a panic there leaves at worst one event
/// unrecorded, which the figures would show as lost.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
