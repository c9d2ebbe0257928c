//! `card-issuer simulate-partner`: the partner stand-in as a server.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::{CliError, shutdown_on_signal};
use crate::simulator::{self, FaultRule, Product, Scenarios, SimulatorConfig};

/// Serve the partner's three endpoints on loopback for demos, tests and
/// benchmarks: basic auth, every error code, latency, scripted answers.
#[derive(Args)]
pub struct SimulateArgs {
    /// Where to listen.
    #[arg(
        long,
        env = "CARD_ISSUER_SIMULATOR_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,

    /// The basic-auth user name it expects.
    #[arg(long, env = "CARD_ISSUER_SIMULATOR_USERNAME", default_value = "login")]
    username: String,

    /// The basic-auth password it expects.
    #[arg(
        long,
        env = "CARD_ISSUER_SIMULATOR_PASSWORD",
        default_value = "p@ssw0rd",
        hide_env_values = true,
        hide_default_value = true
    )]
    password: String,

    /// Added before every answer, e.g. `100ms`.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    latency: Duration,

    /// Status checks that answer 1005 (under review) before the card issues.
    #[arg(long, default_value_t = 0)]
    review_checks: u32,

    /// A fault for a share of calls: `ENDPOINT:SHARE:FAULT`, where ENDPOINT
    /// is open-card, status, products or any, and FAULT is a code (`1007`),
    /// `http503`, `timeout=15s` or `lost=15s` (processed, then no answer in
    /// time). Repeatable.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<FaultRule>,

    /// A JSON file of scripted answers per request id:
    /// `{"r-1": {"open_card": [{"code": "1007"}, {"ok": true}], "status": [...]}}`.
    #[arg(long, value_name = "FILE")]
    scenarios: Option<String>,

    /// Seeds the fault rules, so a rerun faults the same calls.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(args: SimulateArgs) -> Result<(), CliError> {
    let scenarios = match &args.scenarios {
        Some(path) => read_scenarios(path)?,
        None => Scenarios::new(),
    };
    let config = SimulatorConfig {
        listen: args.listen,
        username: args.username,
        password: args.password,
        latency: args.latency,
        products: Product::defaults(),
        review_checks: args.review_checks,
        rules: args.rules,
        seed: args.seed,
        scenarios,
    };
    let partner = simulator::spawn(config)
        .await
        .map_err(|source| CliError::Listen {
            addr: args.listen.to_string(),
            source,
        })?;
    println!("partner simulator listening on {}", partner.base_url());
    shutdown_on_signal().cancelled().await;
    let _ = partner.shutdown().await;
    Ok(())
}

fn read_scenarios(path: &str) -> Result<Scenarios, CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| CliError::Input {
        what: format!("the scenarios file {path}"),
        why: error.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|error| CliError::Input {
        what: format!("the scenarios file {path}"),
        why: error.to_string(),
    })
}
