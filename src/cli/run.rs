//! `card-issuer run`: the worker.

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{CliError, Loaded, shutdown_on_signal};
use crate::health::{self, Readiness};
use crate::settings::{
    BrokerArgs, IssuanceArgs, PartnerArgs, Settings, TopologyArgs, WorkerArgs, redact_url,
};
use crate::worker;

/// The worker: declares its topology, consumes open-card commands, issues
/// cards through the partner and publishes events; serves /metrics.
#[derive(Args)]
pub struct RunArgs {
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

/// Runs the worker until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(loaded: Loaded<'_>) -> Result<(), CliError> {
    let settings = Settings::load(&loaded.layers()?)?;
    let shutdown = shutdown_on_signal();
    let readiness = Readiness::default();
    // The endpoints outlive the worker's shutdown, so probes and the last
    // scrape still answer during the grace period.
    let server_stop = CancellationToken::new();
    let addr = settings.worker.metrics_addr;
    let (bound, server) = health::serve(addr, readiness.clone(), server_stop.clone())
        .await
        .map_err(|source| CliError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let brokers: Vec<String> = settings
        .broker
        .urls
        .iter()
        .map(|url| redact_url(url.expose()))
        .collect();
    let issuance = &settings.issuance;
    tracing::info!(
        metrics = %format!("http://{bound}/metrics"),
        brokers = ?brokers,
        partner = %redact_url(&settings.partner.url),
        partner_timeout = ?settings.partner.timeout,
        partner_calls_per_second = settings.partner.calls_per_second,
        status_check_delays = ?issuance.status_check_delays,
        retry_delays = ?issuance.retry_delays,
        deadline = ?issuance.deadline,
        concurrency = settings.worker.concurrency,
        "card-issuer starting"
    );

    if settings.partner.username.is_none() || settings.partner.password.is_none() {
        tracing::warn!(
            "CARD_ISSUER_PARTNER_USERNAME or CARD_ISSUER_PARTNER_PASSWORD (or their _FILE forms) \
             is not set: partner calls go without full basic auth, and the partner will answer 401"
        );
    }
    let result = worker::run(settings, readiness, shutdown).await;

    server_stop.cancel();
    let _ = server.await;
    tracing::info!("card-issuer stopped");
    result.map_err(CliError::from)
}
