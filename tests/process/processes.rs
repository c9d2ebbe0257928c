//! Starting the partner simulator and the worker as processes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use card_issuer::secret::Secret;
use card_issuer::settings::BrokerSettings;
use card_issuer::upstream::{Events, Upstream};
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_card-issuer");

/// A simulator process.
pub struct Partner {
    child: Child,
    pub url: String,
}

impl Partner {
    /// Starts `card-issuer simulate-partner` with extra flags.
    pub fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["simulate-partner", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the simulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("it prints its address")
            .to_owned();
        Self { child, url }
    }

    /// What the simulator counted for one request.
    pub async fn stats(&self, request_id: &str) -> Value {
        card_issuer::tls::install_crypto_provider();
        let all: Value = reqwest::get(format!("{}/_stats", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all["requests"][request_id].clone()
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A worker process with names of its own and its log in a file.
pub struct Worker {
    child: Option<Child>,
    pub log: PathBuf,
    pub prefix: String,
    pub metrics: SocketAddr,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Worker {
    /// The environment a test worker runs with: the simulator, fast delays.
    pub fn env_for(partner: &Partner, prefix: &str) -> Vec<(String, String)> {
        [
            ("CARD_ISSUER_AMQP_URL", crate::broker::url()),
            (
                "CARD_ISSUER_COMMANDS_EXCHANGE",
                format!("{prefix}.commands"),
            ),
            ("CARD_ISSUER_EVENTS_EXCHANGE", format!("{prefix}.events")),
            ("CARD_ISSUER_QUEUE_PREFIX", prefix.to_owned()),
            ("CARD_ISSUER_PARTNER_URL", partner.url.clone()),
            ("CARD_ISSUER_PARTNER_USERNAME", "login".into()),
            ("CARD_ISSUER_PARTNER_PASSWORD", "p@ssw0rd".into()),
            ("CARD_ISSUER_PARTNER_TIMEOUT", "2s".into()),
            ("CARD_ISSUER_PARTNER_CALLS_PER_SECOND", "0".into()),
            ("CARD_ISSUER_STATUS_CHECK_DELAYS", "200ms,300ms".into()),
            ("CARD_ISSUER_RETRY_DELAYS", "200ms,400ms".into()),
            ("CARD_ISSUER_DEADLINE", "30s".into()),
            ("CARD_ISSUER_SHUTDOWN_GRACE", "10s".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// A fresh prefix for a test's broker names.
    pub fn prefix(test: &str) -> String {
        format!(
            "proc-{test}-{}-{:04x}",
            std::process::id(),
            fastrand::u16(..)
        )
    }

    /// Starts `card-issuer run` and waits until /readyz answers 200.
    pub async fn start(prefix: &str, env: Vec<(String, String)>, args: &[&str]) -> Self {
        let log = std::env::temp_dir().join(format!("{prefix}.log"));
        let metrics = free_port();
        let mut worker = Self {
            child: None,
            log,
            prefix: prefix.to_owned(),
            metrics,
            env,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        worker.restart().await;
        worker
    }

    /// Starts the process again, appending to the same log.
    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .env("CARD_ISSUER_METRICS_ADDR", self.metrics.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the worker starts");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        card_issuer::tls::install_crypto_provider();
        let url = format!("http://{}/readyz", self.metrics);
        let since = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the worker exited with {status}:\n{}", self.log_text());
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "not ready:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, patience: Duration) -> Option<i32> {
        let since = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(
                since.elapsed() < patience,
                "the worker did not exit within {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the worker logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Broker settings for a client of this worker's names.
    pub fn broker(&self) -> BrokerSettings {
        let flags = [
            "--amqp-url".to_owned(),
            crate::broker::url(),
            "--commands-exchange".to_owned(),
            format!("{}.commands", self.prefix),
            "--events-exchange".to_owned(),
            format!("{}.events", self.prefix),
        ];
        let mut settings = card_issuer::settings::Settings::from_flags(&flags)
            .unwrap()
            .broker;
        settings.urls = vec![Secret::new(crate::broker::url())];
        settings
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let flags: Vec<String> = self
            .env
            .iter()
            .filter(|(name, _)| name != "CARD_ISSUER_AMQP_URL")
            .flat_map(|(name, value)| {
                let flag = name
                    .trim_start_matches("CARD_ISSUER_")
                    .to_lowercase()
                    .replace('_', "-");
                [format!("--{flag}"), value.clone()]
            })
            .collect();
        let Ok(settings) = card_issuer::settings::Settings::from_flags(&flags) else {
            return;
        };
        let topology = card_issuer::broker::Topology::new(
            &settings.broker,
            card_issuer::issuance::Plan::new(&settings.issuance).all_delays(),
        );
        crate::broker::delete_in_background(topology);
    }
}

/// An upstream client subscribed to a worker's events.
pub async fn upstream(worker: &Worker) -> (Upstream, Events) {
    let settings = worker.broker();
    let upstream = Upstream::connect(&settings, "process test").await.unwrap();
    let events = upstream.subscribe(&settings.events_exchange).await.unwrap();
    (upstream, events)
}

/// A well-formed command with a customer of its own.
pub fn command(prefix: &str, n: usize) -> Value {
    let person = fastrand::u32(..1_000_000);
    json!({
        "requestId": format!("{prefix}-{n}"),
        "phoneNumber": format!("+998907{person:06}"),
        "productId": 1,
        "pin": format!("30101990{person:06}"),
    })
}

/// Collects events until every request in `pending` has one, or `patience`
/// passes; returns request id and routing key of each.
pub async fn collect(
    events: &mut Events,
    pending: &[String],
    patience: Duration,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    let since = Instant::now();
    while pending.iter().any(|id| !seen.contains_key(id)) && since.elapsed() < patience {
        if let Some(event) = events.next(Duration::from_millis(500)).await
            && let Some(id) = event.request_id()
        {
            seen.entry(id.to_owned())
                .or_default()
                .push(event.routing_key.clone());
        }
    }
    seen
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
