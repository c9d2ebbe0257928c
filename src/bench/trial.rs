//! One measurement: a throughput trial, a latency trial, the worker at idle,
//! or the simulator's round trip.

use std::time::{Duration, Instant};

use super::BenchError;
use super::names::TrialNames;
use super::process::{self, Child, Launcher, Simulator};
use super::traffic::{Arrival, Events, Traffic};

/// How long a trial waits for the next event before it gives up.
const EVENT_WAIT: Duration = Duration::from_secs(60);

/// How often a throughput trial reads the subject's resident memory.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The null worker (no HTTP, no decisions).
    NullWorker,
    /// `card-issuer run`.
    Worker,
}

impl Kind {
    /// A label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::NullWorker => "null worker",
            Self::Worker => "worker",
        }
    }
}

/// A subject and the partner latency it runs with: the worker's simulator's
/// latency, or the null worker's sleep in place of each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    /// Which program.
    pub kind: Kind,
    /// Concurrency: prefetch of each consumer and partner calls in flight.
    pub concurrency: u16,
    /// The partner's latency.
    pub partner_latency: Duration,
}

/// What every trial runs against: the launcher, the benchmark's broker
/// connection, the two simulators and the broker's process.
pub struct Bed<'a> {
    /// Starts the subjects.
    pub launcher: &'a Launcher,
    /// The benchmark's broker connection.
    pub traffic: &'a Traffic,
    /// The simulator with no latency.
    pub fast: &'a Simulator,
    /// The simulator with the slow-partner latency.
    pub slow: &'a Simulator,
    /// The broker's process, when found.
    pub broker_pid: Option<u32>,
    /// Identifies this run in broker names.
    pub run_id: &'a str,
}

/// CPU seconds per card, by process.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPerCard {
    /// The worker or the null worker.
    pub subject: f64,
    /// The simulator (NaN for the null worker, which calls none).
    pub simulator: f64,
    /// The broker (NaN when its process was not found).
    pub broker: f64,
    /// The benchmark itself (reading events).
    pub bench: f64,
}

/// What a latency trial measured.
#[derive(Clone, Debug)]
pub struct Latency {
    /// Each card's time from publish to event, in milliseconds.
    pub samples_ms: Vec<f64>,
    /// The worker's time in partner calls per card, by its own histogram
    /// (none for the null worker).
    pub partner_ms_per_card: Option<f64>,
    /// The share of the machine's CPU time that was busy while the
    /// commands were published and answered (0 to 1).
    pub machine_busy: f64,
    /// The subject's CPU per card over the same time, in milliseconds.
    pub subject_ms_per_card: f64,
}

/// What a throughput trial measured.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Cards a second over the window.
    pub cards_per_second: f64,
    /// CPU seconds per card over the window.
    pub cpu_per_card: CpuPerCard,
    /// Cores the simulator kept busy over the window.
    pub simulator_cores: f64,
    /// Cores the subject kept busy over the window.
    pub subject_cores: f64,
    /// The share of the machine's CPU time that was busy over the window,
    /// whoever used it (0 to 1).
    pub machine_busy: f64,
    /// CPU of every other process over the window, per card.
    pub others_per_card: f64,
    /// The three other processes (by name) that used most CPU over the
    /// window, with the cores each kept busy.
    pub busiest_others: Vec<(String, f64)>,
    /// The subject's largest resident set seen, in bytes.
    pub peak_rss: u64,
    /// Events that were `card.failed` (none expected).
    pub failed: usize,
}

impl Bed<'_> {
    fn simulator(&self, subject: &Subject) -> &Simulator {
        if subject.partner_latency.is_zero() {
            self.fast
        } else {
            self.slow
        }
    }

    /// Starts the subject for a trial; the worker's simulator first forgets
    /// earlier trials.
    async fn start(
        &self,
        names: &TrialNames,
        subject: &Subject,
        wait_ready: bool,
    ) -> Result<Child, BenchError> {
        let (launcher, concurrency) = (self.launcher, subject.concurrency);
        match subject.kind {
            Kind::NullWorker => {
                let latency = subject.partner_latency;
                launcher.null_worker(names, concurrency, latency).await
            }
            Kind::Worker => {
                let partner = &self.simulator(subject).base_url;
                reset(partner).await?;
                launcher
                    .worker(names, partner, concurrency, wait_ready)
                    .await
            }
        }
    }

    /// Publishes a backlog of `cards` commands, starts the subject, and
    /// measures from the tenth event to the last.
    pub async fn throughput(
        &self,
        trial: usize,
        subject: &Subject,
        cards: usize,
    ) -> Result<Throughput, BenchError> {
        let names = TrialNames::new(self.run_id, trial);
        let topology = names.topology(&self.launcher.amqp_url);
        let mut events = self.traffic.prepare(&topology).await?;
        let measured = async {
            let tag = format!("t{trial}");
            let exchange = names.commands_exchange();
            self.traffic.publish_backlog(&exchange, &tag, cards).await?;
            let child = self.start(&names, subject, false).await?;
            let measured = self.watch(&child, subject, &mut events, cards).await;
            child.stop().await?;
            measured
        }
        .await;
        self.traffic.clean_up(&topology, events).await?;
        measured
    }

    async fn watch(
        &self,
        child: &Child,
        subject: &Subject,
        events: &mut Events,
        cards: usize,
    ) -> Result<Throughput, BenchError> {
        let window_start = cards / 10;
        let pids = self.cpu_pids(child, subject);
        let mut peak_rss = 0;
        let mut rss_read = Instant::now() - RSS_EVERY;
        let mut failed = 0;
        let mut start = None;
        for seen in 1..=cards {
            let arrival = events.next(EVENT_WAIT).await?;
            failed += usize::from(!arrival.issued);
            if rss_read.elapsed() >= RSS_EVERY {
                peak_rss = peak_rss.max(process::rss_bytes(child.pid())?);
                rss_read = Instant::now();
            }
            if seen == window_start.max(1) {
                let everyone = process::all_cpu_seconds();
                start = Some((
                    arrival.at,
                    cpu_of(&pids)?,
                    process::machine_ticks()?,
                    everyone,
                ));
            }
            if seen == cards {
                let (started_at, cpu_before, machine_before, everyone_before) =
                    start.expect("the window starts first");
                let cpu_after = cpu_of(&pids)?;
                let others = others_used(&everyone_before, &pids);
                let machine_after = process::machine_ticks()?;
                let busy = (machine_after.0 - machine_before.0) as f64;
                let all = (machine_after.1 - machine_before.1) as f64;
                let seconds = (arrival.at - started_at).as_secs_f64();
                let counted = (cards - window_start.max(1)) as f64;
                let used = |i: usize| cpu_after[i] - cpu_before[i];
                return Ok(Throughput {
                    cards_per_second: counted / seconds,
                    cpu_per_card: CpuPerCard {
                        subject: used(0) / counted,
                        simulator: used(1) / counted,
                        broker: used(2) / counted,
                        bench: used(3) / counted,
                    },
                    machine_busy: busy / all,
                    others_per_card: others.iter().map(|(_, used)| used).sum::<f64>() / counted,
                    busiest_others: others
                        .iter()
                        .take(3)
                        .map(|(name, used)| (name.clone(), used / seconds))
                        .collect(),
                    simulator_cores: used(1) / seconds,
                    subject_cores: used(0) / seconds,
                    peak_rss,
                    failed,
                });
            }
        }
        Err(BenchError::Failed(
            "a trial needs at least two cards".into(),
        ))
    }

    /// The subject, its simulator (none for the null worker), the broker and
    /// the benchmark itself.
    fn cpu_pids(&self, child: &Child, subject: &Subject) -> [Option<u32>; 4] {
        let simulator = match subject.kind {
            Kind::Worker => Some(self.simulator(subject).child.pid()),
            Kind::NullWorker => None,
        };
        let bench = Some(std::process::id());
        [Some(child.pid()), simulator, self.broker_pid, bench]
    }

    /// Starts the subject, publishes `cards` commands at `per_second`, and
    /// returns each card's time from publish to event, in milliseconds,
    /// leaving out the first tenth (connections warming up), with the
    /// worker's own count of its time in partner calls.
    pub async fn latency(
        &self,
        trial: usize,
        subject: &Subject,
        cards: usize,
        per_second: f64,
    ) -> Result<Latency, BenchError> {
        let names = TrialNames::new(self.run_id, trial);
        let topology = names.topology(&self.launcher.amqp_url);
        let mut events = self.traffic.prepare(&topology).await?;
        let measured = async {
            let child = self.start(&names, subject, true).await?;
            let tag = format!("t{trial}");
            let exchange = names.commands_exchange();
            let publishing = self
                .traffic
                .publish_paced(&exchange, &tag, cards, per_second);
            let machine_before = process::machine_ticks()?;
            let subject_before = process::cpu_seconds(child.pid())?;
            let (sent, arrived) = tokio::join!(publishing, collect(&mut events, cards));
            let machine_after = process::machine_ticks()?;
            let subject_after = process::cpu_seconds(child.pid())?;
            let partner_calls = child.partner_call_seconds().await;
            child.stop().await?;
            let busy = (machine_after.0 - machine_before.0) as f64;
            let all = (machine_after.1 - machine_before.1) as f64;
            Ok::<_, BenchError>(Latency {
                samples_ms: latencies_ms(&sent?, &arrived?, cards / 10),
                partner_ms_per_card: partner_calls
                    .map(|(seconds, _)| seconds * 1000.0 / cards as f64),
                machine_busy: busy / all,
                subject_ms_per_card: (subject_after - subject_before) * 1000.0 / cards as f64,
            })
        }
        .await;
        self.traffic.clean_up(&topology, events).await?;
        measured
    }

    /// The worker's resident memory once ready with nothing to do.
    pub async fn idle_rss(&self, trial: usize, concurrency: u16) -> Result<u64, BenchError> {
        let names = TrialNames::new(self.run_id, trial);
        let topology = names.topology(&self.launcher.amqp_url);
        let events = self.traffic.prepare(&topology).await?;
        let subject = Subject {
            kind: Kind::Worker,
            concurrency,
            partner_latency: Duration::ZERO,
        };
        let measured = async {
            let child = self.start(&names, &subject, true).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss = process::rss_bytes(child.pid());
            child.stop().await?;
            rss
        }
        .await;
        self.traffic.clean_up(&topology, events).await?;
        measured
    }
}

/// CPU used since `before` by every process but `ours`, by name, most first.
fn others_used(
    before: &std::collections::HashMap<u32, (String, f64)>,
    ours: &[Option<u32>; 4],
) -> Vec<(String, f64)> {
    let mut by_name: std::collections::HashMap<String, f64> = Default::default();
    for (pid, (name, now)) in process::all_cpu_seconds() {
        if ours.contains(&Some(pid)) {
            continue;
        }
        let earlier = before.get(&pid).map_or(0.0, |(_, seconds)| *seconds);
        *by_name.entry(name).or_default() += now - earlier;
    }
    let mut used: Vec<(String, f64)> = by_name.into_iter().filter(|(_, s)| *s > 0.0).collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    used
}

fn cpu_of(pids: &[Option<u32>; 4]) -> Result<[f64; 4], BenchError> {
    let mut seconds = [f64::NAN; 4];
    for (slot, pid) in seconds.iter_mut().zip(pids) {
        if let Some(pid) = pid {
            *slot = process::cpu_seconds(*pid)?;
        }
    }
    Ok(seconds)
}

async fn collect(events: &mut Events, cards: usize) -> Result<Vec<Arrival>, BenchError> {
    let mut arrived = Vec::with_capacity(cards);
    while arrived.len() < cards {
        arrived.push(events.next(EVENT_WAIT).await?);
    }
    Ok(arrived)
}

fn latencies_ms(sent: &[Instant], arrived: &[Arrival], skip: usize) -> Vec<f64> {
    arrived
        .iter()
        .filter(|arrival| arrival.card >= skip)
        .filter_map(|arrival| {
            let sent_at = sent.get(arrival.card)?;
            Some((arrival.at - *sent_at).as_secs_f64() * 1000.0)
        })
        .collect()
}

/// Makes the simulator forget earlier trials' applications.
async fn reset(base_url: &str) -> Result<(), BenchError> {
    let answer = reqwest::Client::new()
        .post(format!("{base_url}/_reset"))
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        _ => Err(BenchError::Failed(format!("{base_url}/_reset failed"))),
    }
}

/// Times `calls` status checks, one after another on one kept-alive
/// connection, against the simulator; milliseconds each, the first ten (the
/// connection opening) left out.
pub async fn round_trips(simulator: &Simulator, calls: usize) -> Result<Vec<f64>, BenchError> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .map_err(|error| BenchError::Failed(format!("cannot build an HTTP client: {error}")))?;
    let url = format!("{}/card/status/bench-probe", simulator.base_url);
    let mut took = Vec::with_capacity(calls);
    for call in 0..calls + 10 {
        let started = Instant::now();
        let response = http
            .get(&url)
            .basic_auth("login", Some("p@ssw0rd"))
            .send()
            .await;
        let body = match response {
            Ok(response) => response.bytes().await.ok(),
            Err(_) => None,
        };
        if body.is_none() {
            return Err(BenchError::Failed("the simulator did not answer".into()));
        }
        if call >= 10 {
            took.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(took)
}
