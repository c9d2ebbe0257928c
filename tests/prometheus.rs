//! A real Prometheus (Debian's binary) scrapes a real worker (this crate's
//! binary, `card-issuer run`, against the partner simulator as a second
//! process and the local RabbitMQ) while it issues and fails cards, retries,
//! checks status, parks invalid commands, waits for the calls-per-second
//! cap, meets a 401, fails to publish unroutable events and reconnects.
//! Then every panel query of the dashboard and every alert expression is
//! evaluated through Prometheus's HTTP API: each must be valid, and each
//! panel on `card_issuer_*` metrics must return data, so the dashboard can
//! never name a metric that does not exist.
//!
//! The panels on RabbitMQ's own metrics need the broker's rabbitmq_prometheus
//! plugin on 127.0.0.1:15692; where it is not enabled they are checked for
//! validity only, and the test says so.
//!
//! Needs `prometheus` on the PATH (scripts/ensure-prometheus) and the broker
//! at 127.0.0.1:5672 (scripts/ensure-broker), or CARD_ISSUER_TEST_AMQP_URL.
//! Everything it declares on the broker is named `card-issuer-promtest-<run>`
//! and deleted at the end; its servers listen on free loopback ports. It
//! takes about 15 seconds.

mod deploy_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use card_issuer::broker::{Publisher, Topology};
use card_issuer::issuance::Plan;
use card_issuer::settings::Settings;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, Consumer};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use deploy_support::{
    alert_rules, dashboard, defined_metrics, deploy, label_values_metric, metric_names,
    panel_queries, require_prometheus_tool, variable_queries,
};

/// The worker binary cargo built for this test.
const CARD_ISSUER: &str = env!("CARGO_BIN_EXE_card-issuer");

/// The local broker of scripts/ensure-broker.
const LOCAL_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// RabbitMQ's prometheus plugin on the local broker, when it is enabled.
const RABBITMQ_PLUGIN: &str = "127.0.0.1:15692";

/// How long any one step may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// What each command should come to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Issued,
    Failed,
    ParkedOnly,
}

/// One command: its request id's last part, the partner's scripted answers
/// (`None`: the simulated partner behaves as a partner does), a replacement
/// body for invalid ones, and its outcome.
struct Case {
    slug: &'static str,
    script: Option<Value>,
    phone: Option<&'static str>,
    raw_body: Option<&'static str>,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    let case = |slug, script, expect| Case {
        slug,
        script,
        phone: None,
        raw_body: None,
        expect,
    };
    let html = |status: u16| json!({"http": status, "raw": "<html>go away</html>"});
    vec![
        case("plain", None, Expect::Issued),
        case(
            "review",
            Some(json!({"status": [{"code": "1005"}, {"ok": true}]})),
            Expect::Issued,
        ),
        case(
            "humo-down",
            Some(json!({"open_card": [{"code": "1007"}, {"ok": true}]})),
            Expect::Issued,
        ),
        case(
            "busy",
            Some(json!({"status": [{"code": "1009"}, {"ok": true}]})),
            Expect::Issued,
        ),
        case(
            "proxy-503",
            Some(json!({"open_card": [html(503), {"ok": true}]})),
            Expect::Issued,
        ),
        case(
            "credentials",
            Some(json!({"open_card": [html(401), {"ok": true}]})),
            Expect::Issued,
        ),
        case(
            "stateless",
            Some(json!({"open_card": [{"code": "1006"}]})),
            Expect::Failed,
        ),
        case(
            "odd-code",
            Some(json!({"open_card": [{"code": "4711"}]})),
            Expect::Failed,
        ),
        case(
            "never",
            Some(json!({"status": [{"code": "1005"}]})),
            Expect::Failed,
        ),
        Case {
            phone: Some("+99890123"),
            ..case("bad-phone", None, Expect::Failed)
        },
        Case {
            raw_body: Some("this is not JSON"),
            ..case("not-json", None, Expect::ParkedOnly)
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_and_alert_evaluates_against_a_scraped_worker() {
    let prometheus = require_prometheus_tool("prometheus");
    let broker = broker_url();
    let stack = Stack::start(&prometheus, &broker).await;
    // Scraped before and after: the counters' rates see them change.
    stack.wait_for_scrapes(1).await;

    exercise_the_worker(&stack, &broker).await;
    stack.wait_for_scrapes(2).await;

    check_the_worker_exports_every_defined_metric(&stack).await;
    check_the_dashboard(&stack).await;
    check_the_alerts(&stack).await;
}

// ---- what the worker goes through

/// Publishes every case, holds `card.failed` events unroutable until the
/// worker has counted a failed publish, waits for every outcome, then
/// deletes the status-check queue under the worker so it reconnects.
async fn exercise_the_worker(stack: &Stack, broker: &str) {
    let connection = Connection::connect(broker, ConnectionProperties::default())
        .await
        .expect("the test connects to the broker");
    let channel = connection.create_channel().await.unwrap();
    let events_exchange = &stack.topology.events_exchange;
    let events_queue = declare_events_queue(&channel).await;
    bind(&channel, &events_queue, events_exchange, "card.issued").await;
    let mut events = consume(&channel, &events_queue).await;

    let publisher = Publisher::open(&connection, Duration::from_secs(5))
        .await
        .unwrap();
    let cases = cases();
    for (index, case) in cases.iter().enumerate() {
        let body = command_body(&stack.prefix, index, case);
        let properties = BasicProperties::default().with_delivery_mode(2);
        publisher
            .publish(
                &stack.topology.commands_exchange,
                "card.open",
                &body,
                properties,
            )
            .await
            .expect("a command is published");
    }

    // No queue takes card.failed yet: the worker must count a failed
    // publish, and keeps retrying it.
    stack
        .wait_for_metric("card_issuer_publish_failures_total{reason=\"unroutable\"}")
        .await;
    bind(&channel, &events_queue, events_exchange, "card.failed").await;

    let expected: BTreeMap<String, Expect> = cases
        .iter()
        .filter(|case| case.expect != Expect::ParkedOnly)
        .map(|case| (request_id(&stack.prefix, case), case.expect))
        .collect();
    let outcomes = collect_events(&mut events, expected.len()).await;
    assert_eq!(outcomes, expected, "the outcomes of the commands");

    // The worker's consumer is cancelled when its queue goes; it starts a
    // new broker session, which declares the queue again.
    channel
        .queue_delete(
            stack.topology.status_queue.as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    stack
        .wait_for_metric("card_issuer_broker_reconnects_total")
        .await;
    stack.wait_until_worker_ready().await;
    let _ = connection.close(200, "done".into()).await;
}

fn request_id(prefix: &str, case: &Case) -> String {
    format!("{prefix}-{}", case.slug)
}

/// Each case is its own customer, so no case meets another's pending
/// application at the simulated partner.
fn command_body(prefix: &str, index: usize, case: &Case) -> Vec<u8> {
    if let Some(raw) = case.raw_body {
        return raw.as_bytes().to_vec();
    }
    let phone = case
        .phone
        .map(str::to_owned)
        .unwrap_or_else(|| format!("+99890{:07}", 2_000 + index));
    json!({
        "requestId": request_id(prefix, case),
        "phoneNumber": phone,
        "productId": 1,
        "pin": format!("3010199{:07}", 2_000 + index),
    })
    .to_string()
    .into_bytes()
}

async fn declare_events_queue(channel: &lapin::Channel) -> String {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .unwrap();
    queue.name().to_string()
}

async fn bind(channel: &lapin::Channel, queue: &str, exchange: &str, key: &str) {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}

async fn consume(channel: &lapin::Channel, queue: &str) -> Consumer {
    let options = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    channel
        .basic_consume(queue.into(), "".into(), options, FieldTable::default())
        .await
        .unwrap()
}

/// The outcome of each request, from the first `count` distinct requests'
/// events.
async fn collect_events(events: &mut Consumer, count: usize) -> BTreeMap<String, Expect> {
    let mut outcomes = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while outcomes.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(delivery))) = tokio::time::timeout(left, events.next()).await else {
            panic!(
                "only {} of {count} outcomes arrived: {outcomes:?}",
                outcomes.len()
            );
        };
        let body: Value = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
        let request = body["requestId"].as_str().unwrap_or_default().to_owned();
        let outcome = match delivery.routing_key.as_str() {
            "card.issued" => Expect::Issued,
            _ => Expect::Failed,
        };
        outcomes.insert(request, outcome);
    }
    outcomes
}

// ---- the checks

async fn check_the_worker_exports_every_defined_metric(stack: &Stack) {
    let exported = stack.worker_metrics().await;
    let missing: Vec<String> = defined_metrics()
        .names
        .into_iter()
        .filter(|name| !exported.contains(&format!("\n{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "the exercise left these metrics unexported, so their panels cannot be checked: \
         {missing:?}"
    );
}

async fn check_the_dashboard(stack: &Stack) {
    let dashboard = dashboard();
    let mut problems = Vec::new();
    let mut rabbitmq_panels = BTreeMap::new();

    for query in panel_queries(&dashboard) {
        let expr = stack.with_dashboard_variables(&query.expr);
        let names = metric_names(&query.expr);
        match stack.query(&expr).await {
            Err(error) => problems.push(format!("{:?}: {error}\n    {expr}", query.panel)),
            Ok(result) => {
                let on_worker = names.iter().any(|name| name.starts_with("card_issuer_"));
                if on_worker && result.is_empty() {
                    problems.push(format!("{:?} returned no data\n    {expr}", query.panel));
                }
                if names.iter().any(|name| name.starts_with("rabbitmq_")) {
                    rabbitmq_panels.insert(query.panel.clone(), !result.is_empty());
                }
            }
        }
    }
    for query in variable_queries(&dashboard) {
        let metric = label_values_metric(&query).unwrap_or(query.clone());
        match stack.query(&metric).await {
            Ok(result) if !result.is_empty() => {}
            other => problems.push(format!("variable query {query}: {other:?}")),
        }
    }

    report_rabbitmq_panels(stack, &rabbitmq_panels).await;
    assert!(
        problems.is_empty(),
        "dashboard queries that fail against the scraped worker:\n{}",
        problems.join("\n")
    );
}

/// Says what the RabbitMQ panels showed: data only where the broker's
/// rabbitmq_prometheus plugin answers.
async fn report_rabbitmq_panels(stack: &Stack, panels: &BTreeMap<String, bool>) {
    let up = stack
        .query("up{job=\"rabbitmq\"} == 1")
        .await
        .unwrap_or_default();
    let with_data = panels.values().filter(|data| **data).count();
    if up.is_empty() {
        eprintln!(
            "note: RabbitMQ's prometheus plugin does not answer on {RABBITMQ_PLUGIN}; the {} \
             panels on rabbitmq_* metrics were checked for valid PromQL only",
            panels.len()
        );
    } else {
        eprintln!(
            "note: RabbitMQ's prometheus plugin answers on {RABBITMQ_PLUGIN}; {with_data} of \
             {} panels on rabbitmq_* metrics returned data: {panels:?}",
            panels.len()
        );
    }
}

async fn check_the_alerts(stack: &Stack) {
    let mut problems = Vec::new();
    for alert in alert_rules() {
        if let Err(error) = stack.query(&alert.expr).await {
            problems.push(format!("{}: {error}", alert.name));
        }
    }
    // Prometheus loaded the same file as rules: each has been evaluated,
    // without error.
    let rules = stack.evaluated_rules().await;
    for alert in alert_rules() {
        match rules.get(&alert.name) {
            Some(health) if health == "ok" => {}
            other => problems.push(format!("{}: rule health {other:?}", alert.name)),
        }
    }
    assert!(
        problems.is_empty(),
        "alert expressions that fail:\n{}",
        problems.join("\n")
    );
}

// ---- the processes

/// The simulator, the worker and Prometheus, each a child process on a
/// free loopback port, with the worker's names on the broker.
struct Stack {
    prefix: String,
    dir: PathBuf,
    topology: Topology,
    broker: String,
    metrics_addr: SocketAddr,
    prometheus_addr: SocketAddr,
    http: reqwest::Client,
    prometheus: Process,
    worker: Process,
    partner: Process,
}

impl Stack {
    async fn start(prometheus: &Path, broker: &str) -> Self {
        let run = format!("{:08x}", fastrand::u32(..));
        let prefix = format!("card-issuer-promtest-{run}");
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();

        let partner_addr = free_loopback_addr();
        let partner = start_partner(&dir, &prefix, partner_addr);

        let metrics_addr = free_loopback_addr();
        let flags = worker_flags(&prefix, broker, partner_addr, metrics_addr);
        let settings = Settings::from_flags(&flags).expect("the test's worker flags are valid");
        let topology = Topology::new(&settings.broker, Plan::new(&settings.issuance).all_delays());
        wait_for_port(partner_addr, "the partner simulator").await;
        let worker = Process::spawn(
            "card-issuer run",
            Command::new(CARD_ISSUER)
                .args(["--log=warn", "run"])
                .args(&flags),
            &dir.join("worker.log"),
        );

        let prometheus_addr = free_loopback_addr();
        let prometheus = start_prometheus(prometheus, &dir, metrics_addr, prometheus_addr);

        card_issuer::tls::install_crypto_provider();
        let stack = Self {
            prefix,
            dir,
            topology,
            broker: broker.to_owned(),
            metrics_addr,
            prometheus_addr,
            http: reqwest::Client::new(),
            prometheus,
            worker,
            partner,
        };
        stack.wait_until_prometheus_ready().await;
        stack.wait_until_worker_ready().await;
        stack
    }

    async fn get(&self, url: &str) -> Result<(u16, String), reqwest::Error> {
        let response = self.http.get(url).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    async fn wait_until_worker_ready(&self) {
        let url = format!("http://{}/readyz", self.metrics_addr);
        let deadline = Instant::now() + PATIENCE;
        while !matches!(self.get(&url).await, Ok((200, _))) {
            self.pause_until(deadline, "the worker is ready (/readyz)")
                .await;
        }
    }

    async fn wait_until_prometheus_ready(&self) {
        let url = format!("http://{}/-/ready", self.prometheus_addr);
        let deadline = Instant::now() + PATIENCE;
        while !matches!(self.get(&url).await, Ok((200, _))) {
            self.pause_until(deadline, "Prometheus is ready").await;
        }
    }

    async fn worker_metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_addr);
        let (_, text) = self.get(&url).await.expect("the worker serves /metrics");
        format!("\n{text}")
    }

    /// Waits until the worker's /metrics has a line starting with `series`.
    async fn wait_for_metric(&self, series: &str) {
        let wanted = format!("\n{series}");
        let deadline = Instant::now() + PATIENCE;
        while !self.worker_metrics().await.contains(&wanted) {
            let what = format!("the worker exports {series}");
            self.pause_until(deadline, &what).await;
        }
    }

    /// Waits until Prometheus has scraped the worker `count` more times.
    async fn wait_for_scrapes(&self, count: usize) {
        let since = unix_seconds();
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + PATIENCE;
        while seen.len() < count {
            // timestamp() of a bare selector: the time of the last scrape.
            let scrapes = self.query("timestamp(up{job=\"card-issuer\"})").await;
            for sample in scrapes.unwrap_or_default() {
                let at: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
                if at > since {
                    seen.insert(at.to_bits());
                }
            }
            self.pause_until(deadline, "Prometheus scrapes the worker")
                .await;
        }
    }

    /// An instant query: its result vector, or Prometheus's error.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = format!(
            "http://{}/api/v1/query?query={}",
            self.prometheus_addr,
            utf8_percent_encode(expr, NON_ALPHANUMERIC)
        );
        let (_, body) = self.get(&url).await.map_err(|error| error.to_string())?;
        let answer: Value = serde_json::from_str(&body).map_err(|error| error.to_string())?;
        if answer["status"] != "success" {
            return Err(format!("{}: {}", answer["errorType"], answer["error"]));
        }
        match &answer["data"]["result"] {
            Value::Array(samples) => Ok(samples.clone()),
            // A scalar or a string: one value.
            other => Ok(vec![other.clone()]),
        }
    }

    /// Each alerting rule's health, once Prometheus has evaluated them all.
    async fn evaluated_rules(&self) -> BTreeMap<String, String> {
        let url = format!("http://{}/api/v1/rules?type=alert", self.prometheus_addr);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok((200, body)) = self.get(&url).await
                && let Some(rules) = rule_health(&serde_json::from_str(&body).unwrap())
            {
                return rules;
            }
            self.pause_until(deadline, "Prometheus evaluates the alert rules")
                .await;
        }
    }

    /// The dashboard's Grafana variables replaced: every replica, this run's
    /// queue prefix, a one-minute rate window (scrapes are a second apart).
    fn with_dashboard_variables(&self, expr: &str) -> String {
        let replaced = expr
            .replace("$__rate_interval", "1m")
            .replace("${queue_prefix}", &self.prefix)
            .replace("$instance", ".*");
        assert!(
            !replaced.contains('$'),
            "a variable the test does not know: {expr}"
        );
        replaced
    }

    /// A short pause between polls; past `deadline`, a panic that says what
    /// did not happen, with the processes' last log lines.
    async fn pause_until(&self, deadline: Instant, what: &str) {
        if Instant::now() > deadline {
            panic!("timed out waiting until {what}\n{}", self.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn logs(&self) -> String {
        ["partner.log", "worker.log", "prometheus.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {name} (last lines)\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stack {
    /// Stops the processes and deletes what the worker declared, also when
    /// a check failed: from a thread of its own, since a destructor cannot
    /// await.
    fn drop(&mut self) {
        self.prometheus.stop();
        self.worker.stop();
        self.partner.stop();
        let topology = self.topology.clone();
        let broker = self.broker.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(delete_topology(&broker, &topology));
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Each alerting rule's health from `/api/v1/rules`, or `None` while some
/// rule has not been evaluated yet.
fn rule_health(answer: &Value) -> Option<BTreeMap<String, String>> {
    let groups = answer["data"]["groups"].as_array()?;
    let mut rules = BTreeMap::new();
    for group in groups {
        for rule in group["rules"].as_array()? {
            let evaluated = rule["lastEvaluation"]
                .as_str()
                .is_some_and(|at| !at.starts_with("0001-"));
            if !evaluated {
                return None;
            }
            let name = rule["name"].as_str()?.to_owned();
            rules.insert(name, rule["health"].as_str()?.to_owned());
        }
    }
    (!rules.is_empty()).then_some(rules)
}

async fn delete_topology(broker: &str, topology: &Topology) {
    let Ok(connection) = Connection::connect(broker, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let mut queues = vec![
        topology.command_queue.clone(),
        topology.status_queue.clone(),
        topology.dead_letter_queue.clone(),
    ];
    queues.extend(
        topology
            .delays
            .iter()
            .map(|delay| topology.delay_queue(*delay)),
    );
    for queue in queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [
        &topology.commands_exchange,
        &topology.events_exchange,
        &topology.delay_exchange,
        &topology.resume_exchange,
    ] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "cleaned up".into()).await;
}

/// Short delays and deadline so every outcome arrives in seconds; a
/// calls-per-second cap low enough that calls wait for it; names of this
/// run's own on the broker.
fn worker_flags(
    prefix: &str,
    broker: &str,
    partner: SocketAddr,
    metrics: SocketAddr,
) -> Vec<String> {
    [
        ("--amqp-url", broker.to_owned()),
        ("--commands-exchange", format!("{prefix}.commands")),
        ("--events-exchange", format!("{prefix}.events")),
        ("--queue-prefix", prefix.to_owned()),
        ("--partner-url", format!("http://{partner}")),
        ("--partner-username", "promtest".into()),
        ("--partner-password", "promtest-password".into()),
        ("--partner-timeout", "1s".into()),
        ("--partner-calls-per-second", "20".into()),
        ("--breaker-open", "300ms".into()),
        ("--status-check-delays", "100ms,200ms".into()),
        ("--retry-delays", "200ms,400ms".into()),
        ("--deadline", "4s".into()),
        ("--concurrency", "8".into()),
        ("--metrics-addr", metrics.to_string()),
        ("--shutdown-grace", "2s".into()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

fn start_partner(dir: &Path, prefix: &str, listen: SocketAddr) -> Process {
    let scenarios: serde_json::Map<String, Value> = cases()
        .iter()
        .filter_map(|case| Some((request_id(prefix, case), case.script.clone()?)))
        .collect();
    let scenarios_file = dir.join("scenarios.json");
    std::fs::write(&scenarios_file, Value::Object(scenarios).to_string()).unwrap();
    Process::spawn(
        "card-issuer simulate-partner",
        Command::new(CARD_ISSUER)
            .arg("simulate-partner")
            .arg(format!("--listen={listen}"))
            .arg("--username=promtest")
            .arg("--password=promtest-password")
            .arg("--scenarios")
            .arg(&scenarios_file),
        &dir.join("partner.log"),
    )
}

/// Prometheus scraping the worker and the broker's plugin every second,
/// with deploy/prometheus/alerts.yml as its rules.
fn start_prometheus(binary: &Path, dir: &Path, worker: SocketAddr, listen: SocketAddr) -> Process {
    let alerts = deploy().join("prometheus/alerts.yml");
    // JSON is YAML, and easier to write here.
    let config = json!({
        "global": {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        },
        "rule_files": [alerts],
        "scrape_configs": [
            {
                "job_name": "card-issuer",
                "static_configs": [{"targets": [worker.to_string()]}],
            },
            {
                "job_name": "rabbitmq",
                "metrics_path": "/metrics/per-object",
                "static_configs": [{"targets": [RABBITMQ_PLUGIN]}],
            },
        ],
    });
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config.to_string()).unwrap();
    Process::spawn(
        "prometheus",
        Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn"),
        &dir.join("prometheus.log"),
    )
}

/// A child process whose output goes to a log file, killed when dropped.
struct Process {
    name: &'static str,
    child: Option<Child>,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Self {
            name,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.is_some() {
            eprintln!("stopping {}", self.name);
        }
        self.stop();
    }
}

// ---- small helpers

/// The broker of the tests: CARD_ISSUER_TEST_AMQP_URL, else the local one,
/// which must answer.
fn broker_url() -> String {
    if let Ok(url) = std::env::var("CARD_ISSUER_TEST_AMQP_URL") {
        return url;
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 5672));
    assert!(
        TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_ok(),
        "no RabbitMQ on 127.0.0.1:5672: run scripts/ensure-broker, or set \
         CARD_ISSUER_TEST_AMQP_URL"
    );
    LOCAL_BROKER.to_owned()
}

/// A loopback address with a port nothing listens on now.
fn free_loopback_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
