//! Publishing that counts only what the broker confirmed.
//!
//! Every publish is persistent (the caller sets delivery mode 2), mandatory
//! and confirmed. A message the broker returns as unroutable, a nack, or no
//! confirm within the timeout is a failure: the delivery that caused the
//! publish is then not acknowledged.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio_util::sync::CancellationToken;

use super::BrokerError;
use crate::metrics;

/// A publish that did not reach a queue, or that we cannot be sure of.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No queue is bound for the routing key; the broker handed it back.
    #[error(
        "nothing is bound to {exchange} for {routing_key}, so the broker returned the message; \
         bind a queue for it"
    )]
    Unroutable {
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
    },
    /// The broker refused to take responsibility for the message.
    #[error("the broker refused the message (nack) for {exchange}")]
    Nacked {
        /// The exchange.
        exchange: String,
    },
    /// No confirm arrived in time; the broker may be blocked or gone.
    #[error("no confirm from the broker within {0:?}")]
    Unconfirmed(Duration),
    /// The channel or connection failed.
    #[error("the publishing channel failed")]
    Channel(#[source] lapin::Error),
}

impl PublishError {
    fn label(&self) -> &'static str {
        match self {
            Self::Unroutable { .. } => "unroutable",
            Self::Nacked { .. } => "nacked",
            Self::Unconfirmed(_) => "unconfirmed",
            Self::Channel(_) => "channel",
        }
    }
}

/// A channel in confirm mode, shared by every handler of one broker session.
pub struct Publisher {
    channel: Channel,
    confirm_timeout: Duration,
}

impl Publisher {
    /// Opens a confirm-mode channel on `connection`.
    pub async fn open(
        connection: &Connection,
        confirm_timeout: Duration,
    ) -> Result<Self, BrokerError> {
        let setup = |what: &str| {
            let what = what.to_owned();
            move |source| BrokerError::Setup { what, source }
        };
        let channel = connection
            .create_channel()
            .await
            .map_err(setup("open a publishing channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(setup("turn on publisher confirms"))?;
        Ok(Self {
            channel,
            confirm_timeout,
        })
    }

    /// Publishes one message and waits for the broker's confirm, for at most
    /// the confirm timeout.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let never = CancellationToken::new();
        self.publish_patiently(
            exchange,
            routing_key,
            body,
            properties,
            Patience::Once,
            &never,
        )
        .await
    }

    /// Publishes one message and waits for its confirm until `stop` fires.
    ///
    /// A confirm late by the confirm timeout counts as a failed publish (the
    /// metric, a warning), but the message is not sent again: the broker may
    /// well have it (a memory alarm holds confirms back), and each copy sent
    /// meanwhile would start a chain of its own. The delivery behind it stays
    /// unacknowledged all along.
    pub async fn publish_until_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        stop: &CancellationToken,
    ) -> Result<(), PublishError> {
        self.publish_patiently(
            exchange,
            routing_key,
            body,
            properties,
            Patience::UntilStopped,
            stop,
        )
        .await
    }

    async fn publish_patiently(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        patience: Patience,
        stop: &CancellationToken,
    ) -> Result<(), PublishError> {
        let result = self
            .send_and_confirm(exchange, routing_key, body, properties, patience, stop)
            .await;
        if let Err(error) = &result {
            metrics::publish_failure(error.label());
        }
        result
    }

    async fn send_and_confirm(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        patience: Patience,
        stop: &CancellationToken,
    ) -> Result<(), PublishError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let sent = tokio::time::timeout(
            self.confirm_timeout,
            self.channel.basic_publish(
                exchange.into(),
                routing_key.into(),
                options,
                body,
                properties,
            ),
        );
        let mut confirm = sent
            .await
            .map_err(|_| PublishError::Unconfirmed(self.confirm_timeout))?
            .map_err(PublishError::Channel)?;
        let confirmation = loop {
            tokio::select! {
                confirmation = &mut confirm => break confirmation.map_err(PublishError::Channel)?,
                () = tokio::time::sleep(self.confirm_timeout) => {
                    if patience == Patience::Once {
                        return Err(PublishError::Unconfirmed(self.confirm_timeout));
                    }
                    metrics::publish_failure("unconfirmed");
                    tracing::warn!(
                        waited = ?self.confirm_timeout,
                        exchange,
                        "no confirm from the broker yet; waiting for it, not sending again"
                    );
                }
                () = stop.cancelled() => return Err(PublishError::Unconfirmed(self.confirm_timeout)),
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => Err(PublishError::Unroutable {
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
            }),
            Confirmation::Nack(_) => Err(PublishError::Nacked {
                exchange: exchange.to_owned(),
            }),
            // Confirms are selected on open, so the broker always answers.
            Confirmation::NotRequested => Ok(()),
        }
    }
}

/// How long a publish waits for its confirm.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// The confirm timeout, then it has failed.
    Once,
    /// Until told to stop, warning each time the timeout passes.
    UntilStopped,
}
