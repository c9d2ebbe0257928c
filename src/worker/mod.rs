//! The worker: supervises broker sessions, consumes both work queues, and
//! hands each delivery to the handler.
//!
//! A session is two connections (consume, publish) with the topology
//! declared. When either connection is lost the session ends: handlers of
//! that session stop, their deliveries return to the queues with the
//! connection, and a new session starts after a backoff with jitter, on the
//! next broker of the list. Readiness is reported false meanwhile.

mod handler;
mod services;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use handler::{Handler, QueueRole, Settle, WORKER_PARKING_REASONS, unix_ms};
pub use services::Services;

use crate::broker::Session;
use crate::health::Readiness;
use crate::metrics;
use crate::partner::ClientError;
use crate::settings::{Settings, redact_url};

/// Why the worker could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The partner client could not be built (a bad CA file, say).
    #[error("cannot set up the partner client")]
    Partner(#[from] ClientError),
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
enum SessionEnd {
    /// Shutdown was asked for; stop.
    Shutdown,
    /// A connection was lost; start another session.
    Lost,
}

/// Runs the worker until `shutdown` fires, then stops taking deliveries,
/// lets those in flight finish within the grace period, and returns.
pub async fn run(
    settings: Settings,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let services = Arc::new(Services::new(&settings)?);
    let refresher = {
        let services = services.clone();
        let every = settings.partner.products_refresh;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if services
                .catalogue
                .load(&services.partner, Duration::from_secs(1), &stop)
                .await
            {
                services
                    .catalogue
                    .keep_fresh(&services.partner, every, stop)
                    .await;
            }
        })
    };

    supervise(&settings, &services, &readiness, &shutdown).await;

    refresher.abort();
    Ok(())
}

async fn supervise(
    settings: &Settings,
    services: &Arc<Services>,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) {
    let urls = &settings.broker.urls;
    let name = format!("card-issuer {}", std::process::id());
    let mut next_url = 0;
    let mut failures_in_a_row: u32 = 0;
    loop {
        let url = &urls[next_url % urls.len()];
        let opened = tokio::select! {
            opened = Session::open(&settings.broker, url, &services.topology, &name) => opened,
            () = shutdown.cancelled() => return,
        };
        match opened {
            Ok(session) => {
                failures_in_a_row = 0;
                // Which node of a cluster this replica now uses: connections
                // do not move back after a failover, so operators look here
                // to see replicas bunched on one node.
                tracing::info!(broker = %redact_url(url.expose()), "broker session started");
                let end = run_session(settings, services, &session, readiness, shutdown).await;
                session.close().await;
                if end == SessionEnd::Shutdown {
                    return;
                }
                metrics::broker_reconnect();
            }
            Err(error) => {
                failures_in_a_row += 1;
                tracing::warn!(error = %error_chain(&error), "broker session failed to start");
            }
        }
        next_url += 1;
        let pause = backoff(failures_in_a_row);
        tracing::info!(?pause, "starting a new broker session after a pause");
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// 0.5 s doubling up to 30 s, each wait drawn from half to one and a half
/// times that, so replicas that lost the broker together do not return in
/// step.
fn backoff(failures_in_a_row: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(failures_in_a_row.min(6));
    base.min(Duration::from_secs(30))
        .mul_f64(0.5 + fastrand::f64())
}

async fn run_session(
    settings: &Settings,
    services: &Arc<Services>,
    session: &Session,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> SessionEnd {
    // The topology is declared, so commands published now are kept; but
    // they cannot be validated until the product list is known.
    while !services.catalogue.is_loaded() {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = shutdown.cancelled() => return SessionEnd::Shutdown,
            () = session.lost.cancelled() => return SessionEnd::Lost,
        }
    }

    let topology = &services.topology;
    let prefetch = settings.worker.concurrency;
    let tag = |queue: &str| format!("card-issuer-{}-{queue}", std::process::id());
    let consumers = async {
        let commands = session
            .consume(&topology.command_queue, prefetch, &tag("open-card"))
            .await?;
        let checks = session
            .consume(&topology.status_queue, prefetch, &tag("status-check"))
            .await?;
        Ok::<_, crate::broker::BrokerError>((commands, checks))
    };
    let (mut commands, mut checks) = match consumers.await {
        Ok(consumers) => consumers,
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "cannot start consuming");
            return SessionEnd::Lost;
        }
    };
    readiness.set_consuming(true);
    tracing::info!(
        commands = %topology.command_queue,
        status_checks = %topology.status_queue,
        prefetch,
        "consuming"
    );

    let handler = Handler::new(
        services.clone(),
        session.publisher.clone(),
        session.lost.clone(),
        shutdown.clone(),
    );
    let mut in_flight = JoinSet::new();
    let end = loop {
        tokio::select! {
            delivery = commands.consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    in_flight.spawn(settle(handler.clone(), delivery, QueueRole::Commands));
                }
                _ => break SessionEnd::Lost,
            },
            delivery = checks.consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    in_flight.spawn(settle(handler.clone(), delivery, QueueRole::StatusChecks));
                }
                _ => break SessionEnd::Lost,
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = shutdown.cancelled() => break SessionEnd::Shutdown,
            () = session.lost.cancelled() => break SessionEnd::Lost,
        }
    };
    readiness.set_consuming(false);

    if end == SessionEnd::Lost {
        // The deliveries went back to the queues with the connection; what
        // their handlers would still do could only be repeated elsewhere.
        in_flight.abort_all();
        tracing::warn!("broker session lost");
        return end;
    }

    // Stop taking deliveries but keep the channels, so that what is in
    // flight can still be acknowledged; what was taken but not started goes
    // back to the queue when the channels close.
    commands.stop_taking().await;
    checks.stop_taking().await;
    let grace = settings.worker.shutdown_grace;
    tracing::info!(
        in_flight = in_flight.len(),
        ?grace,
        "shutting down: finishing work in flight"
    );
    let finished = tokio::time::timeout(grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            handed_back = in_flight.len(),
            "grace period over; unfinished deliveries go back to the queue"
        );
        in_flight.abort_all();
    }
    end
}

/// Handles a delivery and acknowledges or hands it back.
async fn settle(handler: Handler, delivery: Delivery, role: QueueRole) {
    let _in_progress = metrics::InProgress::start();
    let handled = AssertUnwindSafe(handler.handle(&delivery, role))
        .catch_unwind()
        .await;
    let settle = match handled {
        Ok(settle) => settle,
        Err(_panic) => handler.recover_from_panic(&delivery).await,
    };
    // A failed ack or nack means the channel is gone, and the broker has
    // already put the delivery back.
    let _ = match settle {
        Settle::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        Settle::HandBack if handler.hand_back(&delivery).await => {
            delivery.acker.ack(BasicAckOptions::default()).await
        }
        Settle::HandBack => {
            let requeue = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            delivery.acker.nack(requeue).await
        }
    };
}

/// An error with its causes, for one log field.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
