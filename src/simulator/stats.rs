//! What the simulator counted, for tests and benchmarks to check against.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::card;

/// What happened to one request id.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// Calls to open-card with this request id, faulted ones included.
    pub open_card_calls: u32,
    /// Status checks for this request id, faulted ones included.
    pub status_calls: u32,
    /// Whether the partner accepted an application with this request id.
    pub accepted: bool,
    /// Whether a status check has handed out the card.
    pub issued: bool,
    /// The card number handed out, once issued.
    pub card: Option<String>,
    /// The expiry (`YYMM`) handed out, once issued.
    pub exp: Option<String>,
}

/// Counts over all requests since the start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Authenticated calls to the product list.
    pub products_calls: u64,
    /// Authenticated calls to open-card, unreadable ones included.
    pub open_card_calls: u64,
    /// Authenticated status checks, unreadable ones included.
    pub status_calls: u64,
    /// Calls refused for missing or wrong credentials.
    pub unauthorized_calls: u64,
    /// Calls refused with HTTP 400 because they could not be read.
    pub bad_requests: u64,
    /// Injected faults by kind: the code, `httpNNN`, `timeout` or `lost`.
    pub faults: BTreeMap<String, u64>,
}

// The card number is fake, but stats end up in test failure output and logs
// all the same; printing it masked keeps the habit the real code must have.
impl fmt::Debug for RequestStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStats")
            .field("open_card_calls", &self.open_card_calls)
            .field("status_calls", &self.status_calls)
            .field("accepted", &self.accepted)
            .field("issued", &self.issued)
            .field("card", &self.card.as_deref().map(card::mask))
            .field("exp", &self.exp)
            .finish()
    }
}
