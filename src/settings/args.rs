//! The settings as flags and environment variables: what `--help` shows.
//!
//! Every setting is read as text here and typed in [`super`], after the
//! `--config` file has had its say. The structs do not derive `Debug`: some
//! fields hold passwords.

use clap::Args;

/// The TOML file that sits between flags and the environment.
#[derive(Args, Clone)]
pub struct ConfigArgs {
    /// A TOML file of settings, keyed by the flag names with underscores
    /// (`partner_timeout = "5s"`). Flags win over it; it wins over the
    /// environment.
    #[arg(long, env = "CARD_ISSUER_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<String>,
}

/// How to reach the broker.
#[derive(Args, Clone)]
#[command(next_help_heading = "Broker")]
pub struct BrokerArgs {
    /// The broker's URL, `amqp://` or `amqps://`; several, comma-separated,
    /// are tried in turn when one is lost.
    #[arg(
        long,
        env = "CARD_ISSUER_AMQP_URL",
        value_name = "URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub amqp_url: Option<String>,

    /// A file holding the broker URL(s), instead of CARD_ISSUER_AMQP_URL.
    #[arg(long, env = "CARD_ISSUER_AMQP_URL_FILE", value_name = "FILE")]
    pub amqp_url_file: Option<String>,

    /// A PEM file of the private CA that signed the broker's certificate,
    /// for `amqps://`.
    #[arg(long, env = "CARD_ISSUER_AMQP_CA_FILE", value_name = "FILE")]
    pub amqp_ca_file: Option<String>,

    /// How long to wait for the broker to confirm a publish before counting it
    /// as failed.
    #[arg(long, env = "CARD_ISSUER_PUBLISH_TIMEOUT", default_value = "10s")]
    pub publish_timeout: Option<String>,
}

/// The names the worker uses on the broker.
#[derive(Args, Clone)]
#[command(next_help_heading = "Broker names")]
pub struct TopologyArgs {
    /// The topic exchange upstream services publish open-card commands to.
    #[arg(
        long,
        env = "CARD_ISSUER_COMMANDS_EXCHANGE",
        default_value = super::DEFAULT_COMMANDS_EXCHANGE
    )]
    pub commands_exchange: Option<String>,

    /// The topic exchange `card.issued` and `card.failed` events go to.
    #[arg(
        long,
        env = "CARD_ISSUER_EVENTS_EXCHANGE",
        default_value = super::DEFAULT_EVENTS_EXCHANGE
    )]
    pub events_exchange: Option<String>,

    /// The first part of every queue and internal exchange name the worker
    /// owns: `<prefix>.open-card`, `<prefix>.dead-letter`, and so on.
    #[arg(long, env = "CARD_ISSUER_QUEUE_PREFIX", default_value = super::DEFAULT_QUEUE_PREFIX)]
    pub queue_prefix: Option<String>,

    /// `quorum` or `classic`, for the command, status-check and dead-letter
    /// queues. Delay queues are always quorum queues: classic ones lose
    /// expiring messages across a broker restart.
    #[arg(long, env = "CARD_ISSUER_QUEUE_TYPE", default_value = "quorum")]
    pub queue_type: Option<String>,

    /// A durable queue the worker declares and binds to both events, for
    /// deployments where nothing else binds one; unset, binding a queue is
    /// the event consumers' job (an event nobody receives is kept and retried).
    #[arg(long, env = "CARD_ISSUER_EVENTS_QUEUE")]
    pub events_queue: Option<String>,
}

/// How to reach the partner.
#[derive(Args, Clone)]
#[command(next_help_heading = "Partner")]
pub struct PartnerArgs {
    /// The partner API's base URL, `http://` or `https://`.
    #[arg(
        long,
        env = "CARD_ISSUER_PARTNER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub partner_url: Option<String>,

    /// The basic-auth user name the partner issued.
    #[arg(long, env = "CARD_ISSUER_PARTNER_USERNAME", hide_env_values = true)]
    pub partner_username: Option<String>,

    /// A file holding the user name, instead of CARD_ISSUER_PARTNER_USERNAME.
    #[arg(long, env = "CARD_ISSUER_PARTNER_USERNAME_FILE", value_name = "FILE")]
    pub partner_username_file: Option<String>,

    /// The basic-auth password. Prefer the _FILE form: a flag shows in `ps`.
    #[arg(long, env = "CARD_ISSUER_PARTNER_PASSWORD", hide_env_values = true)]
    pub partner_password: Option<String>,

    /// A file holding the password, instead of CARD_ISSUER_PARTNER_PASSWORD.
    #[arg(long, env = "CARD_ISSUER_PARTNER_PASSWORD_FILE", value_name = "FILE")]
    pub partner_password_file: Option<String>,

    /// A PEM file of the private CA that signed the partner's certificate.
    #[arg(long, env = "CARD_ISSUER_PARTNER_CA_FILE", value_name = "FILE")]
    pub partner_ca_file: Option<String>,

    /// One HTTP request's limit, connection included.
    #[arg(long, env = "CARD_ISSUER_PARTNER_TIMEOUT", default_value = "10s")]
    pub partner_timeout: Option<String>,

    /// The most partner calls a second this process makes, open-card and
    /// status checks together; 0 for no cap. With replicas, divide the
    /// partner's quota among them.
    #[arg(
        long,
        env = "CARD_ISSUER_PARTNER_CALLS_PER_SECOND",
        default_value = "50"
    )]
    pub partner_calls_per_second: Option<String>,

    /// How often the product list is fetched again.
    #[arg(long, env = "CARD_ISSUER_PRODUCTS_REFRESH", default_value = "5m")]
    pub products_refresh: Option<String>,

    /// How many of the last open-card calls the circuit breaker watches:
    /// when half of them failed transiently (1007, 1009, 5xx, timeouts), new
    /// open-card calls pause.
    #[arg(long, env = "CARD_ISSUER_BREAKER_WINDOW", default_value = "20")]
    pub breaker_window: Option<String>,

    /// How long the breaker stays open before one trial call; it doubles on
    /// each failed trial, up to ten times this, and a longer `Retry-After`
    /// from the partner wins.
    #[arg(long, env = "CARD_ISSUER_BREAKER_OPEN", default_value = "15s")]
    pub breaker_open: Option<String>,
}

/// How a card request is carried through to its outcome.
#[derive(Args, Clone)]
#[command(next_help_heading = "Issuance")]
pub struct IssuanceArgs {
    /// Waits before each status check, comma-separated; the last repeats.
    #[arg(
        long,
        env = "CARD_ISSUER_STATUS_CHECK_DELAYS",
        default_value = "2s,5s,15s,30s,1m,5m"
    )]
    pub status_check_delays: Option<String>,

    /// Waits before retrying after a transient failure, comma-separated; the
    /// last repeats. The longest is also the pause after rejected credentials.
    #[arg(long, env = "CARD_ISSUER_RETRY_DELAYS", default_value = "1s,5s,30s,2m")]
    pub retry_delays: Option<String>,

    /// After this long without a final answer, the request fails with
    /// `deadline_exceeded`.
    #[arg(long, env = "CARD_ISSUER_DEADLINE", default_value = "24h")]
    pub deadline: Option<String>,

    /// `full` or `masked`: whether `card.issued` carries the whole card number
    /// or only `maskedCardNumber`.
    #[arg(long, env = "CARD_ISSUER_EVENT_CARD_NUMBER", default_value = "full")]
    pub event_card_number: Option<String>,

    /// The largest command body accepted, in bytes; larger ones are parked.
    #[arg(long, env = "CARD_ISSUER_MAX_COMMAND_BYTES", default_value = "65536")]
    pub max_command_bytes: Option<String>,

    /// Deliveries of one message that never reached an answer (the worker
    /// died each time) before it is parked as poison.
    #[arg(long, env = "CARD_ISSUER_DELIVERY_LIMIT", default_value = "20")]
    pub delivery_limit: Option<String>,

    /// Failures of the handler itself on one message (a bug, a panic) before
    /// it is parked; each one costs a retry delay.
    #[arg(long, env = "CARD_ISSUER_HANDLER_FAILURE_LIMIT", default_value = "3")]
    pub handler_failure_limit: Option<String>,
}

/// How the worker process runs.
#[derive(Args, Clone)]
#[command(next_help_heading = "Worker")]
pub struct WorkerArgs {
    /// Messages handled at once; also the prefetch of each consumer.
    #[arg(long, env = "CARD_ISSUER_CONCURRENCY", default_value = "64")]
    pub concurrency: Option<String>,

    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    #[arg(long, env = "CARD_ISSUER_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: Option<String>,

    /// On SIGTERM, how long work in flight may take to finish before it is
    /// handed back to the broker.
    #[arg(long, env = "CARD_ISSUER_SHUTDOWN_GRACE", default_value = "20s")]
    pub shutdown_grace: Option<String>,
}

/// A command holding every group `run` takes, for building settings from a
/// list of flags (the demo and the tests do).
pub fn run_groups(command: clap::Command) -> clap::Command {
    let command = BrokerArgs::augment_args(command);
    let command = TopologyArgs::augment_args(command);
    let command = PartnerArgs::augment_args(command);
    let command = IssuanceArgs::augment_args(command);
    WorkerArgs::augment_args(command)
}

/// Every setting id of every group: the keys a `--config` file may hold. A
/// subcommand reads the ones it needs, so one file serves them all.
pub fn all_setting_ids() -> Vec<String> {
    ids_of::<RunGroups>()
}

/// Every group `run` takes, as one `Args` for listing their ids.
#[derive(Args)]
struct RunGroups {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    partner: PartnerArgs,
    #[command(flatten)]
    issuance: IssuanceArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// Setting ids each group accepts, for checking the `--config` file's keys.
pub fn ids_of<T: Args>() -> Vec<String> {
    T::augment_args(clap::Command::new("settings"))
        .get_arguments()
        .map(|arg| arg.get_id().as_str().to_owned())
        .collect()
}
