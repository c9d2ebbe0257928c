//! Names on the broker, unique to one run and one trial, so a run never
//! touches a real worker's queues nor an earlier trial's leftovers.

use std::time::{Duration, SystemTime};

use crate::broker::Topology;
use crate::secret::Secret;
use crate::settings::{BrokerSettings, QueueType};

/// The only retry delay the benchmark's workers are given: no trial should
/// retry, but the worker needs one, and its delay queue is declared (and
/// deleted) like any other.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Identifies one benchmark run: its start time and process id.
pub fn run_id() -> String {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "card-issuer-bench-{}-{}",
        since.as_secs(),
        std::process::id()
    )
}

/// The names of one trial: its queue prefix and its two exchanges.
#[derive(Clone, Debug)]
pub struct TrialNames {
    /// The worker's `--queue-prefix`.
    pub prefix: String,
}

impl TrialNames {
    /// The names of trial number `trial` of run `run_id`.
    pub fn new(run_id: &str, trial: usize) -> Self {
        Self {
            prefix: format!("{run_id}-{trial}"),
        }
    }

    /// Where the trial's commands are published.
    pub fn commands_exchange(&self) -> String {
        format!("{}.commands", self.prefix)
    }

    /// Where the trial's events are published.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// Broker settings as the worker reads them from its flags for this
    /// trial: quorum queues, a 10 s confirm timeout.
    pub fn broker_settings(&self, amqp_url: &str) -> BrokerSettings {
        BrokerSettings {
            urls: vec![Secret::new(amqp_url.to_owned())],
            ca_file: None,
            commands_exchange: self.commands_exchange(),
            events_exchange: self.events_exchange(),
            queue_prefix: self.prefix.clone(),
            queue_type: QueueType::Quorum,
            publish_timeout: Duration::from_secs(10),
            events_queue: None,
        }
    }

    /// The topology the worker declares for this trial, with the delays its
    /// flags give (`--status-check-delays 0ms --retry-delays 1s`).
    pub fn topology(&self, amqp_url: &str) -> Topology {
        Topology::new(&self.broker_settings(amqp_url), vec![RETRY_DELAY])
    }
}
