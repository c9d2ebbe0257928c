//! Measurement tooling, not part of the worker. `card-issuer-lab` starts
//! the real `card-issuer` processes (the worker and the partner simulator),
//! drives them through the broker as an upstream service would, breaks
//! things on purpose, and prints what came out. Nothing in the worker uses
//! this module.
//!
//! The building blocks serve every kind of run:
//!
//! - [`process`]: a child process with its log file, stopped or killed.
//! - [`partner`] and [`partner_stats`]: the simulator as a process, and what
//!   it counted; [`faults`]: the mix of partner faults it injects.
//! - [`worker`]: `card-issuer run` as a process, started again after a kill,
//!   and the flags every worker of a run gets.
//! - [`broker`]: restarting the broker application with rabbitmqctl;
//!   [`cluster`]: RabbitMQ nodes of the lab's own, clustered, stopped and
//!   started.
//! - [`names`]: the run's own names on the broker; [`teardown`] deletes them.
//! - [`commands`] and [`sender`]: the commands, published across broker
//!   restarts and node losses.
//! - [`collector`]: events kept in a durable queue across broker restarts.
//! - [`ledger`]: what was sent and what came back; [`figures`]: what that
//!   adds up to, held against the partner's side; [`report`]: how it prints.
//! - [`run`]: what the measured runs share: common flags, the wait for
//!   outcomes, the exit code.
//!
//! The runs: [`fault_run`] (`fault-run`), [`cluster_run`] (`cluster-run`),
//! [`scaling`] (`scaling`); [`cli`]: the command line.

pub mod broker;
pub mod cli;
pub mod cluster;
pub mod cluster_run;
pub mod collector;
pub mod commands;
pub mod fault_run;
pub mod faults;
pub mod figures;
pub mod ledger;
pub mod names;
pub mod partner;
pub mod partner_stats;
pub mod process;
pub mod report;
pub mod run;
pub mod scaling;
pub mod sender;
pub mod teardown;
pub mod worker;

pub use cli::main;
