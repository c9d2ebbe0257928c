//! One delivery, from message to settlement.
//!
//! A delivery is acknowledged only once what it leads to is confirmed by the
//! broker: the next step in a delay queue, the terminal event, or a parked
//! copy in the dead-letter queue. Until then it stays unacknowledged, so a
//! crash at any point hands it back to the queue; its headers say where to
//! resume, and a repeated open-card is harmless because the partner answers
//! a known request id with 1002.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, field};

use super::Services;
use crate::broker::{PublishError, Publisher};
use crate::domain::{OpenCardCommand, ProductId, Rejection, RejectionReason, RequestId};
use crate::issuance::without_own;
use crate::issuance::{
    Decision, Failure, FailureReason, Outcome, Progress, Stage, decide, earlier_deliveries,
    headers, stage_to_run,
};
use crate::metrics;
use crate::partner::Reply;

/// Parking reason: the handler failed on the message too often.
pub const HANDLER_FAILED: &str = "handler_failed";
/// Parking reason: RabbitMQ delivered it too often without it being settled.
pub const DELIVERY_LIMIT: &str = "delivery_limit";
/// Parking reason: headers of ours hold something we never write.
pub const INVALID_PROGRESS: &str = "invalid_progress";

/// Every reason the worker itself parks a message for; invalid commands
/// add theirs ([`crate::domain::RejectionReason`]).
pub const WORKER_PARKING_REASONS: &[&str] = &[HANDLER_FAILED, DELIVERY_LIMIT, INVALID_PROGRESS];

/// What to do with the delivery once handling ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Everything it led to is confirmed: acknowledge it.
    Ack,
    /// It was not finished (shutdown, lost broker): give it back to the
    /// queue for this or another worker.
    HandBack,
}

/// Which queue a delivery came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRole {
    /// New commands and open-card retries.
    Commands,
    /// Status checks.
    StatusChecks,
}

impl QueueRole {
    /// A log field value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Commands => "open-card",
            Self::StatusChecks => "status-check",
        }
    }
}

/// A command's identity and, at the open-card stage, its personal data.
struct Request {
    id: RequestId,
    product_id: ProductId,
    /// Present only when an open-card call may be made.
    command: Option<OpenCardCommand>,
}

/// What a delivery comes to, before anything is published.
enum Next {
    /// Run `progress.stage` again after `delay`.
    Schedule { progress: Progress, delay: Duration },
    /// Publish the terminal event.
    Finish {
        outcome: Outcome,
        received_at_ms: u64,
    },
    /// Give the delivery back unfinished.
    HandBack,
}

/// Handles deliveries for one broker session.
#[derive(Clone)]
pub struct Handler {
    services: Arc<Services>,
    publisher: Arc<Publisher>,
    session_lost: CancellationToken,
    shutdown: CancellationToken,
}

impl Handler {
    /// A handler publishing through `publisher`; it gives up on deliveries
    /// when the session is lost or, where waiting is all that is left, when
    /// shutdown begins.
    pub fn new(
        services: Arc<Services>,
        publisher: Arc<Publisher>,
        session_lost: CancellationToken,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            services,
            publisher,
            session_lost,
            shutdown,
        }
    }

    /// Handles one delivery inside its own span.
    pub async fn handle(&self, delivery: &Delivery, role: QueueRole) -> Settle {
        let span = tracing::info_span!(
            "delivery",
            queue = role.label(),
            request_id = field::Empty,
            stage = field::Empty,
        );
        self.handle_in_span(delivery).instrument(span).await
    }

    /// Takes care of a delivery whose handling panicked: it is tried again
    /// after a retry delay, and parked once it has failed too often, so one
    /// bad message can neither stop the worker nor loop for ever.
    pub async fn recover_from_panic(&self, delivery: &Delivery) -> Settle {
        let issuance = &self.services.issuance;
        let original = delivery.properties.headers().as_ref();
        let Ok(progress) = Progress::from_headers(original, unix_ms(), issuance.deadline) else {
            return self
                .park(
                    delivery,
                    HANDLER_FAILED,
                    "the handler failed on this message",
                )
                .await;
        };
        let failures = progress.handler_failures + 1;
        if failures >= issuance.handler_failure_limit {
            let detail = format!("the handler failed on this message {failures} times");
            return self.park(delivery, HANDLER_FAILED, &detail).await;
        }
        tracing::error!(
            failures,
            "the handler failed on a message; it will be tried again"
        );
        metrics::retry(progress.stage.as_str(), HANDLER_FAILED);
        let delay = self.services.plan.retry_delays[0];
        let progress = Progress {
            handler_failures: failures,
            ..progress
        };
        self.schedule(delivery, &progress, delay).await
    }

    /// Gives back a delivery that was not finished. While the session lives
    /// (a shutdown), a copy goes back to the queue of its stage and the
    /// delivery is acknowledged, so RabbitMQ's delivery count, which parks
    /// messages that keep coming back, counts only crashes and lost
    /// connections. Returns whether the delivery was settled that way;
    /// otherwise it is to be nacked.
    pub async fn hand_back(&self, delivery: &Delivery) -> bool {
        if self.session_lost.is_cancelled() {
            return false;
        }
        let original = delivery.properties.headers().as_ref();
        let from_upstream = delivery.exchange.as_str() == self.services.topology.commands_exchange;
        let stage =
            match Progress::from_headers(original, unix_ms(), self.services.issuance.deadline) {
                Ok(progress) if !from_upstream => progress.stage,
                _ => Stage::OpenCard,
            };
        let (exchange, routing_key) = self.services.topology.route_after(stage, Duration::ZERO);
        // A new command's copy carries none of our headers that it may have
        // come with: it must stay new.
        let headers = if from_upstream {
            without_own(original)
        } else {
            without_delivery_count(original)
        };
        let properties = carried_properties(&delivery.properties).with_headers(headers);
        self.publisher
            .publish(exchange, &routing_key, &delivery.data, properties)
            .await
            .is_ok()
    }

    async fn handle_in_span(&self, delivery: &Delivery) -> Settle {
        let issuance = &self.services.issuance;
        let original = delivery.properties.headers().as_ref();
        let earlier = earlier_deliveries(original);
        if earlier >= u64::from(issuance.delivery_limit) {
            let detail = format!(
                "delivered {earlier} times without being settled; the worker may be crashing on it"
            );
            return self.park(delivery, DELIVERY_LIMIT, &detail).await;
        }
        // Whatever arrives through the command exchange is a new command,
        // whatever headers it carries: only the worker's own steps (through
        // its resume exchange) say where a request stands.
        let from_upstream = delivery.exchange.as_str() == self.services.topology.commands_exchange;
        let fresh =
            from_upstream || !original.is_some_and(|table| table.contains_key(headers::STAGE));
        let progress = if fresh {
            Progress::fresh(unix_ms(), issuance.deadline)
        } else {
            match Progress::from_headers(original, unix_ms(), issuance.deadline) {
                Ok(progress) => progress,
                Err(error) => {
                    return self
                        .park(delivery, INVALID_PROGRESS, &error.to_string())
                        .await;
                }
            }
        };
        if fresh {
            metrics::command_received();
        }
        let request = match self.read_request(&delivery.data, progress.stage, fresh) {
            Ok(request) => request,
            Err(rejection) => return self.reject(delivery, rejection).await,
        };
        Span::current().record("request_id", request.id.as_str());
        Span::current().record("stage", progress.stage.as_str());
        crate::failpoint::hit(request.id.as_str());

        let next = self.advance(&request, progress).await;
        self.settle(delivery, &request, next).await
    }

    /// Reads the command. Its product is checked against the partner's list
    /// only when it is new: a later step may follow an open-card that got
    /// through, and a product withdrawn since must not fail it.
    fn read_request(&self, body: &[u8], stage: Stage, fresh: bool) -> Result<Request, Rejection> {
        let max_bytes = self.services.issuance.max_command_bytes;
        if stage != Stage::OpenCard {
            let (id, product_id) = crate::domain::read_ids(body, max_bytes)?;
            return Ok(Request {
                id,
                product_id,
                command: None,
            });
        }
        let command = OpenCardCommand::parse(body, max_bytes)?;
        if fresh && !self.services.catalogue.offers(command.product_id) {
            return Err(Rejection {
                reason: RejectionReason::UnknownProduct,
                detail: format!("the partner does not offer product {}", command.product_id),
                request_id: Some(command.request_id.to_string()),
            });
        }
        Ok(Request {
            id: command.request_id.clone(),
            product_id: command.product_id,
            command: Some(command),
        })
    }

    /// Calls the partner, stage after stage, until a decision needs a
    /// message: a scheduled step or the outcome.
    async fn advance(&self, request: &Request, progress: Progress) -> Next {
        let received_at_ms = progress.received_at_ms;
        let mut progress = progress;
        let mut stage = match stage_to_run(&progress, unix_ms()) {
            Ok(stage) => stage,
            Err(failure) => {
                return Next::Finish {
                    outcome: Outcome::Failed(failure),
                    received_at_ms,
                };
            }
        };
        loop {
            let Some(reply) = self.call_partner(stage, request).await else {
                return Next::HandBack;
            };
            tracing::debug!(
                call = stage.as_str(),
                reply = reply.label(),
                code = ?refusal_code(&reply),
                "partner answered"
            );
            match decide(stage, reply, &progress, &self.services.plan, unix_ms()) {
                Decision::RunNow(next) => {
                    stage = next.stage;
                    progress = next;
                }
                Decision::CheckLater {
                    progress,
                    delay,
                    reason,
                } => {
                    metrics::status_check_scheduled(stage.as_str(), reason.label());
                    tracing::debug!(reason = reason.label(), ?delay, "status check scheduled");
                    return Next::Schedule { progress, delay };
                }
                Decision::RetryLater {
                    progress,
                    delay,
                    reason,
                } => {
                    metrics::retry(stage.as_str(), reason);
                    tracing::debug!(reason, ?delay, "retry scheduled");
                    return Next::Schedule { progress, delay };
                }
                Decision::Issue { card, exp } => {
                    let outcome = Outcome::Issued { card, exp };
                    return Next::Finish {
                        outcome,
                        received_at_ms,
                    };
                }
                Decision::Fail(failure) => {
                    return Next::Finish {
                        outcome: Outcome::Failed(failure),
                        received_at_ms,
                    };
                }
            }
        }
    }

    /// One partner call, or `None` when shutdown or a lost session ended the
    /// wait for the breaker.
    async fn call_partner(&self, stage: Stage, request: &Request) -> Option<Reply> {
        let services = &self.services;
        let command = match (stage, &request.command) {
            (Stage::OpenCard, Some(command)) => Some(command),
            _ => None,
        };
        let _admission = match command {
            Some(_) => Some(self.unless_stopped(services.breaker.admit()).await?),
            None => None,
        };
        let _slot = self
            .unless_stopped(services.partner_slots.acquire())
            .await?
            .ok()?;
        let reply = match command {
            Some(command) => services.partner.open_card(command).await,
            None => services.partner.card_status(&request.id).await,
        };
        match command {
            Some(_) => services.breaker.record_open_card(&reply),
            None => services.breaker.record_status_check(&reply),
        }
        Some(reply)
    }

    async fn settle(&self, delivery: &Delivery, request: &Request, next: Next) -> Settle {
        match next {
            Next::Schedule { progress, delay } => self.schedule(delivery, &progress, delay).await,
            Next::Finish {
                outcome,
                received_at_ms,
            } => {
                let settle = self.finish(delivery, request, &outcome).await;
                if settle == Settle::Ack {
                    let (label, reason) = outcome.labels();
                    let age = Duration::from_millis(unix_ms().saturating_sub(received_at_ms));
                    metrics::outcome(label, reason, age);
                    log_outcome(&outcome, age);
                }
                settle
            }
            Next::HandBack => Settle::HandBack,
        }
    }

    async fn schedule(&self, delivery: &Delivery, progress: &Progress, delay: Duration) -> Settle {
        let topology = &self.services.topology;
        let (exchange, routing_key) = topology.route_after(progress.stage, delay);
        let original = delivery.properties.headers().as_ref();
        let properties =
            carried_properties(&delivery.properties).with_headers(progress.to_headers(original));
        self.publish(exchange, &routing_key, &delivery.data, properties)
            .await
    }

    async fn finish(&self, delivery: &Delivery, request: &Request, outcome: &Outcome) -> Settle {
        let body = outcome.body(
            request.id.as_str(),
            Some(request.product_id),
            self.services.issuance.event_card_number,
            SystemTime::now(),
        );
        let properties = event_properties(delivery, request.id.as_str(), outcome);
        let exchange = &self.services.topology.events_exchange;
        self.publish(exchange, outcome.routing_key(), &body, properties)
            .await
    }

    /// Answers a command that cannot be served with `card.failed` (when its
    /// request id can be read), then parks it.
    async fn reject(&self, delivery: &Delivery, rejection: Rejection) -> Settle {
        let reason = rejection.reason;
        if let Some(request_id) = &rejection.request_id {
            // Debug-quoted: a rejected id may hold control characters.
            Span::current().record("request_id", field::debug(request_id));
            let outcome = Outcome::Failed(Failure {
                reason: match reason {
                    RejectionReason::UnknownProduct => FailureReason::UnknownProduct,
                    _ => FailureReason::InvalidCommand,
                },
                code: None,
                message: Some(rejection.detail.clone()),
                retryable: false,
            });
            let body = outcome.body(
                request_id,
                None,
                self.services.issuance.event_card_number,
                SystemTime::now(),
            );
            let properties = event_properties(delivery, request_id, &outcome);
            let exchange = &self.services.topology.events_exchange;
            if self
                .publish(exchange, outcome.routing_key(), &body, properties)
                .await
                == Settle::HandBack
            {
                return Settle::HandBack;
            }
            let (label, event_reason) = outcome.labels();
            metrics::outcome(label, event_reason, Duration::ZERO);
        }
        self.park(delivery, reason.as_str(), &rejection.detail)
            .await
    }

    /// Moves the message, headers and all, to the dead-letter queue with the
    /// reason. Our progress headers stay, so moving it back resumes it at
    /// the stage it had reached.
    async fn park(&self, delivery: &Delivery, reason: &'static str, detail: &str) -> Settle {
        let topology = &self.services.topology;
        let mut table = without_delivery_count(delivery.properties.headers().as_ref());
        let text = |value: &str| AMQPValue::LongString(value.into());
        table.insert(headers::REASON.into(), text(reason));
        table.insert(headers::DETAIL.into(), text(detail));
        table.insert(
            headers::PARKED_FROM.into(),
            text(&delivery.routing_key.to_string()),
        );
        let properties = carried_properties(&delivery.properties).with_headers(table);

        let queue = &topology.dead_letter_queue;
        let settle = self.publish("", queue, &delivery.data, properties).await;
        if settle == Settle::Ack {
            metrics::dead_lettered(reason);
            tracing::warn!(reason, detail, "message parked in {queue}");
        }
        settle
    }

    /// Publishes until the broker confirms, retrying with backoff while the
    /// session lives; a failure never acknowledges the delivery.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Settle {
        let mut wait = Duration::from_millis(100);
        loop {
            let result = self
                .publisher
                .publish_until_confirmed(
                    exchange,
                    routing_key,
                    body,
                    properties.clone(),
                    &self.session_lost,
                )
                .await;
            let Err(error) = result else {
                return Settle::Ack;
            };
            if matches!(error, PublishError::Unroutable { .. }) && self.is_ours(exchange) {
                // A queue of ours is gone (deleted by hand, say): a new
                // session declares the topology again.
                tracing::warn!(%error, "a queue of the worker's own is missing; starting a new session");
                self.session_lost.cancel();
                return Settle::HandBack;
            }
            if self.session_lost.is_cancelled() || self.shutdown.is_cancelled() {
                tracing::warn!(%error, "publish failed; the delivery goes back to its queue");
                return Settle::HandBack;
            }
            tracing::warn!(%error, ?wait, "publish failed; trying again");
            let jittered = wait.mul_f64(0.5 + fastrand::f64());
            if self
                .unless_stopped(tokio::time::sleep(jittered))
                .await
                .is_none()
            {
                return Settle::HandBack;
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Whether every route through `exchange` ends in a queue the worker
    /// declares itself (unlike the events exchange, where binding is the
    /// consumers' job unless the worker has an events queue of its own).
    fn is_ours(&self, exchange: &str) -> bool {
        let topology = &self.services.topology;
        exchange.is_empty()
            || exchange == topology.delay_exchange
            || exchange == topology.resume_exchange
            || (exchange == topology.events_exchange && topology.events_queue.is_some())
    }

    /// Runs `wait` unless the session is lost or shutdown begins first.
    async fn unless_stopped<T>(&self, wait: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            // A wait that is already over wins: work that can go on, does.
            biased;
            value = wait => Some(value),
            () = self.session_lost.cancelled() => None,
            () = self.shutdown.cancelled() => None,
        }
    }
}

fn refusal_code(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Refused { code, .. } => Some(code.to_string()),
        _ => None,
    }
}

fn log_outcome(outcome: &Outcome, age: Duration) {
    let age_ms = age.as_millis() as u64;
    match outcome {
        Outcome::Issued { card, .. } => {
            tracing::info!(card_last4 = %card.last_four(), age_ms, "card issued");
        }
        Outcome::Failed(failure) => tracing::info!(
            reason = failure.reason.as_str(),
            code = failure.code.as_deref(),
            retryable = failure.retryable,
            age_ms,
            "card request failed"
        ),
    }
}

/// The properties a copy of the message keeps: content and correlation, not
/// the upstream's expiration (it would cut short a delay) nor its user id
/// (the broker rejects a user id that is not ours).
fn carried_properties(original: &BasicProperties) -> BasicProperties {
    let mut properties = BasicProperties::default().with_delivery_mode(2);
    if let Some(value) = original.content_type() {
        properties = properties.with_content_type(value.clone());
    }
    if let Some(value) = original.content_encoding() {
        properties = properties.with_content_encoding(value.clone());
    }
    if let Some(value) = original.correlation_id() {
        properties = properties.with_correlation_id(value.clone());
    }
    if let Some(value) = original.message_id() {
        properties = properties.with_message_id(value.clone());
    }
    if let Some(value) = original.reply_to() {
        properties = properties.with_reply_to(value.clone());
    }
    if let Some(value) = original.timestamp() {
        properties = properties.with_timestamp(*value);
    }
    if let Some(value) = original.app_id() {
        properties = properties.with_app_id(value.clone());
    }
    properties
}

fn event_properties(delivery: &Delivery, request_id: &str, outcome: &Outcome) -> BasicProperties {
    let correlation_id = delivery
        .properties
        .correlation_id()
        .clone()
        .unwrap_or_else(|| ShortString::from(request_id));
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_type(outcome.routing_key().into())
        .with_message_id(outcome.message_id(request_id).into())
        .with_correlation_id(correlation_id)
        .with_timestamp(unix_ms() / 1000)
        .with_app_id("card-issuer".into())
}

/// A copy of the headers without RabbitMQ's delivery count, which belongs to
/// the queue the message leaves.
fn without_delivery_count(original: Option<&FieldTable>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in original.into_iter().flat_map(|table| table.inner()) {
        if name.as_str() != headers::DELIVERY_COUNT {
            table.insert(name.clone(), value.clone());
        }
    }
    table
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or_default()
}
