//! The benchmark's side of the broker: it plays the upstream service,
//! publishing commands and reading the events that answer them.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::PublisherConfirm;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use tokio::time::MissedTickBehavior;

use super::BenchError;
use crate::broker::{COMMAND_ROUTING_KEY, Topology, connect};
use crate::secret::Secret;

/// Confirms awaited at once while a backlog is published: enough to keep
/// the broker busy, few enough to bound memory.
const CONFIRM_WINDOW: usize = 512;

/// The benchmark's own connection to the broker.
pub struct Traffic {
    connection: Connection,
    channel: Channel,
}

/// One event as it reached the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// The number of the command it answers.
    pub card: usize,
    /// `card.issued` (else `card.failed`).
    pub issued: bool,
    /// When it arrived.
    pub at: Instant,
}

/// Events of one trial as they arrive.
pub struct Events {
    consumer: Consumer,
    queue: String,
}

impl Traffic {
    /// Connects, with a confirm-mode channel for commands.
    pub async fn connect(amqp_url: &str) -> Result<Self, BenchError> {
        let url = Secret::new(amqp_url.to_owned());
        let connection = connect(&url, None, "card-issuer-bench upstream").await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(BenchError::amqp("open the benchmark's channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(BenchError::amqp("turn on publisher confirms"))?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// Declares the trial's topology, as its worker will, and a queue of
    /// the benchmark's own that receives every event.
    pub async fn prepare(&self, topology: &Topology) -> Result<Events, BenchError> {
        topology.declare(&self.channel).await?;
        let queue = format!("{}.bench-events", topology.command_queue);
        let options = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        let what = format!("declare and bind {queue}");
        self.channel
            .queue_declare(queue.as_str().into(), options, FieldTable::default())
            .await
            .map_err(BenchError::amqp(what.clone()))?;
        self.channel
            .queue_bind(
                queue.as_str().into(),
                topology.events_exchange.as_str().into(),
                "card.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(BenchError::amqp(what))?;
        let consumer = self.consume_events(&queue).await?;
        Ok(Events { consumer, queue })
    }

    async fn consume_events(&self, queue: &str) -> Result<Consumer, BenchError> {
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(BenchError::amqp("open a channel for events"))?;
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        channel
            .basic_consume(queue.into(), "".into(), options, FieldTable::default())
            .await
            .map_err(BenchError::amqp(format!("consume {queue}")))
    }

    /// Publishes commands `0..cards` of `tag`, confirmed, as fast as the
    /// broker takes them.
    pub async fn publish_backlog(
        &self,
        exchange: &str,
        tag: &str,
        cards: usize,
    ) -> Result<(), BenchError> {
        let mut waiting = Vec::with_capacity(CONFIRM_WINDOW);
        for card in 0..cards {
            waiting.push(self.publish_command(exchange, tag, card).await?);
            if waiting.len() == CONFIRM_WINDOW {
                confirm_all(waiting.drain(..)).await?;
            }
        }
        confirm_all(waiting.drain(..)).await
    }

    /// Publishes `cards` commands of `tag`, evenly spaced at `per_second`,
    /// and returns when each was sent.
    pub async fn publish_paced(
        &self,
        exchange: &str,
        tag: &str,
        cards: usize,
        per_second: f64,
    ) -> Result<Vec<Instant>, BenchError> {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut sent = Vec::with_capacity(cards);
        let mut confirms = Vec::with_capacity(cards);
        for card in 0..cards {
            ticks.tick().await;
            sent.push(Instant::now());
            let confirm = self.publish_command(exchange, tag, card).await?;
            confirms.push(tokio::spawn(confirm));
        }
        for confirm in confirms {
            let confirmation = confirm
                .await
                .map_err(|_| BenchError::Failed("a confirm task failed".into()))?;
            check(confirmation)?;
        }
        Ok(sent)
    }

    async fn publish_command(
        &self,
        exchange: &str,
        tag: &str,
        card: usize,
    ) -> Result<PublisherConfirm, BenchError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        self.channel
            .basic_publish(
                exchange.into(),
                COMMAND_ROUTING_KEY.into(),
                options,
                &command_body(tag, card),
                properties,
            )
            .await
            .map_err(BenchError::amqp(format!("publish a command to {exchange}")))
    }

    /// Deletes the trial's queues and exchanges, its events queue included.
    pub async fn clean_up(&self, topology: &Topology, events: Events) -> Result<(), BenchError> {
        drop(events.consumer);
        self.channel
            .queue_delete(events.queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(BenchError::amqp(format!("delete {}", events.queue)))?;
        topology.delete(&self.channel).await?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "benchmark done".into()).await;
    }
}

impl Events {
    /// The next event, or an error when none came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Arrival, BenchError> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .map_err(|_| BenchError::Failed(format!("no event for {wait:?}")))?
            .ok_or_else(|| BenchError::Failed("the events consumer ended".into()))?
            .map_err(BenchError::amqp("read an event"))?;
        let at = Instant::now();
        let card = card_of(&delivery.data)
            .ok_or_else(|| BenchError::Failed("an event without a benchmark request id".into()))?;
        Ok(Arrival {
            card,
            issued: delivery.routing_key.as_str() == "card.issued",
            at,
        })
    }
}

async fn confirm_all(confirms: impl Iterator<Item = PublisherConfirm>) -> Result<(), BenchError> {
    for confirm in confirms {
        check(confirm.await)?;
    }
    Ok(())
}

fn check(confirmation: Result<Confirmation, lapin::Error>) -> Result<(), BenchError> {
    match confirmation.map_err(BenchError::amqp("wait for a confirm"))? {
        Confirmation::Ack(None) => Ok(()),
        other => Err(BenchError::Failed(format!(
            "the broker did not take a command: {other:?}"
        ))),
    }
}

/// A valid open-card command; each card has a customer of its own, so the
/// simulator never answers 1000 (another application pending).
pub fn command_body(tag: &str, card: usize) -> Vec<u8> {
    let serial = card as u64;
    serde_json::json!({
        "requestId": format!("{tag}-{card}"),
        "phoneNumber": format!("+99890{:07}", serial % 10_000_000),
        "productId": 1,
        "pin": format!("{:014}", 31_000_000_000_000 + serial),
    })
    .to_string()
    .into_bytes()
}

/// The command number in an event's `requestId` (`<tag>-<number>`).
fn card_of(body: &[u8]) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let request_id = value.get("requestId")?.as_str()?;
    request_id.rsplit('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_the_command_it_answers() {
        let body = command_body("t3", 41);

        assert_eq!(card_of(&body), Some(41));
    }

    #[test]
    fn commands_are_valid_for_the_worker() {
        let body = command_body("t1", 7);

        let command = crate::domain::OpenCardCommand::parse(&body, 65_536);

        assert!(command.is_ok());
    }
}
