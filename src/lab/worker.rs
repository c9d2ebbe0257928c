//! The worker as a real process (`card-issuer run`), as operators run it:
//! started with the run's flags, killed, started again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::names::RunNames;
use super::partner::PARTNER_USERNAME;
use super::process::{ChildProcess, ProcessError, clean_command, free_loopback_port};
use crate::secret::Secret;
use crate::settings::Settings;

/// How long a starting worker may take to consume: it connects, declares
/// its topology and loads the product list first.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// How long a stopping worker may take; its own grace period is shorter.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// How every worker of a run is tuned: the flags a run's command line
/// passes on to `card-issuer run`.
#[derive(Args, Clone, Debug)]
pub struct WorkerTuning {
    /// The `card-issuer` binary to run as worker and simulator; by default
    /// the one next to this binary.
    #[arg(long, value_name = "PATH")]
    pub worker_bin: Option<PathBuf>,

    /// Each worker's partner timeout; shorter than --fault-hold, so that
    /// held replies become timeouts.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub partner_timeout: Duration,

    /// Each worker's waits before status checks.
    #[arg(long, default_value = "200ms,500ms")]
    pub status_check_delays: String,

    /// Each worker's waits before retries.
    #[arg(long, default_value = "200ms,1s")]
    pub retry_delays: String,

    /// Each worker's cap on partner calls a second (0: none).
    #[arg(long, default_value_t = 200)]
    pub partner_calls_per_second: u32,

    /// Another flag for every worker, as `--worker-arg=--concurrency=16`;
    /// repeatable.
    #[arg(long = "worker-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub worker_args: Vec<String>,

    /// The workers' log filter.
    #[arg(long, default_value = "info,card_issuer=debug")]
    pub worker_log: String,
}

impl WorkerTuning {
    /// `run`'s flags for every worker of the run, without secrets and
    /// without `--metrics-addr`, which each start picks anew.
    pub fn flags(&self, names: &RunNames, partner_url: &str) -> Vec<String> {
        let flags = [
            ("--commands-exchange", names.commands_exchange.clone()),
            ("--events-exchange", names.events_exchange.clone()),
            ("--queue-prefix", names.queue_prefix.clone()),
            ("--partner-url", partner_url.to_owned()),
            ("--partner-username", PARTNER_USERNAME.to_owned()),
            (
                "--partner-timeout",
                humantime::format_duration(self.partner_timeout).to_string(),
            ),
            ("--status-check-delays", self.status_check_delays.clone()),
            ("--retry-delays", self.retry_delays.clone()),
            (
                "--partner-calls-per-second",
                self.partner_calls_per_second.to_string(),
            ),
            ("--shutdown-grace", "5s".to_owned()),
        ];
        flags
            .into_iter()
            .flat_map(|(flag, value)| [flag.to_owned(), value])
            .chain(self.worker_args.iter().cloned())
            .collect()
    }

    /// The settings a worker started with these flags will have, read by
    /// the worker's own code, so the lab's idea of its names cannot drift
    /// from it. The partner URL is only known once the simulator listens;
    /// any will do for working out names.
    pub fn settings(
        &self,
        names: &RunNames,
        amqp_url: &Secret<String>,
    ) -> Result<Settings, String> {
        let mut flags = self.flags(names, "http://127.0.0.1:1");
        flags.extend(["--amqp-url".to_owned(), amqp_url.expose().clone()]);
        let mut settings = Settings::from_flags(&flags)
            .map_err(|error| format!("the worker would refuse its flags: {error}"))?;
        settings.broker.publish_timeout = Duration::from_secs(5);
        Ok(settings)
    }

    /// The worker binary: as given, or `card-issuer` next to this binary.
    pub fn program(&self) -> Result<PathBuf, String> {
        let program = match &self.worker_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|error| format!("cannot tell where this binary is: {error}"))?
                .parent()
                .unwrap_or(Path::new("."))
                .join("card-issuer"),
        };
        if !program.is_file() {
            return Err(format!(
                "no worker binary at {}; build it (`cargo build --release`) or pass --worker-bin",
                program.display()
            ));
        }
        Ok(program)
    }
}

/// What every worker of a run is started with.
pub struct WorkerLaunch {
    /// The `card-issuer` binary.
    pub program: PathBuf,
    /// `run`'s flags, the same for every start; no secrets (they show in
    /// `ps`).
    pub flags: Vec<String>,
    /// The broker URL(s), which may hold a password: given in the
    /// environment.
    pub amqp_url: Secret<String>,
    /// The partner's basic-auth password, also in the environment.
    pub partner_password: Secret<String>,
    /// The worker's log filter.
    pub log_filter: String,
    /// Where the logs go, `worker-<n>.log` each.
    pub log_dir: PathBuf,
}

/// One started worker.
pub struct WorkerProcess {
    process: ChildProcess,
    /// Which start of the run this is, from 1.
    pub ordinal: u32,
    readyz: String,
    metrics: String,
}

impl WorkerLaunch {
    /// Starts worker number `ordinal`, listening for probes on a free port.
    pub fn start(&self, ordinal: u32) -> Result<WorkerProcess, ProcessError> {
        let port = free_loopback_port().map_err(|source| ProcessError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let mut command = clean_command(&self.program);
        command
            .args(["--log", &self.log_filter])
            .arg("run")
            .args(&self.flags)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("CARD_ISSUER_AMQP_URL", self.amqp_url.expose())
            .env(
                "CARD_ISSUER_PARTNER_PASSWORD",
                self.partner_password.expose(),
            );
        let log = self.log_dir.join(format!("worker-{ordinal}.log"));
        let process = ChildProcess::spawn(&format!("worker {ordinal}"), command, &log)?;
        Ok(WorkerProcess {
            process,
            ordinal,
            readyz: format!("http://127.0.0.1:{port}/readyz"),
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        })
    }

    /// The glob that names every worker log of the run.
    pub fn logs(&self) -> PathBuf {
        self.log_dir.join("worker-*.log")
    }
}

impl WorkerProcess {
    /// Waits until the worker consumes (its `/readyz` answers 200).
    pub async fn wait_until_ready(&mut self, http: &reqwest::Client) -> Result<(), ProcessError> {
        let url = self.readyz.clone();
        self.process
            .wait_until_answering(http, &url, READY_LIMIT)
            .await
    }

    /// Whether it consumes right now (its `/readyz` answers 200).
    pub async fn is_ready(&self, http: &reqwest::Client) -> bool {
        let answer = http.get(&self.readyz).send().await;
        answer.is_ok_and(|response| response.status().is_success())
    }

    /// Broker sessions it lost and started again, on the next broker of its
    /// list, as its `/metrics` counts them; `None` if it does not answer.
    pub async fn broker_reconnects(&self, http: &reqwest::Client) -> Option<u64> {
        let page = http
            .get(&self.metrics)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        counter(&page, crate::metrics::BROKER_RECONNECTS)
    }

    /// Kills it with SIGKILL, as a crash or an OOM kill would.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Stops it with SIGTERM and its grace period.
    pub async fn stop(&mut self) {
        self.process.stop(STOP_LIMIT).await;
    }

    /// Whether it ended without being told to, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// Its log.
    pub fn log(&self) -> &Path {
        self.process.log()
    }
}

/// The value of an unlabelled counter on a Prometheus text page.
fn counter(page: &str, name: &str) -> Option<u64> {
    page.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        if series != name {
            return None;
        }
        value.trim().parse::<f64>().ok().map(|count| count as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_read_by_its_exact_name() {
        let page = "# TYPE card_issuer_broker_reconnects_total counter\n\
                    card_issuer_broker_reconnects_total_extra 9\n\
                    card_issuer_broker_reconnects_total 3\n";

        assert_eq!(
            counter(page, "card_issuer_broker_reconnects_total"),
            Some(3)
        );
        assert_eq!(counter(page, "card_issuer_commands_received_total"), None);
    }
}
