//! Publishing that counts only what the broker confirmed.
//!
//! Every publish is persistent (the caller sets delivery mode 2), mandatory
//! and confirmed. A message the broker returns as unroutable, a nack, or no
//! confirm within the timeout is a failure: the delivery that caused the
//! publish is then not acknowledged.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

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

    /// Publishes one message and waits for the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let result = self
            .publish_once(exchange, routing_key, body, properties)
            .await;
        if let Err(error) = &result {
            metrics::publish_failure(error.label());
        }
        result
    }

    async fn publish_once(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirmed = async {
            self.channel
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
        let confirmation = tokio::time::timeout(self.confirm_timeout, confirmed)
            .await
            .map_err(|_| PublishError::Unconfirmed(self.confirm_timeout))?
            .map_err(PublishError::Channel)?;
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
