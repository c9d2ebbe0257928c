//! The exchanges and queues the worker declares, and how a scheduled step
//! finds its way back.
//!
//! ```text
//! cards.commands --card.open--> <p>.open-card <--open-card.*--- <p>.resume
//!                                                               ^      |
//! <p>.delay --<stage>.<delay>--> <p>.delay.<delay>  --TTL,DLX---+      +--status-check.*--> <p>.status-check
//! "" --<p>.dead-letter--> <p>.dead-letter          cards.events <-- card.issued / card.failed
//! ```
//!
//! A step to run later is published to `<p>.delay` with the routing key
//! `<stage>.<delay>`, which lands it in the delay queue for that delay. The
//! queue holds it for its fixed TTL, then dead-letters it, keeping its
//! routing key, to `<p>.resume`, which sends it by the stage part to the
//! command queue (open-card retries) or the status-check queue. One queue per
//! delay keeps every message in a queue as long as the one ahead of it, so a
//! short delay never waits behind a long one, which a shared queue with
//! per-message expiry would do.
//!
//! Delay queues are quorum queues with at-least-once dead-lettering: a
//! classic queue dead-letters at most once, and loses messages that expire
//! while the broker restarts.

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

use super::BrokerError;
use crate::issuance::Stage;
use crate::settings::{BrokerSettings, QueueType};

/// The names the worker uses on the broker.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Where commands arrive (topic).
    pub commands_exchange: String,
    /// Where events go (topic).
    pub events_exchange: String,
    /// New commands and open-card retries.
    pub command_queue: String,
    /// Status checks.
    pub status_queue: String,
    /// Parked messages.
    pub dead_letter_queue: String,
    /// Where delayed steps are published (direct).
    pub delay_exchange: String,
    /// Where expired delays go to be routed by stage (topic).
    pub resume_exchange: String,
    /// Every delay the policy may choose.
    pub delays: Vec<Duration>,
    /// A queue for events the worker declares and binds itself, if any.
    pub events_queue: Option<String>,
    /// The kind of the command, status-check and dead-letter queues.
    pub queue_type: QueueType,
}

/// The routing key that upstream services publish commands with.
pub const COMMAND_ROUTING_KEY: &str = "card.open";

impl Topology {
    /// The names for these settings and delays.
    pub fn new(settings: &BrokerSettings, delays: Vec<Duration>) -> Self {
        let prefix = &settings.queue_prefix;
        Self {
            commands_exchange: settings.commands_exchange.clone(),
            events_exchange: settings.events_exchange.clone(),
            command_queue: format!("{prefix}.open-card"),
            status_queue: format!("{prefix}.status-check"),
            dead_letter_queue: format!("{prefix}.dead-letter"),
            delay_exchange: format!("{prefix}.delay"),
            resume_exchange: format!("{prefix}.resume"),
            delays,
            events_queue: settings.events_queue.clone(),
            queue_type: settings.queue_type,
        }
    }

    /// The delay queue for one delay.
    pub fn delay_queue(&self, delay: Duration) -> String {
        format!("{}.{}", self.delay_exchange, delay_label(delay))
    }

    /// The exchange and routing key that bring a message back to run `stage`
    /// after `delay`. A zero delay skips the delay queues.
    pub fn route_after(&self, stage: Stage, delay: Duration) -> (&str, String) {
        if delay.is_zero() {
            return (&self.resume_exchange, format!("{}.now", stage_key(stage)));
        }
        (
            &self.delay_exchange,
            format!("{}.{}", stage_key(stage), delay_label(delay)),
        )
    }

    /// Declares everything, idempotently: declaring what exists with the same
    /// arguments changes nothing, so every replica runs this at start.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        for (name, kind) in [
            (&self.commands_exchange, ExchangeKind::Topic),
            (&self.events_exchange, ExchangeKind::Topic),
            (&self.resume_exchange, ExchangeKind::Topic),
            (&self.delay_exchange, ExchangeKind::Direct),
        ] {
            declare_exchange(channel, name, kind).await?;
        }

        let work_queue = self.work_queue_arguments();
        let parked_by_the_broker = self.parked_by_the_broker();
        declare_queue(channel, &self.command_queue, parked_by_the_broker.clone()).await?;
        declare_queue(channel, &self.status_queue, parked_by_the_broker).await?;
        declare_queue(channel, &self.dead_letter_queue, work_queue).await?;
        bind(
            channel,
            &self.command_queue,
            &self.commands_exchange,
            COMMAND_ROUTING_KEY,
        )
        .await?;
        let open_card_keys = format!("{}.*", stage_key(Stage::OpenCard));
        bind(
            channel,
            &self.command_queue,
            &self.resume_exchange,
            &open_card_keys,
        )
        .await?;
        let status_keys = format!("{}.*", stage_key(Stage::StatusCheck));
        bind(
            channel,
            &self.status_queue,
            &self.resume_exchange,
            &status_keys,
        )
        .await?;

        if let Some(queue) = &self.events_queue {
            declare_queue(channel, queue, self.work_queue_arguments()).await?;
            for key in ["card.issued", "card.failed"] {
                bind(channel, queue, &self.events_exchange, key).await?;
            }
        }

        for &delay in &self.delays {
            let queue = self.delay_queue(delay);
            declare_queue(channel, &queue, self.delay_queue_arguments(delay)).await?;
            for stage in [Stage::OpenCard, Stage::StatusCheck] {
                let key = format!("{}.{}", stage_key(stage), delay_label(delay));
                bind(channel, &queue, &self.delay_exchange, &key).await?;
            }
        }
        Ok(())
    }

    /// Deletes everything [`Topology::declare`] declared, messages included:
    /// for tests and measurement runs that cleaned up after themselves.
    pub async fn delete(&self, channel: &Channel) -> Result<(), BrokerError> {
        let mut queues = vec![
            &self.command_queue,
            &self.status_queue,
            &self.dead_letter_queue,
        ];
        let delay_queues: Vec<String> = self
            .delays
            .iter()
            .map(|delay| self.delay_queue(*delay))
            .collect();
        queues.extend(&delay_queues);
        queues.extend(&self.events_queue);
        for queue in queues {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(|source| BrokerError::Setup {
                    what: format!("delete queue {queue}"),
                    source,
                })?;
        }
        for exchange in [
            &self.commands_exchange,
            &self.events_exchange,
            &self.delay_exchange,
            &self.resume_exchange,
        ] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(|source| BrokerError::Setup {
                    what: format!("delete exchange {exchange}"),
                    source,
                })?;
        }
        Ok(())
    }

    fn work_queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        let kind = match self.queue_type {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        };
        arguments.insert("x-queue-type".into(), text(kind));
        arguments
    }

    /// The work queues' arguments: what the broker itself drops from them (a
    /// command whose own `expiration` ran out before a worker took it) goes
    /// to the dead-letter queue, with RabbitMQ's `x-death` saying why,
    /// rather than nowhere.
    fn parked_by_the_broker(&self) -> FieldTable {
        let mut arguments = self.work_queue_arguments();
        arguments.insert("x-dead-letter-exchange".into(), text(""));
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            text(&self.dead_letter_queue),
        );
        arguments
    }

    fn delay_queue_arguments(&self, delay: Duration) -> FieldTable {
        let mut arguments = FieldTable::default();
        let ttl_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        arguments.insert("x-queue-type".into(), text("quorum"));
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
        arguments.insert("x-dead-letter-exchange".into(), text(&self.resume_exchange));
        arguments.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        // At-least-once dead-lettering requires it: a full queue refuses new
        // messages (the publish fails and is retried) instead of dropping old ones.
        arguments.insert("x-overflow".into(), text("reject-publish"));
        arguments
    }
}

/// A delay as it appears in queue names and routing keys: `500ms`, `2s`,
/// `1m30s`.
pub fn delay_label(delay: Duration) -> String {
    humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
        .to_string()
        .replace(' ', "")
}

fn stage_key(stage: Stage) -> &'static str {
    match stage {
        Stage::OpenCard => "open-card",
        Stage::PendingCheck | Stage::StatusCheck => "status-check",
    }
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), BrokerError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            ShortString::from(name),
            kind,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(|source| BrokerError::Setup {
            what: format!("declare exchange {name}"),
            source,
        })
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), BrokerError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(ShortString::from(name), options, arguments)
        .await
        .map(drop)
        .map_err(|source| BrokerError::Setup {
            what: format!(
                "declare queue {name} (if it exists with other arguments, such as another queue \
                 type or TTL, delete it or choose another CARD_ISSUER_QUEUE_PREFIX)"
            ),
            source,
        })
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), BrokerError> {
    channel
        .queue_bind(
            ShortString::from(queue),
            ShortString::from(exchange),
            ShortString::from(key),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|source| BrokerError::Setup {
            what: format!("bind {queue} to {exchange} with {key}"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_labels_are_short_and_have_no_spaces() {
        let cases = [
            (100, "100ms"),
            (2_000, "2s"),
            (90_000, "1m30s"),
            (86_400_000, "1day"),
        ];
        for (ms, label) in cases {
            assert_eq!(delay_label(Duration::from_millis(ms)), label);
        }
    }
}
