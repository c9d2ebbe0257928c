//! Typed settings, read from flags, a TOML file and the environment.
//!
//! Each group is loaded only by the subcommands that need it, and each value
//! is checked once, here, so the rest of the program holds only good ones.

mod args;
mod layers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use args::{
    BrokerArgs, ConfigArgs, IssuanceArgs, PartnerArgs, TopologyArgs, WorkerArgs, all_setting_ids,
    ids_of, run_groups,
};
pub use layers::{Layers, display_name};

use crate::secret::Secret;

/// A setting that cannot be used; the message names it as the user set it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A setting without a default was not given.
    #[error("{setting} is not set")]
    Missing {
        /// The setting, as its variable and flag.
        setting: String,
    },
    /// A setting's value does not parse or is out of range.
    #[error("{setting}: {why}")]
    Invalid {
        /// The setting, as its variable and flag.
        setting: String,
        /// What is wrong with it.
        why: String,
    },
    /// The `--config` file cannot be read.
    #[error("cannot read the config file {path}")]
    ConfigFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML.
    #[error("the config file {path} is not valid TOML: {why}")]
    ConfigSyntax {
        /// The file.
        path: String,
        /// The parser's complaint.
        why: String,
    },
    /// The `--config` file names a setting that does not exist.
    #[error("the config file {path} sets `{key}`, which is not a setting of this command")]
    UnknownKey {
        /// The file.
        path: String,
        /// The unknown key.
        key: String,
    },
    /// A `..._FILE` setting names a file that cannot be read.
    #[error("{setting}: cannot read {path}")]
    SecretFile {
        /// The setting, as its variable and flag.
        setting: String,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The kind of queue the worker declares for its commands, status checks and
/// dead letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueType {
    /// Replicated, the default; required on a cluster.
    Quorum,
    /// A single-node queue, for brokers where quorum queues are not wanted.
    Classic,
}

impl std::str::FromStr for QueueType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "quorum" => Ok(Self::Quorum),
            "classic" => Ok(Self::Classic),
            other => Err(format!("`{other}` is neither `quorum` nor `classic`")),
        }
    }
}

/// Broker settings.
#[derive(Clone)]
pub struct BrokerSettings {
    /// The brokers to try, in order; they hold credentials.
    pub urls: Vec<Secret<String>>,
    /// A private CA for `amqps://`.
    pub ca_file: Option<PathBuf>,
    /// Where commands come in.
    pub commands_exchange: String,
    /// Where events go out.
    pub events_exchange: String,
    /// The first part of the worker's own queue names.
    pub queue_prefix: String,
    /// The kind of the command, status-check and dead-letter queues.
    pub queue_type: QueueType,
    /// How long a publish may wait for its confirm.
    pub publish_timeout: Duration,
    /// A queue for events that the worker declares itself, if any.
    pub events_queue: Option<String>,
}

/// The contract's command exchange.
pub const DEFAULT_COMMANDS_EXCHANGE: &str = "cards.commands";
/// The contract's events exchange.
pub const DEFAULT_EVENTS_EXCHANGE: &str = "cards.events";
/// The first part of the worker's queue names by default.
pub const DEFAULT_QUEUE_PREFIX: &str = "card-issuer";

impl BrokerSettings {
    /// Reads how to reach the broker; the names are the contract's defaults.
    pub fn load_connection(layers: &Layers) -> Result<Self, SettingsError> {
        let listed = layers
            .secret("amqp_url")?
            .ok_or_else(|| SettingsError::Missing {
                setting: display_name("amqp_url"),
            })?;
        let urls: Vec<Secret<String>> = listed
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| Secret::new(url.to_owned()))
            .collect();
        if let Some(bad) = urls.iter().find(|url| !is_amqp_url(url.expose())) {
            return Err(SettingsError::Invalid {
                setting: display_name("amqp_url"),
                why: format!(
                    "{} is not an amqp:// or amqps:// URL",
                    redact_url(bad.expose())
                ),
            });
        }
        if urls.is_empty() {
            return Err(SettingsError::Missing {
                setting: display_name("amqp_url"),
            });
        }
        Ok(Self {
            urls,
            ca_file: layers.text("amqp_ca_file").map(PathBuf::from),
            publish_timeout: at_least(layers, "publish_timeout", Duration::from_millis(100))?,
            commands_exchange: DEFAULT_COMMANDS_EXCHANGE.to_owned(),
            events_exchange: DEFAULT_EVENTS_EXCHANGE.to_owned(),
            queue_prefix: DEFAULT_QUEUE_PREFIX.to_owned(),
            queue_type: QueueType::Quorum,
            events_queue: None,
        })
    }

    /// Reads the broker group and the names group.
    pub fn load(layers: &Layers) -> Result<Self, SettingsError> {
        Ok(Self {
            commands_exchange: layers.required("commands_exchange")?,
            events_exchange: layers.required("events_exchange")?,
            queue_prefix: layers.required("queue_prefix")?,
            queue_type: layers.parsed("queue_type")?,
            events_queue: layers.text("events_queue").filter(|name| !name.is_empty()),
            ..Self::load_connection(layers)?
        })
    }

    /// The same broker, with every name under `prefix`: `<prefix>.commands`,
    /// `<prefix>.events` and queues `<prefix>.*`. For the demo and
    /// measurement runs, which must never meet a real worker's messages.
    pub fn with_own_names(self, prefix: &str) -> Self {
        Self {
            commands_exchange: format!("{prefix}.commands"),
            events_exchange: format!("{prefix}.events"),
            queue_prefix: prefix.to_owned(),
            events_queue: None,
            ..self
        }
    }
}

/// Partner settings.
#[derive(Clone)]
pub struct PartnerSettings {
    /// The API's base URL.
    pub url: String,
    /// Basic-auth user name.
    pub username: Option<Secret<String>>,
    /// Basic-auth password.
    pub password: Option<Secret<String>>,
    /// A private CA for `https://`.
    pub ca_file: Option<PathBuf>,
    /// One request's limit.
    pub timeout: Duration,
    /// The cap on calls a second; 0 is none.
    pub calls_per_second: u32,
    /// How often products are fetched again.
    pub products_refresh: Duration,
    /// Open-card calls the breaker watches; half of them failing opens it.
    pub breaker_window: u32,
    /// How long the breaker stays open at first.
    pub breaker_open: Duration,
}

impl PartnerSettings {
    /// Reads the partner group.
    pub fn load(layers: &Layers) -> Result<Self, SettingsError> {
        let url = layers.required("partner_url")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SettingsError::Invalid {
                setting: display_name("partner_url"),
                why: format!("`{}` is not an http:// or https:// URL", redact_url(&url)),
            });
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            username: layers.secret("partner_username")?,
            password: layers.secret("partner_password")?,
            ca_file: layers.text("partner_ca_file").map(PathBuf::from),
            timeout: at_least(layers, "partner_timeout", Duration::from_millis(100))?,
            calls_per_second: layers.parsed("partner_calls_per_second")?,
            products_refresh: layers.duration("products_refresh")?,
            breaker_window: at_least_one(layers, "breaker_window")?,
            breaker_open: layers.duration("breaker_open")?,
        })
    }
}

/// Whether `card.issued` carries the whole card number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardNumberInEvents {
    /// `cardNumber` and `maskedCardNumber`.
    Full,
    /// `maskedCardNumber` only.
    Masked,
}

impl std::str::FromStr for CardNumberInEvents {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "full" => Ok(Self::Full),
            "masked" => Ok(Self::Masked),
            other => Err(format!("`{other}` is neither `full` nor `masked`")),
        }
    }
}

/// How requests are carried to their outcome.
#[derive(Clone, Debug)]
pub struct IssuanceSettings {
    /// Waits before each status check; the last repeats.
    pub status_check_delays: Vec<Duration>,
    /// Waits before each retry; the last repeats.
    pub retry_delays: Vec<Duration>,
    /// The overall limit on one request.
    pub deadline: Duration,
    /// Whether events carry the whole card number.
    pub event_card_number: CardNumberInEvents,
    /// The largest command body accepted.
    pub max_command_bytes: usize,
    /// Unsettled deliveries of one message before it is parked.
    pub delivery_limit: u32,
    /// Handler failures on one message before it is parked.
    pub handler_failure_limit: u32,
}

impl IssuanceSettings {
    /// Reads the issuance group.
    pub fn load(layers: &Layers) -> Result<Self, SettingsError> {
        Ok(Self {
            status_check_delays: layers.durations("status_check_delays")?,
            retry_delays: none_zero(layers, "retry_delays")?,
            deadline: at_least(layers, "deadline", Duration::from_secs(1))?,
            event_card_number: layers.parsed("event_card_number")?,
            max_command_bytes: {
                let bytes: usize = layers.parsed("max_command_bytes")?;
                if bytes < 256 {
                    return Err(SettingsError::Invalid {
                        setting: display_name("max_command_bytes"),
                        why: "must be at least 256: a command is larger than that".into(),
                    });
                }
                bytes
            },
            delivery_limit: at_least_one(layers, "delivery_limit")?,
            handler_failure_limit: at_least_one(layers, "handler_failure_limit")?,
        })
    }

    /// The longest retry delay: the pause after the partner rejects our
    /// credentials.
    pub fn longest_retry_delay(&self) -> Duration {
        self.retry_delays.iter().copied().max().unwrap_or_default()
    }
}

/// How the worker process runs.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Messages handled at once, and each consumer's prefetch.
    pub concurrency: u16,
    /// Where the HTTP endpoints listen.
    pub metrics_addr: SocketAddr,
    /// How long in-flight work may take after SIGTERM.
    pub shutdown_grace: Duration,
}

impl WorkerSettings {
    /// Reads the worker group.
    pub fn load(layers: &Layers) -> Result<Self, SettingsError> {
        let concurrency: u16 = layers.parsed("concurrency")?;
        if concurrency == 0 {
            return Err(SettingsError::Invalid {
                setting: display_name("concurrency"),
                why: "must be at least 1".into(),
            });
        }
        Ok(Self {
            concurrency,
            metrics_addr: layers.parsed("metrics_addr")?,
            shutdown_grace: layers.duration("shutdown_grace")?,
        })
    }
}

/// Everything `card-issuer run` needs.
#[derive(Clone)]
pub struct Settings {
    /// The broker.
    pub broker: BrokerSettings,
    /// The partner.
    pub partner: PartnerSettings,
    /// The request lifecycle.
    pub issuance: IssuanceSettings,
    /// The process.
    pub worker: WorkerSettings,
}

impl Settings {
    /// Settings from `run`'s flags, the environment and the defaults, with
    /// no config file: how the demo and the tests configure a worker.
    pub fn from_flags<S: AsRef<str>>(flags: &[S]) -> Result<Self, SettingsError> {
        let command = run_groups(clap::Command::new("card-issuer run").no_binary_name(true));
        let matches = command
            .try_get_matches_from(flags.iter().map(AsRef::as_ref))
            .map_err(|error| SettingsError::Invalid {
                setting: "flags".into(),
                why: error.to_string(),
            })?;
        Self::load(&Layers::new(&matches, None, &[])?)
    }

    /// Reads every group.
    pub fn load(layers: &Layers) -> Result<Self, SettingsError> {
        Ok(Self {
            broker: BrokerSettings::load(layers)?,
            partner: PartnerSettings::load(layers)?,
            issuance: IssuanceSettings::load(layers)?,
            worker: WorkerSettings::load(layers)?,
        })
    }
}

/// A duration no shorter than `least`; zero would make the worker spin or
/// give up at once.
fn at_least(layers: &Layers, id: &str, least: Duration) -> Result<Duration, SettingsError> {
    let value = layers.duration(id)?;
    if value < least {
        return Err(SettingsError::Invalid {
            setting: display_name(id),
            why: format!("must be at least {}", humantime::format_duration(least)),
        });
    }
    Ok(value)
}

/// Retry delays, none of them zero: a retry without a wait would hammer a
/// partner that just said it cannot answer.
fn none_zero(layers: &Layers, id: &str) -> Result<Vec<Duration>, SettingsError> {
    let delays = layers.durations(id)?;
    if delays.iter().any(Duration::is_zero) {
        return Err(SettingsError::Invalid {
            setting: display_name(id),
            why: "no retry delay may be zero".into(),
        });
    }
    Ok(delays)
}

fn at_least_one(layers: &Layers, id: &str) -> Result<u32, SettingsError> {
    let value: u32 = layers.parsed(id)?;
    if value == 0 {
        return Err(SettingsError::Invalid {
            setting: display_name(id),
            why: "must be at least 1".into(),
        });
    }
    Ok(value)
}

fn is_amqp_url(url: &str) -> bool {
    url.starts_with("amqp://") || url.starts_with("amqps://")
}

/// A URL with any password between `:` and `@` replaced, for error messages
/// and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[a URL that cannot be shown]".to_owned();
    };
    // The user part ends at the last `@`, even when a password holds an
    // unescaped `/` or `?`, as base64 passwords do.
    match rest.rsplit_once('@') {
        Some((user_info, host_and_path)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host_and_path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
