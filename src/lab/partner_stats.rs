//! What the simulator counted, read from its `GET /_stats`: the partner's
//! side of the story, to hold the worker's events against.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer};

use crate::domain::CardNumber;

/// Counts over all requests, and each request's own.
#[derive(Debug, Deserialize)]
pub struct PartnerStats {
    /// Counts over all requests.
    pub totals: PartnerTotals,
    /// Each request id the partner saw.
    pub requests: HashMap<String, PartnerRequest>,
}

/// Counts over all requests.
#[derive(Debug, Deserialize)]
pub struct PartnerTotals {
    /// Calls to the product list.
    pub products_calls: u64,
    /// Calls to open-card.
    pub open_card_calls: u64,
    /// Status checks.
    pub status_calls: u64,
    /// Calls refused for their credentials.
    pub unauthorized_calls: u64,
    /// Calls refused as unreadable.
    pub bad_requests: u64,
    /// Injected faults by kind (`1007`, `http503`, `timeout`, `lost`).
    pub faults: BTreeMap<String, u64>,
}

/// What happened to one request id at the partner.
#[derive(Debug, Deserialize)]
pub struct PartnerRequest {
    /// Calls to open-card, faulted ones included.
    pub open_card_calls: u32,
    /// Status checks, faulted ones included.
    pub status_calls: u32,
    /// Whether an application was accepted.
    pub accepted: bool,
    /// Whether the card was handed out.
    pub issued: bool,
    /// The card handed out; never printed whole.
    #[serde(deserialize_with = "card_number")]
    pub card: Option<CardNumber>,
    /// Its expiry, `YYMM`.
    pub exp: Option<String>,
}

/// The simulator's stats could not be read; the figures that need them are
/// missing, and the run counts as failed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The request failed.
    #[error("cannot read the simulator's stats at {url}")]
    Fetch {
        /// What was asked.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

impl PartnerStats {
    /// Reads `GET /_stats` at `url`.
    pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<Self, StatsError> {
        let fetch_error = |source| StatsError::Fetch {
            url: url.to_owned(),
            source,
        };
        http.get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fetch_error)?
            .json()
            .await
            .map_err(fetch_error)
    }
}

impl PartnerRequest {
    /// The record in a few words, the card by its last four digits only:
    /// `open-card calls 2, status checks 1, accepted, issued (card ending
    /// 1234)`.
    pub fn describe(&self) -> String {
        let mut words = format!(
            "open-card calls {}, status checks {}",
            self.open_card_calls, self.status_calls
        );
        if self.accepted {
            words.push_str(", accepted");
        }
        if let Some(card) = &self.card {
            words.push_str(&format!(", issued (card ending {})", card.last_four()));
        }
        words
    }
}

/// Wraps the card number the moment it is read, so no `Debug` can print it.
fn card_number<'de, D: Deserializer<'de>>(input: D) -> Result<Option<CardNumber>, D::Error> {
    Ok(Option::<String>::deserialize(input)?.map(CardNumber::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_simulator_serves_without_printing_cards() {
        let served = r#"{"totals":{"products_calls":1,"open_card_calls":2,"status_calls":1,
            "unauthorized_calls":0,"bad_requests":0,"faults":{"1007":1}},
            "requests":{"r-1":{"open_card_calls":2,"status_calls":1,"accepted":true,
            "issued":true,"card":"8600123456781234","exp":"2801"}}}"#;

        let stats: PartnerStats = serde_json::from_str(served).unwrap();

        let request = &stats.requests["r-1"];
        assert_eq!(request.card.as_ref().unwrap().last_four(), "1234");
        assert_eq!(stats.totals.faults["1007"], 1);
        assert!(!format!("{stats:?}").contains("8600123456781234"));
    }
}
