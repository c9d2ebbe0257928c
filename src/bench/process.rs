//! The processes a run starts (simulators, workers, null workers) and what
//! `/proc` says of them and of the broker: CPU time and resident memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use super::BenchError;
use super::names::TrialNames;
use crate::proc_stat;

/// The simulator's credentials: its defaults, nothing secret.
const PARTNER_USERNAME: &str = "login";
const PARTNER_PASSWORD: &str = "p@ssw0rd";

/// How long a child may take to start or to stop.
const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A process this run started, stopped with SIGTERM by its id.
pub struct Child {
    name: String,
    process: tokio::process::Child,
    pid: u32,
    /// Where a worker serves `/metrics`.
    metrics_port: Option<u16>,
    /// Kept open so a child that prints again never meets a closed pipe.
    _stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl Child {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Seconds a worker spent in partner calls so far, and the calls, as
    /// its own `card_issuer_partner_call_duration_seconds` histogram says.
    pub async fn partner_call_seconds(&self) -> Option<(f64, f64)> {
        let port = self.metrics_port?;
        let url = format!("http://127.0.0.1:{port}/metrics");
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        let total = |suffix: &str| -> f64 {
            let name = format!("card_issuer_partner_call_duration_seconds_{suffix}{{");
            text.lines()
                .filter(|line| line.starts_with(&name) && !line.contains("products"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Some((total("sum"), total("count")))
    }

    /// Asks it to stop (SIGTERM) and waits; kills it if it will not.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .map_err(BenchError::io(format!("signal {}", self.name)))?;
        if !sent.success() {
            return Err(BenchError::Failed(format!("{} is already gone", self.name)));
        }
        match tokio::time::timeout(STOP_LIMIT, self.process.wait()).await {
            Ok(status) => {
                status.map_err(BenchError::io(format!("wait for {}", self.name)))?;
                Ok(())
            }
            Err(_) => {
                let _ = self.process.kill().await;
                Err(BenchError::Failed(format!(
                    "{} did not stop within {STOP_LIMIT:?}",
                    self.name
                )))
            }
        }
    }
}

/// Where the binaries are and where children write their logs.
#[derive(Clone)]
pub struct Launcher {
    /// The `card-issuer` binary.
    pub worker_bin: PathBuf,
    /// This binary, for `null-worker`.
    pub bench_bin: PathBuf,
    /// Children's standard error goes to files here.
    pub log_dir: PathBuf,
    /// The broker.
    pub amqp_url: String,
}

/// A running simulator and its base URL.
pub struct Simulator {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl Launcher {
    /// Starts `card-issuer simulate-partner` on a free loopback port.
    pub async fn simulator(&self, latency: Duration) -> Result<Simulator, BenchError> {
        let name = format!("simulator-{}ms", latency.as_millis());
        let mut command = Command::new(&self.worker_bin);
        command.args([
            "--log",
            "warn",
            "simulate-partner",
            "--listen",
            "127.0.0.1:0",
        ]);
        command
            .arg("--latency")
            .arg(format!("{}ms", latency.as_millis()));
        let (child, mut stdout) = self.spawn(&name, command)?;
        let line = first_line(&mut stdout, &name).await?;
        let base_url = line
            .rsplit(' ')
            .next()
            .filter(|url| url.starts_with("http://"))
            .ok_or_else(|| BenchError::Failed(format!("{name} printed `{line}`")))?
            .to_owned();
        Ok(Simulator {
            child: with_stdout(child, stdout),
            base_url,
        })
    }

    /// Starts `card-issuer run` for a trial; with `wait_ready`, returns once
    /// `/readyz` answers 200.
    pub async fn worker(
        &self,
        names: &TrialNames,
        partner_url: &str,
        concurrency: u16,
        wait_ready: bool,
    ) -> Result<Child, BenchError> {
        let name = format!("{}-worker", names.prefix);
        let metrics_port = free_port()?;
        let mut command = Command::new(&self.worker_bin);
        command.args(["--log", "warn", "run"]);
        command.arg("--amqp-url").arg(&self.amqp_url);
        command.arg("--queue-prefix").arg(&names.prefix);
        command
            .arg("--commands-exchange")
            .arg(names.commands_exchange());
        command
            .arg("--events-exchange")
            .arg(names.events_exchange());
        command.arg("--partner-url").arg(partner_url);
        command.args(["--status-check-delays", "0ms", "--retry-delays", "1s"]);
        command.args(["--partner-calls-per-second", "0"]);
        command.arg("--concurrency").arg(concurrency.to_string());
        command
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"));
        command.env("CARD_ISSUER_PARTNER_USERNAME", PARTNER_USERNAME);
        command.env("CARD_ISSUER_PARTNER_PASSWORD", PARTNER_PASSWORD);
        let (child, stdout) = self.spawn(&name, command)?;
        let child = Child {
            metrics_port: Some(metrics_port),
            ..with_stdout(child, stdout)
        };
        if wait_ready {
            ready(metrics_port, &name).await?;
        }
        Ok(child)
    }

    /// Starts `card-issuer-bench null-worker` for a trial and waits until it
    /// consumes.
    pub async fn null_worker(
        &self,
        names: &TrialNames,
        concurrency: u16,
        call_latency: Duration,
    ) -> Result<Child, BenchError> {
        let name = format!("{}-null-worker", names.prefix);
        let mut command = Command::new(&self.bench_bin);
        command.arg("null-worker");
        command.arg("--amqp-url").arg(&self.amqp_url);
        command.arg("--queue-prefix").arg(&names.prefix);
        command.arg("--concurrency").arg(concurrency.to_string());
        command
            .arg("--call-latency")
            .arg(format!("{}ms", call_latency.as_millis()));
        let (child, mut stdout) = self.spawn(&name, command)?;
        let line = first_line(&mut stdout, &name).await?;
        if line != "ready" {
            return Err(BenchError::Failed(format!("{name} printed `{line}`")));
        }
        Ok(with_stdout(child, stdout))
    }

    fn spawn(
        &self,
        name: &str,
        mut command: Command,
    ) -> Result<(Child, Lines<BufReader<ChildStdout>>), BenchError> {
        let log_path = self.log_dir.join(format!("{name}.log"));
        let log = File::create(&log_path)
            .map_err(BenchError::io(format!("create {}", log_path.display())))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        let mut process = command
            .spawn()
            .map_err(BenchError::io(format!("start {name}")))?;
        let pid = process
            .id()
            .ok_or_else(|| BenchError::Failed(format!("{name} exited at once")))?;
        let stdout = process.stdout.take().expect("standard output is piped");
        let child = Child {
            name: name.to_owned(),
            process,
            pid,
            metrics_port: None,
            _stdout: None,
        };
        Ok((child, BufReader::new(stdout).lines()))
    }
}

fn with_stdout(child: Child, stdout: Lines<BufReader<ChildStdout>>) -> Child {
    Child {
        _stdout: Some(stdout),
        ..child
    }
}

async fn first_line(
    stdout: &mut Lines<BufReader<ChildStdout>>,
    name: &str,
) -> Result<String, BenchError> {
    let line = tokio::time::timeout(START_LIMIT, stdout.next_line())
        .await
        .map_err(|_| BenchError::Failed(format!("{name} printed nothing in time")))?
        .map_err(BenchError::io(format!("read {name}'s output")))?;
    line.ok_or_else(|| BenchError::Failed(format!("{name} exited; see its log")))
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(BenchError::io("find a free loopback port"))?;
    let port = listener
        .local_addr()
        .map_err(BenchError::io("find a free loopback port"))?
        .port();
    Ok(port)
}

async fn ready(metrics_port: u16, name: &str) -> Result<(), BenchError> {
    let url = format!("http://127.0.0.1:{metrics_port}/readyz");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < START_LIMIT {
        let answer = http.get(&url).send().await;
        if answer.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(BenchError::Failed(format!(
        "{name} was not ready within {START_LIMIT:?}; see its log"
    )))
}

/// Seconds of CPU (user and system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64, BenchError> {
    proc_stat::cpu_seconds(pid)
        .ok_or_else(|| BenchError::Failed(format!("/proc/{pid}/stat cannot be read")))
}

/// A process's resident set, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(BenchError::io(format!("read {path}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| BenchError::Failed(format!("{path} has no VmRSS")))
}

pub use crate::proc_stat::{all_cpu_seconds, process_name};

/// CPU time of the whole machine so far, in clock ticks: (busy, all).
pub fn machine_ticks() -> Result<(u64, u64), BenchError> {
    proc_stat::machine_ticks().ok_or_else(|| BenchError::Failed("/proc/stat does not parse".into()))
}

/// The process that listens on loopback `port` (the broker's `beam.smp`),
/// found through the listening socket's inode.
pub fn listener_pid(port: u16) -> Option<u32> {
    let inode = listening_inode(Path::new("/proc/net/tcp"), port)
        .or_else(|| listening_inode(Path::new("/proc/net/tcp6"), port))?;
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|link| *link.as_os_str() == *wanted)
                })
                .then_some(pid)
        })
}

fn listening_inode(table: &Path, port: u16) -> Option<String> {
    const LISTEN: &str = "0A";
    let text = std::fs::read_to_string(table).ok()?;
    let port_hex = format!(":{port:04X}");
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(3) == Some(&LISTEN);
        let on_port = fields
            .get(1)
            .is_some_and(|local| local.ends_with(&port_hex));
        (listening && on_port).then(|| fields.get(9).map(|inode| (*inode).to_owned()))?
    })
}
