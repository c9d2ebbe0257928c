//! The partner simulator as a process of its own (`card-issuer
//! simulate-partner`), stateful, with the run's fault rules, on a free
//! loopback port.

use std::path::Path;
use std::time::Duration;

use super::partner_stats::{PartnerStats, StatsError};
use super::process::{ChildProcess, ProcessError, clean_command, free_loopback_port};
use crate::secret::Secret;
use crate::simulator::FaultRule;

/// How long the simulator may take to answer after it starts.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The basic-auth user the run's simulator expects.
pub const PARTNER_USERNAME: &str = "card-issuer-lab";

/// A running simulator.
pub struct SimulatorProcess {
    process: ChildProcess,
    base_url: String,
    http: reqwest::Client,
}

/// How to start one.
pub struct SimulatorLaunch<'a> {
    /// The `card-issuer` binary.
    pub program: &'a Path,
    /// Its fault rules.
    pub rules: &'a [FaultRule],
    /// Seeds the fault decisions, so a rerun faults the same calls.
    pub seed: u64,
    /// The password it expects.
    pub password: &'a Secret<String>,
    /// Where its output goes.
    pub log: &'a Path,
    /// Its log filter; by default every request at debug level, the
    /// evidence when a request goes wrong.
    pub log_filter: Option<&'a str>,
}

impl SimulatorProcess {
    /// Starts the simulator and waits until it answers.
    pub async fn start(launch: SimulatorLaunch<'_>) -> Result<Self, ProcessError> {
        let port = free_loopback_port().map_err(|source| ProcessError::Spawn {
            program: launch.program.to_owned(),
            source,
        })?;
        let base_url = format!("http://127.0.0.1:{port}");
        let mut command = clean_command(launch.program);
        // Request ids and codes at debug level are the evidence when a
        // request goes wrong; the simulator logs no personal data.
        command
            .args([
                "--log",
                launch
                    .log_filter
                    .unwrap_or("info,card_issuer::simulator=debug"),
            ])
            .arg("simulate-partner")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--username", PARTNER_USERNAME])
            .args(["--seed", &launch.seed.to_string()])
            .env("CARD_ISSUER_SIMULATOR_PASSWORD", launch.password.expose());
        for rule in launch.rules {
            command.args(["--rule", &rule.to_string()]);
        }
        let mut process = ChildProcess::spawn("partner simulator", command, launch.log)?;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        let health = format!("{base_url}/_health");
        process
            .wait_until_answering(&http, &health, START_LIMIT)
            .await?;
        Ok(Self {
            process,
            base_url,
            http,
        })
    }

    /// `http://127.0.0.1:PORT`, the partner URL for workers.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// What it counted: totals and every request's calls and card.
    pub async fn stats(&self) -> Result<PartnerStats, StatsError> {
        PartnerStats::fetch(&self.http, &format!("{}/_stats", self.base_url)).await
    }

    /// Stops it.
    pub async fn stop(&mut self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}
