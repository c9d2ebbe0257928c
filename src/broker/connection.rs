//! Opening a connection to the broker, `amqp://` or `amqps://`.

use std::path::Path;

use lapin::tcp::OwnedTLSConfig;
use lapin::uri::AMQPUri;
use lapin::{Connect, Connection, ConnectionProperties};

use crate::secret::Secret;
use crate::settings::redact_url;

/// Heartbeat interval asked for when the URL does not set one, in seconds:
/// a broker that stops answering is noticed within about twice this.
const HEARTBEAT_SECONDS: u16 = 10;

/// How long one connection attempt may take, in milliseconds, when the URL
/// does not say.
const CONNECTION_TIMEOUT_MS: u64 = 10_000;

/// The broker could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The URL does not parse.
    #[error("{url} is not a usable AMQP URL: {why}")]
    Url {
        /// The URL with its password hidden.
        url: String,
        /// The parser's complaint.
        why: String,
    },
    /// The CA file for `amqps://` cannot be read.
    #[error("cannot read the broker CA file {path}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Connecting failed (the worker's supervisor retries with backoff).
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL with its password hidden.
        url: String,
        /// Why.
        #[source]
        source: lapin::Error,
    },
    /// Opening a channel or declaring the topology failed.
    #[error("cannot {what}")]
    Setup {
        /// What was being done, e.g. "declare queue card-issuer.open-card".
        what: String,
        /// Why.
        #[source]
        source: lapin::Error,
    },
}

/// Connects to one broker. `name` shows in the management UI's connection
/// list, so operators can tell the consumer and publisher connections apart.
pub async fn connect(
    url: &Secret<String>,
    ca_file: Option<&Path>,
    name: &str,
) -> Result<Connection, BrokerError> {
    let shown = redact_url(url.expose());
    let mut uri: AMQPUri = url
        .expose()
        .parse()
        .map_err(|why: String| BrokerError::Url {
            url: shown.clone(),
            why: without_url(&why, url),
        })?;
    uri.query.heartbeat.get_or_insert(HEARTBEAT_SECONDS);
    uri.query
        .connection_timeout
        .get_or_insert(CONNECTION_TIMEOUT_MS);

    let tls = match ca_file {
        Some(path) => OwnedTLSConfig {
            identity: None,
            cert_chain: Some(std::fs::read_to_string(path).map_err(|source| {
                BrokerError::CaFile {
                    path: path.display().to_string(),
                    source,
                }
            })?),
        },
        None => OwnedTLSConfig::default(),
    };
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let runtime = lapin::runtime::default_runtime().map_err(|source| BrokerError::Connect {
        url: shown.clone(),
        source,
    })?;
    uri.connect_with_config(properties, tls, runtime)
        .await
        .map_err(|source| BrokerError::Connect { url: shown, source })
}

/// A parser complaint, unless it quotes the URL, which may hold a password.
fn without_url(why: &str, url: &Secret<String>) -> String {
    let quoted = url
        .expose()
        .split(['/', '@', ':'])
        .any(|part| part.len() > 3 && why.contains(part));
    if quoted {
        "it does not parse".to_owned()
    } else {
        why.to_owned()
    }
}
