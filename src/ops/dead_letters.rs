//! The dead-letter queue: what is parked and why, and moving chosen
//! messages back so that each resumes at the stage it had reached.
//!
//! Parked messages keep the worker's progress headers, so a parked status
//! check goes back to the status-check queue and never causes a second
//! open-card; a command parked before any partner call goes back to the
//! command queue.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};

use crate::broker::{BrokerError, PublishError, Publisher, Topology, connect};
use crate::domain::request_id_of;
use crate::issuance::{Progress, Stage, header_text, headers};
use crate::settings::BrokerSettings;

/// One parked message, as far as it can be shown: ids and reasons, never
/// the body's personal data.
#[derive(Clone, Debug)]
pub struct Parked {
    /// `card-issuer-reason`.
    pub reason: String,
    /// `card-issuer-detail`.
    pub detail: String,
    /// The request id, when the body has one.
    pub request_id: Option<String>,
    /// The stage it had reached, from its headers.
    pub stage: Stage,
}

/// Which parked messages to move back.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these reasons; empty means any.
    pub reasons: Vec<String>,
    /// Only these request ids; empty means any.
    pub request_ids: Vec<String>,
    /// Give each a new deadline this far from now.
    pub new_deadline: Option<Duration>,
}

impl Selection {
    fn picks(&self, parked: &Parked) -> bool {
        let reason_ok = self.reasons.is_empty() || self.reasons.contains(&parked.reason);
        let id_ok = self.request_ids.is_empty()
            || parked
                .request_id
                .as_ref()
                .is_some_and(|id| self.request_ids.contains(id));
        reason_ok && id_ok
    }
}

/// Why the dead-letter queue could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Reading the queue failed; what was taken goes back with the channel.
    #[error("cannot read {queue}")]
    Read {
        /// The queue.
        queue: String,
        /// Why.
        #[source]
        source: lapin::Error,
    },
    /// Moving a message back failed; it stays parked.
    #[error("cannot move a message back; it stays parked")]
    Publish(#[from] PublishError),
}

/// Reads every parked message (up to `limit`) without removing any.
pub async fn list(broker: &BrokerSettings, limit: usize) -> Result<Vec<Parked>, DeadLetterError> {
    let session = QueueSession::open(broker).await?;
    let mut listed = vec![];
    while listed.len() < limit {
        let Some(message) = session.get().await? else {
            break;
        };
        listed.push(describe(
            &message.delivery.properties,
            &message.delivery.data,
        ));
    }
    session.put_back_all().await;
    Ok(listed)
}

/// Whether `reason` is one the worker parks messages for.
pub fn is_known_reason(reason: &str) -> bool {
    crate::domain::RejectionReason::ALL
        .iter()
        .any(|known| known.as_str() == reason)
        || crate::worker::WORKER_PARKING_REASONS.contains(&reason)
}

/// Counts parked messages by reason.
pub fn by_reason(parked: &[Parked]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for message in parked {
        *counts.entry(message.reason.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Moves the selected messages back to the queues of their stages; returns
/// those moved. The others stay parked, in their order.
pub async fn requeue(
    broker: &BrokerSettings,
    selection: &Selection,
    limit: usize,
) -> Result<Vec<Parked>, DeadLetterError> {
    let session = QueueSession::open(broker).await?;
    let mut moved = vec![];
    let mut examined = 0;
    while examined < limit {
        let Some(message) = session.get().await? else {
            break;
        };
        examined += 1;
        let delivery = &message.delivery;
        let parked = describe(&delivery.properties, &delivery.data);
        if !selection.picks(&parked) {
            continue;
        }
        let (exchange, routing_key) = session.topology.route_after(parked.stage, Duration::ZERO);
        let properties = delivery.properties.clone().with_headers(resumed_headers(
            delivery.properties.headers().as_ref(),
            selection,
        ));
        session
            .publisher
            .publish(exchange, &routing_key, &delivery.data, properties)
            .await?;
        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        moved.push(parked);
    }
    session.put_back_all().await;
    Ok(moved)
}

/// The headers of a message moved back: the parking reason removed, the
/// handler-failure count cleared, and optionally a new deadline.
fn resumed_headers(original: Option<&FieldTable>, selection: &Selection) -> FieldTable {
    let mut table = FieldTable::default();
    let parking = [
        headers::REASON,
        headers::DETAIL,
        headers::PARKED_FROM,
        headers::HANDLER_FAILURES,
    ];
    for (name, value) in original.into_iter().flat_map(|table| table.inner()) {
        if !parking.contains(&name.as_str()) && name.as_str() != headers::DELIVERY_COUNT {
            table.insert(name.clone(), value.clone());
        }
    }
    if let Some(wait) = selection.new_deadline {
        let deadline_ms = crate::worker::unix_ms() + wait.as_millis() as u64;
        table.insert(
            ShortString::from(headers::DEADLINE),
            AMQPValue::LongLongInt(deadline_ms as i64),
        );
    }
    table
}

fn describe(properties: &BasicProperties, body: &[u8]) -> Parked {
    let table = properties.headers().as_ref();
    let text = |name: &str| header_text(table, name).unwrap_or_default();
    let stage = Progress::from_headers(table, 0, Duration::ZERO)
        .map(|progress| progress.stage)
        .unwrap_or(Stage::OpenCard);
    Parked {
        reason: header_text(table, headers::REASON)
            .or_else(|| {
                header_text(table, "x-first-death-reason").map(|why| format!("broker:{why}"))
            })
            .unwrap_or_default(),
        detail: text(headers::DETAIL),
        request_id: request_id_of(body),
        stage,
    }
}

/// A connection reading the dead-letter queue one message at a time.
struct QueueSession {
    connection: Connection,
    channel: Channel,
    publisher: Publisher,
    topology: Topology,
}

impl QueueSession {
    async fn open(broker: &BrokerSettings) -> Result<Self, DeadLetterError> {
        let connection = connect(
            &broker.urls[0],
            broker.ca_file.as_deref(),
            "card-issuer dead-letters",
        )
        .await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|source| BrokerError::Setup {
                what: "open a channel".into(),
                source,
            })?;
        let publisher = Publisher::open(&connection, broker.publish_timeout).await?;
        Ok(Self {
            connection,
            channel,
            publisher,
            topology: Topology::new(broker, vec![]),
        })
    }

    async fn get(&self) -> Result<Option<lapin::message::BasicGetMessage>, DeadLetterError> {
        let queue = &self.topology.dead_letter_queue;
        self.channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(|source| DeadLetterError::Read {
                queue: queue.clone(),
                source,
            })
    }

    /// Returns every message taken and not moved to the queue.
    async fn put_back_all(self) {
        let all = BasicNackOptions {
            multiple: true,
            requeue: true,
        };
        let _ = self.channel.basic_nack(0, all).await;
        let _ = self.channel.close(200, "done".into()).await;
        let _ = self.connection.close(200, "done".into()).await;
    }
}
