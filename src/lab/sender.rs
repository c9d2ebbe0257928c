//! Publishing a run's commands as an upstream service would: persistent,
//! confirmed one by one, and published again until the broker confirms,
//! reconnecting when the broker restarts under it.
//!
//! A publish that failed without a confirm may still have reached the queue,
//! so publishing again can hand the worker the same command twice. That is
//! what real upstreams do, and the worker must take it in its stride; the
//! retries are counted so the report shows it.

use std::time::{Duration, Instant};

use crate::broker::{BrokerError, PublishError};
use crate::settings::BrokerSettings;
use crate::upstream::Upstream;

/// The pause after a failed publish or connection, before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How long closing a failed connection may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// A command could not be published; the run stops.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The broker did not take the command for longer than the run waits.
    #[error("the broker took no command for {waited:?}; last error: {last}")]
    BrokerGone {
        /// How long the sender kept trying.
        waited: Duration,
        /// The last failure, with its causes.
        last: String,
    },
}

/// A reconnecting publisher of commands.
pub struct CommandSender {
    settings: BrokerSettings,
    upstream: Option<Upstream>,
    patience: Duration,
    connections: u32,
}

/// What one send took.
pub struct Sent {
    /// Publishes after the first one.
    pub retries: u32,
}

impl CommandSender {
    /// A sender for the commands exchange of `settings`, giving up after
    /// `patience` without a confirmed publish.
    pub fn new(settings: BrokerSettings, patience: Duration) -> Self {
        Self {
            settings,
            upstream: None,
            patience,
            connections: 0,
        }
    }

    /// Publishes one command body until the broker confirms it.
    pub async fn send(&mut self, body: &[u8]) -> Result<Sent, SendError> {
        let since = Instant::now();
        let mut retries = 0;
        loop {
            let failure = match self.publish_once(body).await {
                Ok(()) => return Ok(Sent { retries }),
                Err(failure) => failure,
            };
            if since.elapsed() > self.patience {
                return Err(SendError::BrokerGone {
                    waited: since.elapsed(),
                    last: failure,
                });
            }
            retries += 1;
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Times the sender had to connect again after its first connection.
    pub fn reconnects(&self) -> u32 {
        self.connections.saturating_sub(1)
    }

    /// Closes the connection, giving up after a moment on a broker that no
    /// longer answers.
    pub async fn close(mut self) {
        if let Some(upstream) = self.upstream.take() {
            let _ = tokio::time::timeout(CLOSE_LIMIT, upstream.close()).await;
        }
    }

    /// One attempt. After a failure other than "unroutable" the connection
    /// may be dead, so the next attempt starts on a fresh one.
    async fn publish_once(&mut self, body: &[u8]) -> Result<(), String> {
        let upstream = match self.upstream.take() {
            Some(upstream) => upstream,
            None => self.connect().await.map_err(|e| chain(&e))?,
        };
        match upstream.publish_command(body, None).await {
            Ok(()) => {
                self.upstream = Some(upstream);
                Ok(())
            }
            // The connection is fine; the command queue is not bound yet.
            Err(error @ PublishError::Unroutable { .. }) => {
                self.upstream = Some(upstream);
                Err(chain(&error))
            }
            Err(error) => {
                // Closing a connection the broker already dropped can wait
                // for a reply that never comes.
                let _ = tokio::time::timeout(CLOSE_LIMIT, upstream.close()).await;
                self.next_broker();
                Err(chain(&error))
            }
        }
    }

    async fn connect(&mut self) -> Result<Upstream, BrokerError> {
        let connected = Upstream::connect(&self.settings, "card-issuer-lab commands").await;
        let Ok(upstream) = connected else {
            self.next_broker();
            return connected;
        };
        self.connections += 1;
        Ok(upstream)
    }

    /// After a lost or refused connection, the next broker of the list
    /// (a cluster's next node) is tried first.
    fn next_broker(&mut self) {
        self.settings.urls.rotate_left(1);
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    crate::worker::error_chain(error)
}
