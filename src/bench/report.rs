//! What a run measured, the figures drawn from it against the targets of
//! issue 6, and the markdown report.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::stats::{Spread, percentile, sorted};
use super::trial::{Kind, Subject, Throughput};
use super::{BenchError, RunArgs};

const MIB: f64 = 1024.0 * 1024.0;

/// One throughput trial.
#[derive(Clone, Debug)]
pub struct ThroughputRecord {
    /// The round it ran in.
    pub round: usize,
    /// What ran.
    pub subject: Subject,
    /// What it measured.
    pub measured: Throughput,
}

/// One latency trial at half load.
#[derive(Clone, Debug)]
pub struct LatencyRecord {
    /// The round it ran in.
    pub round: usize,
    /// What ran.
    pub kind: Kind,
    /// The commands a second it was offered.
    pub per_second: f64,
    /// Each card's time from publish to event, in milliseconds.
    pub samples_ms: Vec<f64>,
    /// The worker's time in its two partner calls per card.
    pub partner_ms_per_card: Option<f64>,
    /// The machine's busy share over the trial (0 to 1).
    pub machine_busy: f64,
    /// The subject's CPU per card over the trial, in milliseconds.
    pub subject_ms_per_card: f64,
}

/// The machine the run measured on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Memory, in MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// `/proc/loadavg` at the start.
    pub load_before: String,
    /// `/proc/loadavg` at the end.
    pub load_after: String,
}

impl Machine {
    /// Reads `/proc`.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpu: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
                .unwrap_or_default(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_mib: meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .map_or(0, |kib: u64| kib / 1024),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            load_before: load_average(),
            load_after: String::new(),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

fn load_average() -> String {
    let text = read_trimmed("/proc/loadavg");
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything one run measured.
pub struct Results {
    /// The run's settings.
    pub args: RunArgs,
    /// Where it ran.
    pub machine: Machine,
    /// The broker's process id and name, when found.
    pub broker: Option<(u32, String)>,
    /// Throughput trials, in the order they ran.
    pub throughput: Vec<ThroughputRecord>,
    /// The worker's resident memory at idle, once per round.
    pub idle_rss: Vec<u64>,
    /// The simulator's kept-alive round trips, in milliseconds.
    pub round_trips: Vec<f64>,
    /// The commands a second the half-load latency trials were offered.
    pub latency_per_second: f64,
    /// Latency trials, in the order they ran.
    pub latency: Vec<LatencyRecord>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Results {
    /// An empty record of a run.
    pub fn new(args: &RunArgs, machine: Machine, broker_pid: Option<u32>) -> Self {
        Self {
            args: args.clone(),
            machine,
            broker: broker_pid.map(|pid| (pid, super::process::process_name(pid))),
            throughput: Vec::new(),
            idle_rss: Vec::new(),
            round_trips: Vec::new(),
            latency_per_second: f64::NAN,
            latency: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// Notes the end of the run.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        self.machine.load_after = load_average();
    }

    /// The throughput trials of one subject.
    pub fn trials(&self, kind: Kind, concurrency: u16, latency: Duration) -> Vec<&Throughput> {
        self.throughput
            .iter()
            .filter(|record| {
                record.subject.kind == kind
                    && record.subject.concurrency == concurrency
                    && record.subject.partner_latency == latency
            })
            .map(|record| &record.measured)
            .collect()
    }

    /// Cards a second of one subject, over the rounds.
    pub fn cards_per_second(&self, kind: Kind, concurrency: u16, latency: Duration) -> Spread {
        let trials = self.trials(kind, concurrency, latency);
        Spread::of(trials.iter().map(|trial| trial.cards_per_second))
    }

    /// The worker's cards a second with no partner latency.
    pub fn worker_at_zero_latency(&self, concurrency: u16) -> Spread {
        self.cards_per_second(Kind::Worker, concurrency, Duration::ZERO)
    }

    /// The worker's cards a second over the null worker's, each round's
    /// pair taken together.
    pub fn ratio(&self, concurrency: u16, latency: Duration) -> Spread {
        let of = |kind| self.trials(kind, concurrency, latency);
        let pairs = of(Kind::Worker).into_iter().zip(of(Kind::NullWorker));
        Spread::of(pairs.map(|(worker, null)| worker.cards_per_second / null.cards_per_second))
    }

    fn latency_records(&self, per_second: f64) -> impl Iterator<Item = &LatencyRecord> {
        self.latency
            .iter()
            .filter(move |record| record.per_second == per_second)
    }

    fn latency_samples(&self, kind: Kind, per_second: f64) -> Vec<f64> {
        sorted(
            self.latency_records(per_second)
                .filter(|record| record.kind == kind)
                .flat_map(|record| record.samples_ms.iter().copied()),
        )
    }
}

/// A figure against its target.
struct Target {
    what: &'static str,
    measured: String,
    target: &'static str,
    met: bool,
}

fn targets(results: &Results) -> Vec<Target> {
    let args = &results.args;
    let headline = args.headline_concurrency;
    let zero = Duration::ZERO;
    let ratio = results.ratio(headline, zero);
    let ideal = ideal(args);
    let slow = results.cards_per_second(Kind::Worker, args.slow_concurrency, args.slow_latency);
    let (added_p50, added_p99) = added_latency(results, results.latency_per_second);
    let cpu = Spread::of(
        results
            .trials(Kind::Worker, headline, zero)
            .iter()
            .map(|trial| trial.cpu_per_card.subject * 1000.0),
    );
    let idle = Spread::of(results.idle_rss.iter().map(|&rss| rss as f64 / MIB));
    let per_call = per_call_kib(results);
    vec![
        Target {
            what: "worker / null worker, no latency",
            measured: format!(
                "{:.2} (rounds {:.2}–{:.2})",
                ratio.median, ratio.min, ratio.max
            ),
            target: "≥ 0.85",
            met: ratio.median >= 0.85,
        },
        Target {
            what: "worker / ideal, 100 ms latency",
            measured: format!("{:.2}", slow.median / ideal),
            target: "≥ 0.9",
            met: slow.median / ideal >= 0.9,
        },
        Target {
            what: "latency added at half load, p50",
            measured: format!("{added_p50:.2} ms"),
            target: "≤ 1 ms",
            met: added_p50 <= 1.0,
        },
        Target {
            what: "latency added at half load, p99",
            measured: format!("{added_p99:.2} ms"),
            target: "≤ 5 ms",
            met: added_p99 <= 5.0,
        },
        Target {
            what: "worker CPU per card",
            measured: format!("{:.3} ms", cpu.median),
            target: "< 0.5 ms",
            met: cpu.median < 0.5,
        },
        Target {
            what: "worker RSS at idle",
            measured: format!("{:.1} MiB", idle.median),
            target: "< 30 MiB",
            met: idle.median < 30.0,
        },
        Target {
            what: "worker RSS per call in flight",
            measured: format!("{per_call:.1} KiB"),
            target: "< 64 KiB",
            met: per_call < 64.0,
        },
    ]
}

/// `C / ((1 + k) * L)` with k = 1 status check per card.
fn ideal(args: &RunArgs) -> f64 {
    f64::from(args.slow_concurrency) / (2.0 * args.slow_latency.as_secs_f64())
}

/// The worker's p50 and p99 less the null worker's, at the same rate: the
/// difference within each round, then the median over the rounds, so one
/// round that a neighbour disturbed does not decide the figure.
fn added_latency(results: &Results, per_second: f64) -> (f64, f64) {
    let rounds = results.args.rounds;
    let in_round = |kind: Kind, round: usize| {
        sorted(
            results
                .latency_records(per_second)
                .filter(|record| record.kind == kind && record.round == round)
                .flat_map(|record| record.samples_ms.iter().copied()),
        )
    };
    let added = |share: f64| {
        Spread::of((0..rounds).map(|round| {
            let worker = in_round(Kind::Worker, round);
            let null = in_round(Kind::NullWorker, round);
            percentile(&worker, share) - percentile(&null, share)
        }))
        .median
    };
    (added(0.5), added(0.99))
}

/// The worker's memory at full concurrency (slow partner) over idle, per
/// call in flight, in KiB.
fn per_call_kib(results: &Results) -> f64 {
    let args = &results.args;
    let full = results.trials(Kind::Worker, args.slow_concurrency, args.slow_latency);
    let peak = Spread::of(full.iter().map(|trial| trial.peak_rss as f64)).median;
    let idle = Spread::of(results.idle_rss.iter().map(|&rss| rss as f64)).median;
    (peak - idle) / f64::from(args.slow_concurrency) / 1024.0
}

/// Writes `benchmark.md` into `out` and returns its text.
pub fn write(results: &Results, out: &Path) -> Result<String, BenchError> {
    let text = render(results);
    let path = out.join("benchmark.md");
    std::fs::write(&path, &text).map_err(BenchError::io(format!("write {}", path.display())))?;
    Ok(text)
}

/// The markdown report.
pub fn render(results: &Results) -> String {
    let mut text = String::new();
    summary(&mut text, results);
    sweep(&mut text, results);
    budget(&mut text, results);
    slow_partner(&mut text, results);
    latency(&mut text, results);
    cpu_and_memory(&mut text, results);
    simulator(&mut text, results);
    machine(&mut text, results);
    text
}

fn summary(text: &mut String, results: &Results) {
    let _ = writeln!(text, "## Targets (issue 6)\n");
    let _ = writeln!(text, "| figure | measured | target | met |");
    let _ = writeln!(text, "|---|---|---|---|");
    for target in targets(results) {
        let met = if target.met { "yes" } else { "**no**" };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {met} |",
            target.what, target.measured, target.target
        );
    }
    let light = results.args.light_per_second;
    let (p50, p99) = added_latency(results, light);
    let _ = writeln!(
        text,
        "\nAt a light load ({light:.0} commands a second) the worker adds \
         {p50:.2} ms at p50 and {p99:.2} ms at p99.\n"
    );
}

fn sweep(text: &mut String, results: &Results) {
    let _ = writeln!(
        text,
        "## Cards per second, no partner latency\n\n\
         Median of {} rounds [smallest–largest]; the ratio is taken within each \
         round.\n",
        results.args.rounds
    );
    let _ = writeln!(
        text,
        "| concurrency | null worker | worker | worker / null worker |"
    );
    let _ = writeln!(text, "|---|---|---|---|");
    for &level in &results.args.concurrency {
        let zero = Duration::ZERO;
        let null = results.cards_per_second(Kind::NullWorker, level, zero);
        let worker = results.cards_per_second(Kind::Worker, level, zero);
        let ratio = results.ratio(level, zero);
        let _ = writeln!(
            text,
            "| {level} | {} | {} | {:.2} [{:.2}–{:.2}] |",
            rate(&null),
            rate(&worker),
            ratio.median,
            ratio.min,
            ratio.max
        );
    }
    let _ = writeln!(text);
}

/// Every process's CPU per card, and what the machine as a whole spent:
/// when the machine is busy throughout, cards a second can be no more than
/// its CPUs over the machine's CPU per card.
fn budget(text: &mut String, results: &Results) {
    let cpus = results.machine.cpus as f64;
    let _ = writeln!(
        text,
        "## Where the CPU goes, no partner latency\n\n\
         Milliseconds of CPU per card, medians of the rounds: the subject, the \
         simulator, the broker and this benchmark (reading events) from \
         `/proc/<pid>/stat`; the machine from `/proc/stat` (everything that was \
         not idle over the window, other users included). With the machine \
         busy throughout, {cpus:.0} CPUs over the machine's CPU per card is the \
         most cards a second it can give.\n"
    );
    let _ = writeln!(
        text,
        "| concurrency | subject | cards/s | subject | simulator | broker | benchmark \
         | all four | other processes | machine | machine busy | {cpus:.0} CPUs / machine |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &level in &results.args.concurrency {
        for kind in [Kind::NullWorker, Kind::Worker] {
            let trials = results.trials(kind, level, Duration::ZERO);
            let ms = |pick: &dyn Fn(&Throughput) -> f64| {
                Spread::of(trials.iter().map(|trial| pick(trial) * 1000.0)).median
            };
            let cpu = |trial: &Throughput| trial.cpu_per_card;
            let all = |trial: &Throughput| {
                let cpu = cpu(trial);
                [cpu.subject, cpu.simulator, cpu.broker, cpu.bench]
                    .iter()
                    .filter(|v| !v.is_nan())
                    .sum::<f64>()
            };
            let machine = |trial: &Throughput| trial.machine_busy * cpus / trial.cards_per_second;
            let show = |value: f64| {
                if value.is_nan() {
                    "–".to_owned()
                } else {
                    format!("{value:.3}")
                }
            };
            let rate = Spread::of(trials.iter().map(|trial| trial.cards_per_second)).median;
            let busy = Spread::of(trials.iter().map(|trial| trial.machine_busy * 100.0)).median;
            let machine_ms = ms(&machine);
            let _ = writeln!(
                text,
                "| {level} | {} | {rate:.0} | {} | {} | {} | {} | {} | {} | {} | {busy:.0} % | {:.0} |",
                kind.label(),
                show(ms(&|trial| cpu(trial).subject)),
                show(ms(&|trial| cpu(trial).simulator)),
                show(ms(&|trial| cpu(trial).broker)),
                show(ms(&|trial| cpu(trial).bench)),
                show(ms(&all)),
                show(ms(&|trial| trial.others_per_card)),
                show(machine_ms),
                cpus * 1000.0 / machine_ms,
            );
        }
    }
    let _ = writeln!(text, "\n{}\n", busiest_others(results));
}

/// The other processes that kept the most CPU busy in any throughput window.
fn busiest_others(results: &Results) -> String {
    let mut most: Vec<(String, f64)> = Vec::new();
    for record in &results.throughput {
        for (name, cores) in &record.measured.busiest_others {
            match most.iter_mut().find(|(known, _)| known == name) {
                Some((_, highest)) => *highest = highest.max(*cores),
                None => most.push((name.clone(), *cores)),
            }
        }
    }
    most.sort_by(|a, b| b.1.total_cmp(&a.1));
    let named: Vec<String> = most
        .iter()
        .take(5)
        .map(|(name, cores)| format!("`{name}` {cores:.2}"))
        .collect();
    format!(
        "Other processes that kept the most CPU busy in a window (cores, at most): {}.",
        named.join(", ")
    )
}

fn rate(spread: &Spread) -> String {
    format!("{:.0} [{:.0}–{:.0}]", spread.median, spread.min, spread.max)
}

fn slow_partner(text: &mut String, results: &Results) {
    let args = &results.args;
    let (level, latency) = (args.slow_concurrency, args.slow_latency);
    let ideal = ideal(args);
    let worker = results.cards_per_second(Kind::Worker, level, latency);
    let null = results.cards_per_second(Kind::NullWorker, level, latency);
    let _ = writeln!(
        text,
        "## Partner latency {} ms, concurrency {level}\n\n\
         Ideal `C / ((1 + k) * L)` with k = 1: {ideal:.0} cards/s.\n",
        latency.as_millis()
    );
    let _ = writeln!(text, "| subject | cards/s | of the ideal |");
    let _ = writeln!(text, "|---|---|---|");
    let _ = writeln!(
        text,
        "| worker against the simulator | {} | {:.2} |",
        rate(&worker),
        worker.median / ideal
    );
    let _ = writeln!(
        text,
        "| null worker sleeping {} ms per call | {} | {:.2} |",
        latency.as_millis(),
        rate(&null),
        null.median / ideal
    );
    let ratio = results.ratio(level, latency);
    let _ = writeln!(
        text,
        "\nWorker / null worker at this latency: {:.2} [{:.2}–{:.2}].\n",
        ratio.median, ratio.min, ratio.max
    );
}

fn latency(text: &mut String, results: &Results) {
    let _ = writeln!(
        text,
        "## End-to-end latency\n\n\
         From publish to event, at concurrency {}, the first tenth of each \
         trial left out: at half load ({:.0} commands a second, half the \
         worker's median maximum unless the run said otherwise), then at a \
         light load ({:.0} a second) that leaves the machine CPU to spare.\n",
        results.args.headline_concurrency,
        results.latency_per_second,
        results.args.light_per_second
    );
    let mut rates: Vec<f64> = results.latency.iter().map(|r| r.per_second).collect();
    rates.dedup();
    for per_second in rates {
        latency_at(text, results, per_second);
    }
}

fn latency_at(text: &mut String, results: &Results, per_second: f64) {
    let _ = writeln!(text, "### {per_second:.0} commands a second\n");
    let _ = writeln!(
        text,
        "| subject | round | cards | p50 ms | p99 ms | machine busy | subject CPU ms/card |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|");
    for record in results.latency_records(per_second) {
        let samples = sorted(record.samples_ms.iter().copied());
        let _ = writeln!(
            text,
            "| {} | {} | {} | {:.2} | {:.2} | {:.0} % | {:.3} |",
            record.kind.label(),
            record.round + 1,
            samples.len(),
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            record.machine_busy * 100.0,
            record.subject_ms_per_card
        );
    }
    for kind in [Kind::NullWorker, Kind::Worker] {
        let samples = results.latency_samples(kind, per_second);
        let _ = writeln!(
            text,
            "| {} | all | {} | {:.2} | {:.2} | | |",
            kind.label(),
            samples.len(),
            percentile(&samples, 0.5),
            percentile(&samples, 0.99)
        );
    }
    let (p50, p99) = added_latency(results, per_second);
    let partner = Spread::of(
        results
            .latency_records(per_second)
            .filter_map(|record| record.partner_ms_per_card),
    );
    let _ = writeln!(
        text,
        "\nAdded by the worker (median over the rounds of the difference within \
         each): {p50:.2} ms at p50, {p99:.2} ms at p99. Its two \
         partner calls took {:.2} ms a card on average (its own \
         `card_issuer_partner_call_duration_seconds`), against {:.3} ms for one \
         call to the idle simulator.\n",
        partner.median,
        percentile(&sorted(results.round_trips.iter().copied()), 0.5)
    );
}

fn cpu_and_memory(text: &mut String, results: &Results) {
    let args = &results.args;
    let _ = writeln!(
        text,
        "## CPU per card and memory\n\n\
         CPU milliseconds (user + system, `/proc/<pid>/stat`) over each \
         throughput window, per card, median of the rounds; \"machine busy\" is \
         the share of all CPUs' time that was not idle (`/proc/stat`), whoever \
         used it.\n"
    );
    let _ = writeln!(
        text,
        "| subject | concurrency | latency | subject ms | simulator ms | broker ms \
         | benchmark ms | machine busy |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|---|");
    let rows = [
        (Kind::NullWorker, args.headline_concurrency, Duration::ZERO),
        (Kind::Worker, args.headline_concurrency, Duration::ZERO),
        (Kind::NullWorker, args.slow_concurrency, args.slow_latency),
        (Kind::Worker, args.slow_concurrency, args.slow_latency),
    ];
    for (kind, level, latency) in rows {
        let trials = results.trials(kind, level, latency);
        let median = |pick: fn(&Throughput) -> f64| {
            let spread = Spread::of(trials.iter().map(|trial| pick(trial) * 1000.0));
            if spread.median.is_nan() {
                "–".to_owned()
            } else {
                format!("{:.3}", spread.median)
            }
        };
        let busy = Spread::of(trials.iter().map(|trial| trial.machine_busy * 100.0));
        let _ = writeln!(
            text,
            "| {} | {level} | {} ms | {} | {} | {} | {} | {:.0} % |",
            kind.label(),
            latency.as_millis(),
            median(|trial| trial.cpu_per_card.subject),
            median(|trial| trial.cpu_per_card.simulator),
            median(|trial| trial.cpu_per_card.broker),
            median(|trial| trial.cpu_per_card.bench),
            busy.median,
        );
    }
    let idle = Spread::of(results.idle_rss.iter().map(|&rss| rss as f64 / MIB));
    let full = results.trials(Kind::Worker, args.slow_concurrency, args.slow_latency);
    let peak = Spread::of(full.iter().map(|trial| trial.peak_rss as f64 / MIB));
    let _ = writeln!(
        text,
        "\nWorker RSS: {:.1} MiB at idle (concurrency {}, ready, nothing to do); \
         {:.1} MiB at most with {} partner calls in flight ({} ms latency); \
         {:.1} KiB per call in flight.\n",
        idle.median,
        args.slow_concurrency,
        peak.median,
        args.slow_concurrency,
        args.slow_latency.as_millis(),
        per_call_kib(results)
    );
}

fn simulator(text: &mut String, results: &Results) {
    let trips = sorted(results.round_trips.iter().copied());
    let level = results.args.headline_concurrency;
    let trials = results.trials(Kind::Worker, level, Duration::ZERO);
    let simulator = Spread::of(trials.iter().map(|trial| trial.simulator_cores));
    let worker = Spread::of(trials.iter().map(|trial| trial.subject_cores));
    let _ = writeln!(
        text,
        "## The simulator is not what is measured\n\n\
         {} status checks one after another on one kept-alive connection: \
         p50 {:.3} ms, p99 {:.3} ms, largest {:.3} ms. While the worker ran \
         flat out (concurrency {level}, no latency) the simulator kept {:.2} \
         cores busy, the worker {:.2}, of {}.\n",
        trips.len(),
        percentile(&trips, 0.5),
        percentile(&trips, 0.99),
        trips.last().copied().unwrap_or(f64::NAN),
        simulator.median,
        worker.median,
        results.machine.cpus
    );
}

fn machine(text: &mut String, results: &Results) {
    let machine = &results.machine;
    let args = &results.args;
    let broker = match &results.broker {
        Some((pid, name)) => format!("`{name}` (pid {pid})"),
        None => "not found: its CPU is not counted".to_owned(),
    };
    let levels: Vec<String> = args.concurrency.iter().map(u16::to_string).collect();
    let _ = writeln!(
        text,
        "## The run\n\n\
         - machine: {} × {}, {} MiB, Linux {}\n\
         - load average before: {}; after: {}\n\
         - broker: {broker}\n\
         - {} rounds of {} cards per throughput trial; concurrency levels {}; \
         the run took {:.0} s",
        machine.cpus,
        machine.cpu,
        machine.memory_mib,
        machine.kernel,
        machine.load_before,
        machine.load_after,
        args.rounds,
        args.cards,
        levels.join(", "),
        results.elapsed.as_secs_f64()
    );
}
