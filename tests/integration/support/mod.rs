//! A worker, a partner simulator and an upstream client, wired together on
//! names of their own, so every test runs alone on a shared broker.

pub mod broker;
pub mod proxy;
pub mod tls;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use card_issuer::broker::Topology;
use card_issuer::health::{self, Readiness};
use card_issuer::issuance::Plan;
use card_issuer::secret::Secret;
use card_issuer::settings::{BrokerSettings, Settings};
use card_issuer::simulator::{self, Scenario, SimulatorConfig, SimulatorHandle};
use card_issuer::upstream::{Event, Upstream};
use card_issuer::worker;
use lapin::options::BasicGetOptions;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use card_issuer::upstream::ParkedMessage;

/// How long a test waits for an event that should come.
pub const PATIENCE: Duration = Duration::from_secs(20);

static APPS: AtomicU32 = AtomicU32::new(0);

/// Flags every test worker gets: fast delays, a short deadline, the
/// simulator's credentials. Tests add or override flags.
fn base_flags(prefix: &str, partner_url: &str) -> Vec<(String, String)> {
    [
        ("--amqp-url", broker::url()),
        ("--commands-exchange", format!("{prefix}.commands")),
        ("--events-exchange", format!("{prefix}.events")),
        ("--queue-prefix", prefix.to_owned()),
        ("--partner-url", partner_url.to_owned()),
        ("--partner-username", "login".into()),
        ("--partner-password", "p@ssw0rd".into()),
        ("--partner-timeout", "1s".into()),
        ("--partner-calls-per-second", "0".into()),
        ("--status-check-delays", "100ms,200ms".into()),
        ("--retry-delays", "100ms,300ms".into()),
        ("--deadline", "20s".into()),
        ("--concurrency", "16".into()),
        ("--metrics-addr", "127.0.0.1:0".into()),
        ("--shutdown-grace", "2s".into()),
    ]
    .into_iter()
    .map(|(flag, value)| (flag.to_owned(), value))
    .collect()
}

/// A running worker with its partner simulator and an upstream client.
pub struct TestApp {
    /// The simulated partner.
    pub partner: SimulatorHandle,
    /// The worker's settings.
    pub settings: Settings,
    /// Publishes commands.
    pub upstream: Upstream,
    /// Where the worker's /metrics listens.
    pub metrics_addr: SocketAddr,
    events: card_issuer::upstream::Events,
    received: VecDeque<Event>,
    worker: Option<RunningWorker>,
    replicas: Vec<RunningWorker>,
    prefix: String,
    cleaned: bool,
}

struct RunningWorker {
    stop: CancellationToken,
    task: JoinHandle<()>,
    readiness: Readiness,
}

impl TestApp {
    /// A worker with the base flags.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A worker with extra flags, e.g. `[("--deadline", "2s")]`.
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            card_issuer::telemetry::init(card_issuer::telemetry::LogFormat::Text, &filter);
        }
        let prefix = format!(
            "test-{}-{}-{:04x}",
            std::process::id(),
            APPS.fetch_add(1, Ordering::Relaxed),
            fastrand::u16(..)
        );
        let partner = simulator::spawn(SimulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SimulatorConfig::default()
        })
        .await
        .expect("the simulator starts");
        let mut flags = base_flags(&prefix, &partner.base_url());
        for (flag, value) in extra {
            flags.retain(|(known, _)| known != flag);
            flags.push(((*flag).to_owned(), (*value).to_owned()));
        }
        let flags: Vec<String> = flags.into_iter().flat_map(|(f, v)| [f, v]).collect();
        let settings = Settings::from_flags(&flags).expect("test flags are valid");

        let (worker, metrics_addr) = run_worker(&settings).await;
        // The test's own client goes straight to the broker, whatever way the
        // worker takes (a proxy, say).
        let direct = BrokerSettings {
            urls: vec![Secret::new(broker::url())],
            ..settings.broker.clone()
        };
        let upstream = Upstream::connect(&direct, "test upstream")
            .await
            .expect("broker");
        let events = upstream
            .subscribe(&settings.broker.events_exchange)
            .await
            .expect("events can be read");
        Self {
            partner,
            settings,
            upstream,
            metrics_addr,
            events,
            received: VecDeque::new(),
            worker: Some(worker),
            replicas: Vec::new(),
            prefix,
            cleaned: false,
        }
    }

    /// Starts the worker again after a stop or a kill.
    pub async fn start_worker(&mut self) {
        let (worker, metrics_addr) = run_worker(&self.settings).await;
        self.worker = Some(worker);
        self.metrics_addr = metrics_addr;
    }

    /// Starts another replica on the same settings: a competing consumer
    /// of the same queues, as a second process would be. `stop` stops it.
    pub async fn start_replica(&mut self) {
        let (replica, _) = run_worker(&self.settings).await;
        self.replicas.push(replica);
    }

    /// Stops the worker gracefully.
    pub async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop.cancel();
            let _ = worker.task.await;
        }
    }

    /// Kills the worker: its task is dropped mid-flight, as `kill -9` would.
    /// Unacknowledged deliveries return when the broker notices the
    /// connections are gone.
    pub async fn kill_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.task.abort();
            let _ = worker.task.await;
            drop(worker.readiness);
        }
    }

    /// A well-formed command with a request id and customer of its own.
    pub fn command(&self, slug: &str) -> Value {
        let n = fastrand::u32(..10_000_000);
        json!({
            "requestId": format!("{}-{slug}-{n}", self.prefix),
            "phoneNumber": format!("+99890{n:07}"),
            "productId": 1,
            "pin": format!("3010199{n:07}"),
        })
    }

    /// Scripts the partner's answers for a command.
    pub fn script(
        &self,
        command: &Value,
        open_card: Vec<simulator::Reply>,
        status: Vec<simulator::Reply>,
    ) {
        self.partner
            .script(request_id(command), Scenario { open_card, status });
    }

    /// Publishes a command.
    pub async fn send(&self, command: &Value) {
        self.send_raw(command.to_string().as_bytes()).await;
    }

    /// Publishes a command with a `correlation_id` property.
    pub async fn send_correlated(&self, command: &Value, correlation_id: &str) {
        let body = command.to_string();
        self.upstream
            .publish_command(body.as_bytes(), Some(correlation_id))
            .await
            .expect("confirmed");
    }

    /// Publishes any body as a command.
    pub async fn send_raw(&self, body: &[u8]) {
        self.upstream
            .publish_command(body, None)
            .await
            .expect("the command is confirmed");
    }

    /// The next event for `request_id`, waiting up to [`PATIENCE`].
    pub async fn outcome(&mut self, request_id: &str) -> Event {
        self.outcome_within(request_id, PATIENCE)
            .await
            .unwrap_or_else(|| panic!("no event for {request_id} within {PATIENCE:?}"))
    }

    /// The next event for `request_id` within `wait`, if any.
    pub async fn outcome_within(&mut self, request_id: &str, wait: Duration) -> Option<Event> {
        let matches = |event: &Event| event.request_id() == Some(request_id);
        if let Some(index) = self.received.iter().position(matches) {
            return self.received.remove(index);
        }
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let event = self.events.next(left).await?;
            if matches(&event) {
                return Some(event);
            }
            self.received.push_back(event);
        }
        None
    }

    /// Asserts that no (further) event for `request_id` arrives in `quiet`.
    pub async fn assert_no_event(&mut self, request_id: &str, quiet: Duration) {
        if let Some(event) = self.outcome_within(request_id, quiet).await {
            panic!(
                "unexpected event for {request_id}: {} {}",
                event.routing_key, event.body
            );
        }
    }

    /// Every message in the dead-letter queue, removed from it.
    pub async fn parked(&self) -> Vec<ParkedMessage> {
        let connection = connect().await;
        let channel = connection.create_channel().await.unwrap();
        let queue = &self.topology().dead_letter_queue;
        let mut parked = vec![];
        while let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let headers = message.delivery.properties.headers().as_ref();
            let header = |name: &str| card_issuer::issuance::header_text(headers, name);
            parked.push(ParkedMessage {
                reason: header("card-issuer-reason").unwrap_or_default(),
                detail: header("card-issuer-detail").unwrap_or_default(),
                body: message.delivery.data.clone(),
            });
        }
        let _ = connection.close(200, "done".into()).await;
        parked
    }

    /// Waits until at least `count` messages are parked, and returns them
    /// (removed from the queue).
    pub async fn wait_for_parked(&self, count: usize) -> Vec<ParkedMessage> {
        let mut parked = vec![];
        for _ in 0..100 {
            parked.extend(self.parked().await);
            if parked.len() >= count {
                return parked;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {count} parked message(s), found {}", parked.len());
    }

    /// The worker's /metrics text.
    pub async fn metrics(&self) -> String {
        reqwest_text(&format!("http://{}/metrics", self.metrics_addr)).await
    }

    /// The names the worker uses on the broker.
    pub fn topology(&self) -> Topology {
        Topology::new(
            &self.settings.broker,
            Plan::new(&self.settings.issuance).all_delays(),
        )
    }

    /// Stops the worker and deletes everything it declared.
    pub async fn stop(mut self) {
        self.stop_worker().await;
        for replica in self.replicas.drain(..) {
            replica.stop.cancel();
            let _ = replica.task.await;
        }
        let connection = connect().await;
        let channel = connection.create_channel().await.unwrap();
        self.topology()
            .delete(&channel)
            .await
            .expect("the test topology can be deleted");
        let _ = connection.close(200, "cleaned up".into()).await;
        self.cleaned = true;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // A failed test still removes its queues.
        broker::delete_in_background(self.topology());
    }
}

/// Runs a worker in this process and waits until it consumes.
async fn run_worker(settings: &Settings) -> (RunningWorker, SocketAddr) {
    let stop = CancellationToken::new();
    let readiness = Readiness::default();
    let (addr, server) = health::serve(
        "127.0.0.1:0".parse().unwrap(),
        readiness.clone(),
        stop.clone(),
    )
    .await
    .expect("metrics endpoint");
    let settings = settings.clone();
    let worker_stop = stop.clone();
    let worker_readiness = readiness.clone();
    let task = tokio::spawn(async move {
        worker::run(settings, worker_readiness, worker_stop)
            .await
            .expect("worker runs");
        let _ = server.await;
    });
    let since = Instant::now();
    while !readiness.is_ready() {
        assert!(
            since.elapsed() < PATIENCE,
            "the worker did not start consuming"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (
        RunningWorker {
            stop,
            task,
            readiness,
        },
        addr,
    )
}

/// The request id of a command.
pub fn request_id(command: &Value) -> &str {
    command["requestId"]
        .as_str()
        .expect("commands have string request ids")
}

/// A plain connection to the test broker.
pub async fn connect() -> Connection {
    Connection::connect(&broker::url(), ConnectionProperties::default())
        .await
        .expect("broker")
}

async fn reqwest_text(url: &str) -> String {
    card_issuer::tls::install_crypto_provider();
    reqwest::get(url)
        .await
        .expect("endpoint answers")
        .text()
        .await
        .unwrap()
}
