//! A stand-in for the bank partner's card API, for the `simulate-partner`
//! subcommand, the demo, the integration tests and benchmarks.
//!
//! It serves the partner's three endpoints with basic auth, and behaves like
//! a partner that remembers applications: it accepts a new request id,
//! answers 1002 to a repeated one and 1000 to a second application of a
//! customer still waiting, keeps a status check at 1005 for a configured
//! number of checks, then issues a deterministic, Luhn-valid card. On top of
//! that, per request id, a scenario can script exact replies, and fault rules
//! can spoil a share of the other calls (error codes, HTML error pages,
//! timeouts, lost replies), decided by hashing so that a rerun repeats them.
//!
//! - [`config`]: [`SimulatorConfig`] and [`Product`].
//! - [`server`]: [`spawn`], [`serve`] and [`SimulatorHandle`].
//! - [`scenario`] and [`reply`]: scripted replies.
//! - [`rules`]: fault rules and their command-line syntax.
//! - [`stats`]: what the simulator counted.
//! - `partner` decides every answer under one lock, from `applications`
//!   (the partner's memory); `routes` and `control` are the HTTP side.
//!
//! Control endpoints (no auth, not counted): `GET /_health`, `GET /_stats`,
//! `POST /_scenarios` (merges `{requestId: scenario}`), `POST /_rules`
//! (replaces the rules with `["open-card:0.1:1007", ...]`) and `POST /_reset`
//! (forgets applications and counts, keeps scenarios and rules).
//!
//! Logs carry request ids and codes at debug level only; never a PINFL, a
//! phone number, a card number or the password.

mod answer;
mod applications;
mod auth;
mod card;
mod codes;
pub mod config;
mod control;
mod hash;
mod partner;
pub mod reply;
mod request;
mod routes;
pub mod rules;
pub mod scenario;
pub mod server;
pub mod stats;

#[cfg(test)]
mod tests;

pub use card::{card_number, expiry};
pub use config::{Product, SimulatorConfig};
pub use reply::{Reply, ReplyContent, ReplyError, Scalar};
pub use rules::{Endpoint, Fault, FaultRule, ParseRuleError};
pub use scenario::{Scenario, Scenarios};
pub use server::{SimulatorHandle, serve, spawn};
pub use stats::{RequestStats, Totals};
