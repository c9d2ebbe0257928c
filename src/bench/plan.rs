//! A whole benchmark run: rounds that interleave every subject, then the
//! latency at half load, then the report and the plot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lapin::uri::AMQPUri;

use super::names;
use super::process::{self, Launcher};
use super::report::{self, LatencyRecord, Machine, Results, ThroughputRecord};
use super::stats::Spread;
use super::traffic::Traffic;
use super::trial::{self, Bed, Kind, Subject};
use super::{BenchError, RunArgs, plot};

/// Status checks timed, one after another, to show the simulator's round
/// trip on a kept-alive connection.
const ROUND_TRIPS: usize = 1000;

/// Runs every trial, writes `benchmark.md` and `benchmark.png` into
/// `args.out`, and prints the report.
pub async fn run(mut args: RunArgs) -> Result<(), BenchError> {
    if !args.concurrency.contains(&args.headline_concurrency) {
        args.concurrency.push(args.headline_concurrency);
    }
    args.concurrency.sort_unstable();
    args.concurrency.dedup();
    let log_dir = args.out.join("logs");
    std::fs::create_dir_all(&log_dir)
        .map_err(BenchError::io(format!("create {}", log_dir.display())))?;
    let launcher = Launcher {
        worker_bin: worker_bin(&args)?,
        bench_bin: std::env::current_exe().map_err(BenchError::io("find this binary"))?,
        log_dir,
        amqp_url: args.amqp_url.clone(),
    };
    let broker_pid = args
        .broker_pid
        .or_else(|| process::listener_pid(amqp_port(&args)));

    let mut results = Results::new(&args, Machine::read(), broker_pid);
    let started = Instant::now();
    let traffic = Traffic::connect(&args.amqp_url).await?;
    let fast = launcher.simulator(Duration::ZERO).await?;
    let slow = launcher.simulator(args.slow_latency).await?;
    let run_id = names::run_id();
    let bed = Bed {
        launcher: &launcher,
        traffic: &traffic,
        fast: &fast,
        slow: &slow,
        broker_pid,
        run_id: &run_id,
    };
    let measured = measure(&bed, &args, &mut results).await;
    for simulator in [fast, slow] {
        simulator.child.stop().await?;
    }
    traffic.close().await;
    measured?;

    results.finish(started.elapsed());
    let text = report::write(&results, &args.out)?;
    plot::write(&results, &args.out.join("benchmark.png"))?;
    println!("{text}");
    Ok(())
}

fn worker_bin(args: &RunArgs) -> Result<PathBuf, BenchError> {
    let path = match &args.worker_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(BenchError::io("find this binary"))?
            .with_file_name("card-issuer"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(BenchError::Failed(format!(
            "no worker binary at {}; build it (scripts/bench does) or give --worker-bin",
            path.display()
        )))
    }
}

fn amqp_port(args: &RunArgs) -> u16 {
    args.amqp_url
        .parse::<AMQPUri>()
        .map(|uri| uri.authority.port)
        .unwrap_or(5672)
}

async fn measure(bed: &Bed<'_>, args: &RunArgs, results: &mut Results) -> Result<(), BenchError> {
    let mut trial = 0;
    for round in 0..args.rounds {
        progress(&format!("round {} of {}", round + 1, args.rounds));
        trial += 1;
        let idle = bed.idle_rss(trial, args.slow_concurrency).await?;
        results.idle_rss.push(idle);
        let round_trips = trial::round_trips(bed.fast, ROUND_TRIPS).await?;
        results.round_trips.extend(round_trips);
        for subject in round_subjects(args, round) {
            trial += 1;
            let measured = bed.throughput(trial, &subject, args.cards).await?;
            progress(&format!(
                "  {:<11} C={:<3} L={:>3}ms: {:>6.0} cards/s, {:.3} ms CPU/card, {:.1} MiB",
                subject.kind.label(),
                subject.concurrency,
                subject.partner_latency.as_millis(),
                measured.cards_per_second,
                measured.cpu_per_card.subject * 1000.0,
                measured.peak_rss as f64 / 1024.0 / 1024.0,
            ));
            results.throughput.push(ThroughputRecord {
                round,
                subject,
                measured,
            });
        }
    }

    let headline = results.worker_at_zero_latency(args.headline_concurrency);
    let per_second = args.latency_per_second.unwrap_or(headline.median / 2.0);
    results.latency_per_second = per_second;
    for per_second in [per_second, args.light_per_second] {
        progress(&format!("latency at {per_second:.0} commands/s"));
        let cards = (per_second * args.latency_duration.as_secs_f64()).ceil() as usize;
        for round in 0..args.rounds {
            for kind in kinds_in(round) {
                trial += 1;
                let record = latency_trial(bed, args, trial, kind, cards, per_second).await?;
                results.latency.push(LatencyRecord { round, ..record });
            }
        }
    }
    Ok(())
}

async fn latency_trial(
    bed: &Bed<'_>,
    args: &RunArgs,
    trial: usize,
    kind: Kind,
    cards: usize,
    per_second: f64,
) -> Result<LatencyRecord, BenchError> {
    let subject = Subject {
        kind,
        concurrency: args.headline_concurrency,
        partner_latency: Duration::ZERO,
    };
    let measured = bed.latency(trial, &subject, cards, per_second).await?;
    let spread = Spread::of(measured.samples_ms.iter().copied());
    progress(&format!(
        "  {:<11}: median {:.2} ms, machine {:.0} % busy",
        kind.label(),
        spread.median,
        measured.machine_busy * 100.0
    ));
    Ok(LatencyRecord {
        round: 0,
        kind,
        per_second,
        samples_ms: measured.samples_ms,
        partner_ms_per_card: measured.partner_ms_per_card,
        machine_busy: measured.machine_busy,
        subject_ms_per_card: measured.subject_ms_per_card,
    })
}

/// The null worker first in even rounds, the worker first in odd ones.
fn kinds_in(round: usize) -> [Kind; 2] {
    if round % 2 == 0 {
        [Kind::NullWorker, Kind::Worker]
    } else {
        [Kind::Worker, Kind::NullWorker]
    }
}

/// One round's throughput trials: the zero-latency sweep (low to high in
/// even rounds, high to low in odd ones), then the slow partner.
fn round_subjects(args: &RunArgs, round: usize) -> Vec<Subject> {
    let mut levels = args.concurrency.clone();
    if round % 2 == 1 {
        levels.reverse();
    }
    let mut subjects = Vec::new();
    for concurrency in levels {
        for kind in kinds_in(round) {
            subjects.push(Subject {
                kind,
                concurrency,
                partner_latency: Duration::ZERO,
            });
        }
    }
    for kind in kinds_in(round) {
        subjects.push(Subject {
            kind,
            concurrency: args.slow_concurrency,
            partner_latency: args.slow_latency,
        });
    }
    subjects
}

fn progress(line: &str) {
    eprintln!("card-issuer-bench: {line}");
}
