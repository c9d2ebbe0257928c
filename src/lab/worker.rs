//! The worker as a real process (`card-issuer run`), as operators run it:
//! started with the run's flags, killed, started again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{ChildProcess, ProcessError, clean_command, free_loopback_port};
use crate::secret::Secret;

/// How long a starting worker may take to consume: it connects, declares
/// its topology and loads the product list first.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// How long a stopping worker may take; its own grace period is shorter.
const STOP_LIMIT: Duration = Duration::from_secs(15);

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
