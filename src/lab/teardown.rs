//! Deleting what a run declared on the broker: the workers' queues and
//! exchanges (the same names the worker derives from its settings) and the
//! lab's own collector queue. Messages still in a queue are counted first,
//! since a parked or stranded message is part of the result.

use std::time::{Duration, Instant};

use lapin::Connection;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

use crate::broker::{BrokerError, Topology, connect};
use crate::secret::Secret;

/// How long teardown waits for the broker, which may be starting again.
const CONNECT_LIMIT: Duration = Duration::from_secs(60);

/// The names a run declared.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    /// Queues to delete.
    pub queues: Vec<String>,
    /// Exchanges to delete.
    pub exchanges: Vec<String>,
}

/// What deleting found.
#[derive(Debug, Default)]
pub struct TeardownReport {
    /// Queues that still held messages, with how many.
    pub leftovers: Vec<(String, u32)>,
    /// Names that could not be deleted, with why.
    pub failures: Vec<(String, String)>,
}

impl Declared {
    /// Everything the worker declares for `topology`, which must be built
    /// from the same settings the worker was given.
    pub fn worker(topology: &Topology) -> Self {
        let mut queues = vec![
            topology.command_queue.clone(),
            topology.status_queue.clone(),
            topology.dead_letter_queue.clone(),
        ];
        queues.extend(topology.delays.iter().map(|d| topology.delay_queue(*d)));
        let exchanges = vec![
            topology.commands_exchange.clone(),
            topology.events_exchange.clone(),
            topology.delay_exchange.clone(),
            topology.resume_exchange.clone(),
        ];
        Self { queues, exchanges }
    }

    /// Adds a queue of the lab's own.
    pub fn with_queue(mut self, queue: &str) -> Self {
        self.queues.push(queue.to_owned());
        self
    }

    /// Deletes every queue and exchange, counting messages left behind.
    /// Deleting a name that does not exist succeeds, so a run that failed
    /// early cleans up the same way.
    pub async fn delete(&self, url: &Secret<String>) -> Result<TeardownReport, BrokerError> {
        let connection = connect_patiently(url).await?;
        let mut report = TeardownReport::default();
        for queue in &self.queues {
            match delete_queue(&connection, queue).await {
                Ok(0) => {}
                Ok(count) => report.leftovers.push((queue.clone(), count)),
                Err(why) => report.failures.push((queue.clone(), why)),
            }
        }
        for exchange in &self.exchanges {
            if let Err(why) = delete_exchange(&connection, exchange).await {
                report.failures.push((exchange.clone(), why));
            }
        }
        let _ = connection.close(200, "lab run cleaned up".into()).await;
        Ok(report)
    }
}

async fn connect_patiently(url: &Secret<String>) -> Result<Connection, BrokerError> {
    let since = Instant::now();
    loop {
        match connect(url, None, "card-issuer-lab teardown").await {
            Ok(connection) => return Ok(connection),
            Err(error) if since.elapsed() > CONNECT_LIMIT => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Each deletion on a channel of its own: a failed one closes its channel.
async fn delete_queue(connection: &Connection, queue: &str) -> Result<u32, String> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let deleted = channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .map_err(|e| e.to_string());
    let _ = channel.close(200, "deleted".into()).await;
    deleted
}

async fn delete_exchange(connection: &Connection, exchange: &str) -> Result<(), String> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let deleted = channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .map_err(|e| e.to_string());
    let _ = channel.close(200, "deleted".into()).await;
    deleted
}
