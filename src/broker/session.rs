//! One broker session: a connection to consume on and another to publish
//! on, and a signal that fires when either is lost.
//!
//! The connections are separate so that a broker that blocks publishers
//! (a memory or disk alarm) cannot also stall acknowledgements and the flow
//! of deliveries.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer, Event};
use tokio_util::sync::CancellationToken;

use super::{BrokerError, Publisher, Topology, connect};
use crate::secret::Secret;
use crate::settings::BrokerSettings;

/// Two live connections, the topology declared, and a shared publisher.
pub struct Session {
    consuming: Connection,
    publishing: Connection,
    /// The confirm-mode publisher every handler of this session uses.
    pub publisher: Arc<Publisher>,
    /// Fires when either connection fails; handlers of this session then
    /// stop, as their deliveries go back to the queue with the connection.
    pub lost: CancellationToken,
}

impl Session {
    /// Connects twice to `url`, declares the topology and opens the publisher.
    ///
    /// Known shortcoming: only connecting has a time limit. On a cluster
    /// with a member that hangs without going away, set-up was seen to wait
    /// until that member answered again (most likely the declarations wait
    /// for the cluster to declare it down, `net_ticktime`, 60 s by
    /// default), and nothing is logged meanwhile. A limit here would move to the next node, where the same
    /// declaration waits the same way (README, "A hung node").
    pub async fn open(
        settings: &BrokerSettings,
        url: &Secret<String>,
        topology: &Topology,
        name: &str,
    ) -> Result<Self, BrokerError> {
        let ca_file = settings.ca_file.as_deref();
        let consuming = connect(url, ca_file, &format!("{name} consumer")).await?;
        let publishing = connect(url, ca_file, &format!("{name} publisher")).await?;
        let lost = CancellationToken::new();
        watch(&consuming, lost.clone(), "consumer");
        watch(&publishing, lost.clone(), "publisher");

        let setup = publishing
            .create_channel()
            .await
            .map_err(|source| BrokerError::Setup {
                what: "open a channel to declare the topology".into(),
                source,
            })?;
        topology.declare(&setup).await?;
        let _ = setup.close(200, "topology declared".into()).await;

        let publisher = Arc::new(Publisher::open(&publishing, settings.publish_timeout).await?);
        Ok(Self {
            consuming,
            publishing,
            publisher,
            lost,
        })
    }

    /// Starts consuming `queue` on a channel of its own, with `prefetch`
    /// unacknowledged deliveries at most.
    pub async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        tag: &str,
    ) -> Result<Consuming, BrokerError> {
        let setup = |what: String| move |source| BrokerError::Setup { what, source };
        let channel = self
            .consuming
            .create_channel()
            .await
            .map_err(setup(format!("open a channel to consume {queue}")))?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(setup(format!("set the prefetch for {queue}")))?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(setup(format!("consume {queue}")))?;
        Ok(Consuming {
            channel,
            consumer,
            tag: tag.to_owned(),
        })
    }

    /// Closes both connections. Unacknowledged deliveries go back to their
    /// queues, not counted as attempts of ours.
    pub async fn close(self) {
        self.lost.cancel();
        // A broken connection may never answer the close; give up on it.
        let limit = Duration::from_secs(2);
        for connection in [&self.consuming, &self.publishing] {
            let closing = connection.close(200, "card-issuer stopping".into());
            let _ = tokio::time::timeout(limit, closing).await;
        }
    }
}

/// A consumer and the channel it lives on.
pub struct Consuming {
    channel: Channel,
    /// The deliveries.
    pub consumer: Consumer,
    tag: String,
}

impl Consuming {
    /// Asks the broker to send no more deliveries, keeping the channel open:
    /// deliveries already taken can still be acknowledged. (Dropping the
    /// consumer would close its channel, and the broker would requeue them
    /// while their handlers finish, so the work would be done twice.)
    pub async fn stop_taking(&self) {
        let cancel = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default());
        if let Err(error) = tokio::time::timeout(Duration::from_secs(2), cancel).await {
            tracing::warn!(%error, "the broker did not confirm the consumer's cancel in time");
        }
    }
}

/// Fires `lost` when the connection reports an error, and logs blocking.
fn watch(connection: &Connection, lost: CancellationToken, role: &'static str) {
    let mut events = connection.events_listener();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Event::Error(error)) => {
                        tracing::warn!(role, %error, "broker connection lost");
                        lost.cancel();
                        return;
                    }
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(role, %reason, "the broker blocks this connection");
                    }
                    Some(Event::ConnectionUnblocked) => {
                        tracing::info!(role, "the broker unblocked this connection");
                    }
                    Some(_) => {}
                    None => {
                        lost.cancel();
                        return;
                    }
                },
                () = lost.cancelled() => return,
            }
        }
    });
}
