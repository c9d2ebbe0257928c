//! card-issuer: issues virtual bank cards from RabbitMQ commands through a
//! bank partner's HTTP API.
//!
//! The map:
//!
//! - [`cli`]: the subcommands; [`settings`]: typed configuration from flags,
//!   a TOML file and the environment.
//! - [`domain`]: validated types: request ids, phone numbers, PINFLs,
//!   products, cards, and the open-card command itself.
//! - [`partner`]: the partner's HTTP API, what its replies mean, the circuit
//!   breaker and the calls-per-second cap.
//! - [`issuance`]: the policy: where a request stands (carried in message
//!   headers), what each reply leads to, and the terminal events.
//! - [`broker`]: connections, the topology, confirmed publishing.
//! - [`worker`]: the supervisor, the consumers and the per-delivery handler.
//! - [`health`], [`metrics`], [`telemetry`]: what operators see; [`ops`]: what
//!   they do by hand (submit, ask the partner, move parked messages back).
//! - [`simulator`]: a stand-in for the partner, for the demo, the tests and
//!   the benchmark; [`demo`]: the whole flow on the local broker.
//! - [`lab`]: measurement tooling behind the `card-issuer-lab` binary (the
//!   fault run, the cluster run, the scaling figures); not part of the
//!   worker. [`proc_stat`] reads CPU time for it and the benchmark.
//! - `bench` (with the `bench` feature): measurement tooling for the
//!   `card-issuer-bench` binary, not part of the worker.
//!
//! Personal data (PINFL, phone, card number) and secrets live in
//! [`secret::Secret`]-backed types that never print themselves.

#[cfg(feature = "bench")]
pub mod bench;
pub mod broker;
pub mod cli;
pub mod demo;
pub mod domain;
pub mod failpoint;
pub mod health;
pub mod issuance;
pub mod lab;
pub mod metrics;
pub mod ops;
pub mod partner;
pub mod proc_stat;
pub mod secret;
pub mod settings;
pub mod simulator;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod worker;
