//! Tests of the real `card-issuer` processes: signals, crashes, what the
//! logs hold, how settings combine and how bad ones are reported.

#[path = "../integration/support/broker.rs"]
#[allow(dead_code)] // shared with the integration tests, which use all of it
mod broker;
mod processes;

mod logs;
mod settings;
mod signals;
