//! The null worker: the worker's message flow on the broker and nothing else,
//! the yardstick the real worker is measured against.
//!
//! It declares the same topology (quorum queues, through
//! [`Topology::declare`]), consumes the command and status-check queues on
//! one connection with a channel each and the same prefetch, and publishes
//! on another connection through one confirm-mode channel, persistent and
//! mandatory, as the worker does. For a command it publishes a status check
//! with zero delay (through the resume exchange, carrying the same progress
//! headers the worker writes), waits for the confirm and acknowledges; for a
//! status check it publishes `card.issued`, waits for the confirm and
//! acknowledges. No HTTP, no validation, no decisions. With
//! `--call-latency` it sleeps that long in place of each partner call, at
//! most `--concurrency` sleeps at once, as the worker bounds its calls.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

use super::BenchError;
use super::names::TrialNames;
use crate::broker::{Topology, connect};
use crate::issuance::{Progress, Stage};
use crate::secret::Secret;
use crate::worker::unix_ms;

/// The null worker's settings; the benchmark passes the trial's.
#[derive(Args)]
pub struct NullWorkerArgs {
    /// The broker.
    #[arg(long)]
    amqp_url: String,
    /// The trial's queue prefix, as the worker's `--queue-prefix`.
    #[arg(long)]
    queue_prefix: String,
    /// Prefetch of each consumer, and the bound on sleeps in flight.
    #[arg(long)]
    concurrency: u16,
    /// Slept in place of each partner call.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    call_latency: Duration,
}

/// Which queue a delivery came from.
#[derive(Clone, Copy)]
enum Step {
    Command,
    StatusCheck,
}

/// What every delivery's task shares.
struct Flow {
    publishing: Channel,
    topology: Topology,
    call_slots: Semaphore,
    call_latency: Duration,
}

/// Runs until SIGTERM; prints `ready` on standard output once consuming.
pub async fn run(args: NullWorkerArgs) -> Result<(), BenchError> {
    let names = TrialNames {
        prefix: args.queue_prefix.clone(),
    };
    let topology = names.topology(&args.amqp_url);
    let url = Secret::new(args.amqp_url.clone());
    let consuming = connect(&url, None, "card-issuer-bench null-worker consumer").await?;
    let publishing = connect(&url, None, "card-issuer-bench null-worker publisher").await?;

    let setup = open_channel(&publishing).await?;
    topology.declare(&setup).await?;
    let _ = setup.close(200, "topology declared".into()).await;
    let confirmed = open_channel(&publishing).await?;
    confirmed
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(BenchError::amqp("turn on publisher confirms"))?;

    let prefetch = args.concurrency;
    let mut commands = consume(&consuming, &topology.command_queue, prefetch).await?;
    let mut checks = consume(&consuming, &topology.status_queue, prefetch).await?;
    let flow = Arc::new(Flow {
        publishing: confirmed,
        topology,
        call_slots: Semaphore::new(usize::from(prefetch)),
        call_latency: args.call_latency,
    });
    announce_ready()?;

    let mut terminate = signal(SignalKind::terminate()).map_err(BenchError::io("SIGTERM"))?;
    loop {
        tokio::select! {
            delivery = commands.next() => match delivery {
                Some(Ok(delivery)) => {
                    tokio::spawn(flow.clone().pass_on(delivery, Step::Command));
                }
                _ => break,
            },
            delivery = checks.next() => match delivery {
                Some(Ok(delivery)) => {
                    tokio::spawn(flow.clone().pass_on(delivery, Step::StatusCheck));
                }
                _ => break,
            },
            _ = terminate.recv() => break,
        }
    }
    for connection in [&consuming, &publishing] {
        let _ = connection.close(200, "null worker stopping".into()).await;
    }
    Ok(())
}

fn announce_ready() -> Result<(), BenchError> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready")
        .and_then(|()| stdout.flush())
        .map_err(BenchError::io("write to standard output"))
}

async fn open_channel(connection: &Connection) -> Result<Channel, BenchError> {
    connection
        .create_channel()
        .await
        .map_err(BenchError::amqp("open a channel"))
}

async fn consume(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
) -> Result<Consumer, BenchError> {
    let channel = open_channel(connection).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(BenchError::amqp(format!("set the prefetch of {queue}")))?;
    channel
        .basic_consume(
            queue.into(),
            "card-issuer-bench-null-worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(BenchError::amqp(format!("consume {queue}")))
}

impl Flow {
    /// Publishes what the delivery leads to, waits for the confirm, then
    /// acknowledges; a failed publish hands the delivery back.
    async fn pass_on(self: Arc<Self>, delivery: Delivery, step: Step) {
        if !self.call_latency.is_zero() {
            let _slot = self.call_slots.acquire().await;
            tokio::time::sleep(self.call_latency).await;
        }
        let published = match step {
            Step::Command => {
                let (exchange, routing_key) = self
                    .topology
                    .route_after(Stage::StatusCheck, Duration::ZERO);
                let properties = status_check_properties(&delivery);
                self.publish(exchange, &routing_key, &delivery.data, properties)
                    .await
            }
            Step::StatusCheck => {
                let exchange = &self.topology.events_exchange;
                self.publish(exchange, "card.issued", &delivery.data, event_properties())
                    .await
            }
        };
        let _ = if published {
            delivery.acker.ack(BasicAckOptions::default()).await
        } else {
            let requeue = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            delivery.acker.nack(requeue).await
        };
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> bool {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirmation = async {
            self.publishing
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    options,
                    body,
                    properties,
                )
                .await?
                .await
        };
        match confirmation.await {
            Ok(Confirmation::Ack(None)) => true,
            other => {
                eprintln!("null worker: publish to {exchange} failed: {other:?}");
                false
            }
        }
    }
}

/// Persistent, with the progress headers the worker writes for a status
/// check, so the bytes on the broker are alike.
fn status_check_properties(delivery: &Delivery) -> BasicProperties {
    let progress = Progress {
        stage: Stage::StatusCheck,
        ..Progress::fresh(unix_ms(), Duration::from_secs(86_400))
    };
    let headers = progress.to_headers(delivery.properties.headers().as_ref());
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

/// The properties the worker gives an event.
fn event_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_type("card.issued".into())
        .with_message_id("card.issued".into())
        .with_timestamp(unix_ms() / 1000)
        .with_app_id("card-issuer-bench".into())
}
