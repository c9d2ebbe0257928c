//! Events gathered in a durable quorum queue of the run's own, bound to the
//! run's events exchange, so that no event is missed while the broker
//! restarts or the lab's own connection is lost: the queue keeps them, and
//! the collector reconnects and reads on.
//!
//! Each delivery is acknowledged once it is handed on. A delivery whose
//! acknowledgement was lost with the connection comes again marked
//! `redelivered`; the ledger tells those apart from events the worker
//! published twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::{BrokerError, connect};
use crate::secret::Secret;

/// The pause before reconnecting after the connection is lost.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Deliveries the broker may push before the collector acknowledges.
const PREFETCH: u16 = 500;

/// One event as the collector received it.
#[derive(Clone, Debug)]
pub struct ReceivedEvent {
    /// `card.issued` or `card.failed`.
    pub routing_key: String,
    /// The `message_id` property.
    pub message_id: Option<String>,
    /// The body as published; it may hold a full card number, so it is
    /// compared, never printed.
    pub body: Vec<u8>,
    /// Whether the broker delivered it before (to this collector).
    pub redelivered: bool,
}

/// Where to collect from.
#[derive(Clone)]
pub struct CollectorSource {
    /// The brokers (nodes of one cluster, or one broker), tried in turn:
    /// each lost connection moves on to the next.
    pub brokers: Vec<Secret<String>>,
    /// The events exchange to bind to.
    pub events_exchange: String,
    /// The collector's own queue.
    pub queue: String,
}

/// A running collector.
pub struct Collector {
    stop: CancellationToken,
    task: JoinHandle<()>,
    connections: Arc<AtomicU32>,
}

impl CollectorSource {
    /// Declares the events exchange (as the worker declares it), the queue
    /// and its binding; from then on every event is kept for the collector.
    pub async fn declare(&self) -> Result<(), BrokerError> {
        let connection = connect(&self.brokers[0], None, "card-issuer-lab collector setup").await?;
        let declared = self.declare_on(&connection).await;
        let _ = connection.close(200, "declared".into()).await;
        declared.map(drop)
    }

    async fn declare_on(&self, connection: &Connection) -> Result<Channel, BrokerError> {
        let setup = |what: String| move |source| BrokerError::Setup { what, source };
        let channel = connection
            .create_channel()
            .await
            .map_err(setup("open a channel".into()))?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                self.events_exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(setup(format!("declare exchange {}", self.events_exchange)))?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(self.queue.as_str().into(), durable, arguments)
            .await
            .map_err(setup(format!("declare queue {}", self.queue)))?;
        channel
            .queue_bind(
                self.queue.as_str().into(),
                self.events_exchange.as_str().into(),
                "card.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(setup(format!("bind {}", self.queue)))?;
        Ok(channel)
    }

    /// Consumes until `stop`, handing each event to `sink`; reconnects
    /// whenever the connection is lost.
    pub fn start(self, sink: UnboundedSender<ReceivedEvent>) -> Collector {
        let stop = CancellationToken::new();
        let connections = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(self.collect(sink, stop.clone(), connections.clone()));
        Collector {
            stop,
            task,
            connections,
        }
    }

    async fn collect(
        self,
        sink: UnboundedSender<ReceivedEvent>,
        stop: CancellationToken,
        connections: Arc<AtomicU32>,
    ) {
        for attempt in 0.. {
            let broker = &self.brokers[attempt % self.brokers.len()];
            tokio::select! {
                ended = self.consume_until_lost(broker, &sink, &connections) => {
                    if let Err(error) = ended {
                        tracing::debug!(%error, "collector connection lost");
                    }
                }
                () = stop.cancelled() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_PAUSE) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One connection's worth of consuming; returns when it is lost.
    async fn consume_until_lost(
        &self,
        broker: &Secret<String>,
        sink: &UnboundedSender<ReceivedEvent>,
        connections: &AtomicU32,
    ) -> Result<(), BrokerError> {
        let connection = connect(broker, None, "card-issuer-lab collector").await?;
        connections.fetch_add(1, Ordering::Relaxed);
        let channel = self.declare_on(&connection).await?;
        let setup = |what: &str| {
            let what = what.to_owned();
            move |source| BrokerError::Setup { what, source }
        };
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(setup("set the collector's prefetch"))?;
        let mut deliveries = channel
            .basic_consume(
                self.queue.as_str().into(),
                "card-issuer-lab-collector".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(setup("consume the collector queue"))?;
        while let Some(Ok(delivery)) = deliveries.next().await {
            let event = ReceivedEvent {
                routing_key: delivery.routing_key.to_string(),
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string()),
                body: delivery.data.clone(),
                redelivered: delivery.redelivered,
            };
            let _ = sink.send(event);
            // A lost acknowledgement only means a redelivery, which the
            // ledger recognises.
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
        Ok(())
    }
}

impl Collector {
    /// Times the collector connected again after its first connection.
    pub fn reconnects(&self) -> u32 {
        self.connections.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Stops consuming and closes the connection.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
