//! What an upstream service does: publish open-card commands and read the
//! events that answer them. The demo, the `submit` command and the tests use
//! it; it speaks to the worker only through the broker.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, Consumer};
use serde_json::Value;

use crate::broker::{BrokerError, PublishError, Publisher, connect};
use crate::issuance::header_text;
use crate::settings::BrokerSettings;

/// A connection that publishes commands.
pub struct Upstream {
    connection: Connection,
    publisher: Publisher,
    commands_exchange: String,
}

/// One event as a consumer sees it.
#[derive(Clone, Debug)]
pub struct Event {
    /// `card.issued` or `card.failed`.
    pub routing_key: String,
    /// The parsed body; `Value::Null` when it is not JSON.
    pub body: Value,
    /// The `message_id` property.
    pub message_id: Option<String>,
    /// The `correlation_id` property.
    pub correlation_id: Option<String>,
    /// The `type` property.
    pub kind: Option<String>,
    /// The `content_type` property.
    pub content_type: Option<String>,
    /// The `delivery_mode` property.
    pub delivery_mode: Option<u8>,
}

impl Event {
    /// The event's `requestId`.
    pub fn request_id(&self) -> Option<&str> {
        self.body.get("requestId").and_then(Value::as_str)
    }
}

impl Upstream {
    /// Connects to the first broker of the settings.
    pub async fn connect(settings: &BrokerSettings, name: &str) -> Result<Self, BrokerError> {
        let connection = connect(&settings.urls[0], settings.ca_file.as_deref(), name).await?;
        let publisher = Publisher::open(&connection, settings.publish_timeout).await?;
        Ok(Self {
            connection,
            publisher,
            commands_exchange: settings.commands_exchange.clone(),
        })
    }

    /// Publishes a command body, persistent and confirmed, with routing key
    /// `card.open`.
    pub async fn publish_command(
        &self,
        body: &[u8],
        correlation_id: Option<&str>,
    ) -> Result<(), PublishError> {
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        if let Some(id) = correlation_id {
            properties = properties.with_correlation_id(id.into());
        }
        self.publisher
            .publish(
                &self.commands_exchange,
                crate::broker::COMMAND_ROUTING_KEY,
                body,
                properties,
            )
            .await
    }

    /// Starts reading every event from `events_exchange` into a queue of
    /// this connection's own, deleted when the connection closes.
    pub async fn subscribe(&self, events_exchange: &str) -> Result<Events, BrokerError> {
        let setup = |what: &str| {
            let what = what.to_owned();
            move |source| BrokerError::Setup { what, source }
        };
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(setup("open a channel"))?;
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = channel
            .queue_declare("".into(), options, FieldTable::default())
            .await
            .map_err(setup("declare a queue for events"))?;
        channel
            .queue_bind(
                queue.name().clone(),
                events_exchange.into(),
                "card.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(setup(&format!(
                "bind a queue to {events_exchange} (the worker declares that exchange: is one \
                 running with these names?)"
            )))?;
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                options,
                FieldTable::default(),
            )
            .await
            .map_err(setup("consume events"))?;
        Ok(Events { consumer })
    }

    /// Reads (and removes) the messages parked in `queue`, the worker's
    /// dead-letter queue, as they arrive.
    pub async fn drain_parked(&self, queue: &str) -> Result<Parked, BrokerError> {
        let channel =
            self.connection
                .create_channel()
                .await
                .map_err(|source| BrokerError::Setup {
                    what: "open a channel".into(),
                    source,
                })?;
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let consumer = channel
            .basic_consume(queue.into(), "".into(), options, FieldTable::default())
            .await
            .map_err(|source| BrokerError::Setup {
                what: format!("consume {queue}"),
                source,
            })?;
        Ok(Parked { consumer })
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Events as they arrive.
pub struct Events {
    consumer: Consumer,
}

impl Events {
    /// The next event, or `None` after `wait` without one or when the
    /// connection ends.
    pub async fn next(&mut self, wait: Duration) -> Option<Event> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        let properties = &delivery.properties;
        let text =
            |value: &Option<lapin::types::ShortString>| value.as_ref().map(|s| s.to_string());
        Some(Event {
            routing_key: delivery.routing_key.to_string(),
            body: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
            message_id: text(properties.message_id()),
            correlation_id: text(properties.correlation_id()),
            kind: text(properties.kind()),
            content_type: text(properties.content_type()),
            delivery_mode: *properties.delivery_mode(),
        })
    }
}

/// Parked messages as they arrive.
pub struct Parked {
    consumer: Consumer,
}

/// One parked message.
#[derive(Clone, Debug)]
pub struct ParkedMessage {
    /// The `card-issuer-reason` header.
    pub reason: String,
    /// The `card-issuer-detail` header.
    pub detail: String,
    /// The message body as it was published.
    pub body: Vec<u8>,
}

impl Parked {
    /// The next parked message, or `None` after `wait` without one.
    pub async fn next(&mut self, wait: Duration) -> Option<ParkedMessage> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        let headers = delivery.properties.headers().as_ref();
        let header = |name: &str| header_text(headers, name).unwrap_or_default();
        Some(ParkedMessage {
            reason: header(crate::issuance::headers::REASON),
            detail: header(crate::issuance::headers::DETAIL),
            body: delivery.data.clone(),
        })
    }
}
