//! Submit one command and wait for its event, as an upstream service would.

use std::time::{Duration, Instant};

use crate::broker::{BrokerError, PublishError};
use crate::domain::request_id_of;
use crate::settings::BrokerSettings;
use crate::upstream::{Event, Upstream};

/// Why a command could not be submitted or answered.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The command is not JSON with a `requestId`.
    #[error("the command must be a JSON object with a requestId")]
    NoRequestId,
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The broker did not take the command.
    #[error("the broker did not take the command")]
    Publish(#[from] PublishError),
    /// No event arrived in time; the command may still be in progress.
    #[error("no event for {request_id} within {waited:?}; it may still be in progress")]
    NoAnswer {
        /// The request.
        request_id: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// Publishes `body` and waits up to `wait` for the event answering it.
pub async fn submit(
    broker: &BrokerSettings,
    body: &[u8],
    correlation_id: Option<&str>,
    wait: Duration,
) -> Result<Event, SubmitError> {
    let request_id = request_id_of(body).ok_or(SubmitError::NoRequestId)?;

    let upstream = Upstream::connect(broker, "card-issuer submit").await?;
    // Subscribed before publishing, so the answer cannot slip past.
    let mut events = upstream.subscribe(&broker.events_exchange).await?;
    upstream.publish_command(body, correlation_id).await?;

    let started = Instant::now();
    while let Some(left) = wait.checked_sub(started.elapsed()) {
        match events.next(left).await {
            Some(event) if answers(&event, &request_id) => {
                upstream.close().await;
                return Ok(event);
            }
            Some(_) => {}
            None => break,
        }
    }
    upstream.close().await;
    Err(SubmitError::NoAnswer {
        request_id,
        waited: wait,
    })
}

/// Whether `event` is the event answering `request_id`; anything else on the
/// exchange (a command misrouted there, say) is not shown.
fn answers(event: &Event, request_id: &str) -> bool {
    let is_event = matches!(event.routing_key.as_str(), "card.issued" | "card.failed");
    is_event && event.request_id() == Some(request_id)
}
