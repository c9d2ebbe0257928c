//! `card-issuer demo`: the whole flow on the local broker, in one process.
//!
//! It starts the partner simulator and a worker, publishes one command for
//! each kind of outcome (the partner's answers scripted per request id),
//! prints each outcome as it arrives, and succeeds when every command
//! reached the outcome it should.
//!
//! The demo keeps to names of its own on the broker
//! (`card-issuer-demo-<run>.*`), fresh for every run and deleted at its end,
//! so it can never take commands meant for a real worker on the same broker,
//! send its commands to one, or meet another demo running beside it.

mod cases;
mod report;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use self::cases::Case;
pub use self::cases::Expect;
use self::report::Tally;
use crate::broker::{BrokerError, PublishError, Topology, connect};
use crate::health::{self, Readiness};
use crate::issuance::Plan;
use crate::settings::{BrokerSettings, Settings, SettingsError};
use crate::simulator::{self, SimulatorConfig};
use crate::upstream::Upstream;
use crate::worker::{self, WorkerError};

/// The first part of the demo's own exchange and queue names.
pub const DEMO_PREFIX: &str = "card-issuer-demo";

/// How long the demo waits for every outcome.
const PATIENCE: Duration = Duration::from_secs(60);

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator could not listen.
    #[error("cannot start the partner simulator")]
    Simulator(#[source] std::io::Error),
    /// The metrics endpoint could not listen.
    #[error("cannot listen on {0} for /metrics")]
    Metrics(SocketAddr, #[source] std::io::Error),
    /// The worker's settings are wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The worker failed to start.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A command could not be published.
    #[error("cannot publish a demo command")]
    Publish(#[from] PublishError),
    /// The worker did not start consuming.
    #[error("the worker did not start consuming within 30 s; is the broker up?")]
    NotReady,
}

/// Runs the demo against the broker in `broker` (its names are replaced by
/// the demo's own). Returns whether every command reached its outcome.
pub async fn run(broker: BrokerSettings, metrics_addr: SocketAddr) -> Result<bool, DemoError> {
    let run_token = format!("{:06x}", fastrand::u32(..0x100_0000));
    let broker = broker.with_own_names(&format!("{DEMO_PREFIX}-{run_token}"));
    let cases = cases::all();

    let partner = start_partner(&cases, &run_token).await?;
    let mut settings = Settings::from_flags(&demo_flags(&partner.base_url(), metrics_addr))?;
    settings.broker = broker.clone();
    let topology = Topology::new(&broker, Plan::new(&settings.issuance).all_delays());

    let stop = CancellationToken::new();
    let readiness = Readiness::default();
    let (metrics_at, server) = health::serve(metrics_addr, readiness.clone(), stop.clone())
        .await
        .map_err(|error| DemoError::Metrics(metrics_addr, error))?;
    let worker = tokio::spawn(worker::run(settings, readiness.clone(), stop.clone()));
    println!("demo: partner simulator at {}", partner.base_url());
    println!("demo: worker metrics at http://{metrics_at}/metrics");

    let outcome = drive(&broker, &cases, &run_token, &readiness).await;

    stop.cancel();
    let _ = worker.await;
    let _ = server.await;
    let _ = partner.shutdown().await;
    remove_names(&broker, &topology).await;
    outcome
}

/// Deletes the demo's exchanges and queues; a failure to do so is only
/// reported, since the demo's outcome stands.
async fn remove_names(broker: &BrokerSettings, topology: &Topology) {
    let removed = async {
        let connection = connect(
            &broker.urls[0],
            broker.ca_file.as_deref(),
            "card-issuer demo",
        )
        .await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|source| BrokerError::Setup {
                what: "open a channel".into(),
                source,
            })?;
        topology.delete(&channel).await?;
        let _ = connection.close(200, "demo done".into()).await;
        Ok::<_, BrokerError>(())
    };
    if let Err(error) = removed.await {
        println!("demo: could not delete the demo's queues and exchanges: {error}");
    }
}

fn demo_flags(partner_url: &str, metrics_addr: SocketAddr) -> Vec<String> {
    [
        ("--partner-url", partner_url.to_owned()),
        ("--partner-username", "demo".into()),
        ("--partner-password", "demo-password".into()),
        ("--partner-timeout", "1s".into()),
        ("--partner-calls-per-second", "0".into()),
        ("--status-check-delays", "200ms,300ms".into()),
        ("--retry-delays", "200ms,400ms".into()),
        ("--deadline", "6s".into()),
        ("--concurrency", "16".into()),
        ("--metrics-addr", metrics_addr.to_string()),
        ("--shutdown-grace", "5s".into()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

async fn start_partner(
    cases: &[Case],
    run_token: &str,
) -> Result<simulator::SimulatorHandle, DemoError> {
    let config = SimulatorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        username: "demo".into(),
        password: "demo-password".into(),
        ..SimulatorConfig::default()
    };
    let partner = simulator::spawn(config)
        .await
        .map_err(DemoError::Simulator)?;
    for case in cases {
        if let Some(scenario) = &case.script {
            partner.script(&request_id(run_token, case), scenario.clone());
        }
    }
    Ok(partner)
}

fn request_id(run_token: &str, case: &Case) -> String {
    format!("demo-{run_token}-{}", case.slug)
}

/// The command body of a case. Each case is its own customer, so no case
/// meets another's pending application.
fn body(run_token: &str, index: usize, case: &Case) -> Vec<u8> {
    if let Some(raw) = case.raw_body {
        return raw
            .replace("{run}", &format!("demo-{run_token}"))
            .into_bytes();
    }
    let mut command = json!({
        "requestId": request_id(run_token, case),
        "phoneNumber": format!("+99890{:07}", 1_000 + index),
        "productId": 1,
        "pin": format!("3010199{:07}", 1_000 + index),
    });
    if let (Value::Object(command), Value::Object(fields)) = (&mut command, &case.fields) {
        command.extend(fields.clone());
    }
    command.to_string().into_bytes()
}

async fn drive(
    broker: &BrokerSettings,
    cases: &[Case],
    run_token: &str,
    readiness: &Readiness,
) -> Result<bool, DemoError> {
    let upstream = Upstream::connect(broker, "card-issuer demo upstream").await?;
    wait_until_ready(readiness).await?;
    let mut events = upstream.subscribe(&broker.events_exchange).await?;
    let mut parked = upstream
        .drain_parked(&format!("{}.dead-letter", broker.queue_prefix))
        .await?;

    let started = Instant::now();
    let mut by_request = HashMap::new();
    let mut by_body = HashMap::new();
    for (index, case) in cases.iter().enumerate() {
        let body = body(run_token, index, case);
        for _ in 0..case.copies {
            upstream.publish_command(&body, None).await?;
        }
        by_request.insert(request_id(run_token, case), index);
        by_body.insert(body, index);
    }
    println!(
        "demo: published {} commands to {}; each event and each parked copy is a line \
         below, so a command published twice, or answered and parked, shows twice\n",
        cases.len(),
        broker.commands_exchange
    );

    let mut tally = Tally::new(cases);
    while !tally.all_settled() && started.elapsed() < PATIENCE {
        tokio::select! {
            Some(event) = events.next(Duration::from_secs(1)) => {
                let case = event.request_id().and_then(|id| by_request.get(id)).copied();
                tally.on_event(case, &event, started.elapsed());
            }
            Some(message) = parked.next(Duration::from_secs(1)) => {
                let case = by_body.get(&message.body).copied();
                tally.on_parked(case, &message, started.elapsed());
            }
            else => {}
        }
    }
    upstream.close().await;
    Ok(tally.finish(started.elapsed()))
}

async fn wait_until_ready(readiness: &Readiness) -> Result<(), DemoError> {
    let since = Instant::now();
    while !readiness.is_ready() {
        if since.elapsed() > Duration::from_secs(30) {
            return Err(DemoError::NotReady);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
