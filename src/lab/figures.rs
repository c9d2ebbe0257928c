//! The figures a run prints, drawn from the ledger (what the upstream saw)
//! and the simulator's stats (what the partner saw).
//!
//! Nothing here prints a card number, a phone number or a PINFL: cards are
//! compared whole and shown by their last four digits at most.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::ledger::{EventCounts, Ledger, Verdict};
use super::partner_stats::{PartnerRequest, PartnerStats};
use super::teardown::TeardownReport;

/// Everything a run measured.
#[derive(Debug, Default)]
pub struct Figures {
    /// The run's id, which starts every request id.
    pub run_id: String,
    /// Whether the run went to its end, rather than stopping on an error or
    /// an interrupt.
    pub completed: bool,
    /// Commands the broker confirmed.
    pub sent: usize,
    /// Publishes repeated after no confirm.
    pub publish_retries: u64,
    /// Sent requests with an event.
    pub terminal: usize,
    /// Of those, how many were issued.
    pub issued: usize,
    /// Failed outcomes by `reason code`.
    pub failed: BTreeMap<String, usize>,
    /// Sent requests without any event.
    pub lost: Vec<Evidence>,
    /// Requests with more than one distinct outcome.
    pub conflicting: Vec<Evidence>,
    /// Counts over all events.
    pub events: EventCounts,
    /// Requests with events that the run never sent.
    pub unsent_with_events: usize,
    /// Open-card calls per sent request, from the partner's side.
    pub open_card_calls: CallSpread,
    /// Status checks per sent request.
    pub status_calls: CallSpread,
    /// `card.issued` events whose card or expiry is not the partner's.
    pub card_mismatches: Vec<Evidence>,
    /// Cards the partner handed out that no `card.issued` event announced.
    pub unannounced_cards: Vec<Evidence>,
    /// The partner's own totals, when its stats could be read.
    pub partner: Option<PartnerFigures>,
    /// What the run did to the worker and the broker.
    pub disruptions: Disruptions,
    /// How long things took.
    pub timing: Timing,
    /// What cleaning up found on the broker.
    pub teardown: Option<TeardownReport>,
    /// Where the logs are.
    pub logs: Logs,
}

/// One request that went wrong, and what the worker's events and the
/// partner say about it: the starting point for reading the logs.
#[derive(Debug, Default)]
pub struct Evidence {
    /// The request.
    pub request_id: String,
    /// Its outcomes as events told them, and the partner's record.
    pub detail: String,
}

/// How many requests needed 0, 1, 2 or 3+ calls, and the most any needed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CallSpread {
    /// Requests the partner never saw on this endpoint.
    pub none: usize,
    /// With exactly one call.
    pub one: usize,
    /// With two.
    pub two: usize,
    /// With three or more.
    pub three_or_more: usize,
    /// The most calls one request took.
    pub max: u32,
}

/// The partner's totals.
#[derive(Debug, Default)]
pub struct PartnerFigures {
    /// Calls to open-card.
    pub open_card_calls: u64,
    /// Status checks.
    pub status_calls: u64,
    /// Product list calls.
    pub products_calls: u64,
    /// Calls refused for credentials or as unreadable.
    pub refused_calls: u64,
    /// Injected faults by kind.
    pub faults: BTreeMap<String, u64>,
}

/// What the run did on purpose, and what happened by itself.
#[derive(Debug, Default)]
pub struct Disruptions {
    /// Worker kills done.
    pub kills: u32,
    /// Broker restarts done.
    pub broker_restarts: u32,
    /// Worker processes started in all.
    pub worker_starts: u32,
    /// Workers that ended without being told to, with how.
    pub unexpected_exits: Vec<String>,
    /// Whether the last worker was consuming (its `/readyz` answered 200)
    /// when the run ended; `None` if there was no worker to ask. A worker
    /// alive but not ready at the end explains outcomes that never came.
    pub ready_at_end: Option<bool>,
    /// Times the collector reconnected.
    pub collector_reconnects: u32,
    /// Times the command sender reconnected.
    pub sender_reconnects: u32,
}

/// How long the run took.
#[derive(Debug, Default)]
pub struct Timing {
    /// From the first command to the last outcome (or giving up).
    pub wall: Duration,
    /// Spent publishing, disruptions included.
    pub publishing: Duration,
    /// Whether the run stopped waiting before every outcome arrived.
    pub gave_up: bool,
}

/// Where the run's logs went.
#[derive(Clone, Debug, Default)]
pub struct Logs {
    /// The run's directory.
    pub dir: PathBuf,
    /// The workers' logs, as a glob.
    pub workers: PathBuf,
    /// The simulator's log.
    pub simulator: PathBuf,
    /// rabbitmqctl's output.
    pub broker: PathBuf,
}

impl Figures {
    /// The figures the ledger and the partner's stats give.
    pub fn new(run_id: &str, ledger: &Ledger, partner: Option<&PartnerStats>) -> Self {
        let mut figures = Self {
            run_id: run_id.to_owned(),
            sent: ledger.sent_count(),
            publish_retries: ledger.publish_retries(),
            terminal: ledger.terminal_count(),
            events: ledger.counts().clone(),
            unsent_with_events: ledger.unsent_with_events().len(),
            ..Self::default()
        };
        figures.count_outcomes(ledger);
        let evidence = |id: &str| Evidence::new(id, ledger, partner);
        figures.lost = ledger.lost().into_iter().map(evidence).collect();
        figures.conflicting = ledger.conflicting().into_iter().map(evidence).collect();
        if let Some(partner) = partner {
            figures.hold_against_partner(ledger, partner);
        }
        figures
    }

    /// A run passes when it went to its end, nothing was lost and nothing
    /// conflicts.
    pub fn passed(&self) -> bool {
        self.completed && self.lost.is_empty() && self.conflicting.is_empty()
    }

    fn count_outcomes(&mut self, ledger: &Ledger) {
        for request_id in ledger.sent() {
            let Some(first) = ledger.outcomes(request_id).first() else {
                continue;
            };
            match &first.verdict {
                Verdict::Issued { .. } => self.issued += 1,
                Verdict::Failed { reason, code } => {
                    let key = format!("{reason} {}", code.as_deref().unwrap_or(""));
                    *self.failed.entry(key.trim_end().to_owned()).or_default() += 1;
                }
                Verdict::Other(key) => *self.failed.entry(key.clone()).or_default() += 1,
            }
        }
    }

    fn hold_against_partner(&mut self, ledger: &Ledger, partner: &PartnerStats) {
        let totals = &partner.totals;
        self.partner = Some(PartnerFigures {
            open_card_calls: totals.open_card_calls,
            status_calls: totals.status_calls,
            products_calls: totals.products_calls,
            refused_calls: totals.unauthorized_calls + totals.bad_requests,
            faults: totals.faults.clone(),
        });
        for request_id in ledger.sent() {
            let seen = partner.requests.get(request_id);
            self.open_card_calls
                .add(seen.map_or(0, |r| r.open_card_calls));
            self.status_calls.add(seen.map_or(0, |r| r.status_calls));
            let announced = ledger
                .outcomes(request_id)
                .iter()
                .filter_map(|o| match &o.verdict {
                    Verdict::Issued { card, masked, exp } => Some((card, masked, exp)),
                    _ => None,
                });
            let mut any_announced = false;
            for (card, masked, exp) in announced {
                any_announced = true;
                if !matches_partner(seen, card.as_ref(), masked.as_deref(), exp.as_deref()) {
                    let evidence = Evidence::new(request_id, ledger, Some(partner));
                    self.card_mismatches.push(evidence);
                }
            }
            if !any_announced && seen.is_some_and(|r| r.issued) {
                let evidence = Evidence::new(request_id, ledger, Some(partner));
                self.unannounced_cards.push(evidence);
            }
        }
    }
}

/// Whether an announced card is the one the partner handed out: the whole
/// number when the event carries it, else its last four digits; and the
/// expiry.
fn matches_partner(
    partner: Option<&PartnerRequest>,
    card: Option<&crate::domain::CardNumber>,
    masked: Option<&str>,
    exp: Option<&str>,
) -> bool {
    let Some(issued) = partner.and_then(|p| p.card.as_ref()) else {
        return false;
    };
    let same_card = match (card, masked) {
        (Some(card), _) => card == issued,
        (None, Some(masked)) => masked.ends_with(&issued.last_four()),
        (None, None) => false,
    };
    same_card && exp == partner.and_then(|p| p.exp.as_deref())
}

impl CallSpread {
    fn add(&mut self, calls: u32) {
        match calls {
            0 => self.none += 1,
            1 => self.one += 1,
            2 => self.two += 1,
            _ => self.three_or_more += 1,
        }
        self.max = self.max.max(calls);
    }
}

impl Evidence {
    /// What the events and the partner's record say about `request_id`.
    fn new(request_id: &str, ledger: &Ledger, partner: Option<&PartnerStats>) -> Self {
        let outcomes: Vec<String> = ledger
            .outcomes(request_id)
            .iter()
            .map(|outcome| outcome.verdict.describe())
            .collect();
        let events = match outcomes.is_empty() {
            true => "no event".to_owned(),
            false => outcomes.join(" / "),
        };
        let seen = partner.map(|stats| stats.requests.get(request_id));
        let partner = match seen {
            None => "partner's record unknown".to_owned(),
            Some(None) => "the partner never saw it".to_owned(),
            Some(Some(record)) => record.describe(),
        };
        Self {
            request_id: request_id.to_owned(),
            detail: format!("{events}; partner: {partner}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::collector::ReceivedEvent;

    const PARTNER_CARD: &str = "8600111122223333";

    fn partner(requests: &[(&str, bool)]) -> PartnerStats {
        let requests: Vec<String> = requests
            .iter()
            .map(|(id, issued)| {
                let card = if *issued {
                    format!("\"{PARTNER_CARD}\"")
                } else {
                    "null".into()
                };
                format!(
                    r#""{id}":{{"open_card_calls":2,"status_calls":1,"accepted":true,
                    "issued":{issued},"card":{card},"exp":"2801"}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{"totals":{{"products_calls":1,"open_card_calls":2,"status_calls":1,
            "unauthorized_calls":0,"bad_requests":0,"faults":{{}}}},
            "requests":{{{}}}}}"#,
            requests.join(",")
        );
        serde_json::from_str(&json).unwrap()
    }

    fn issued(request_id: &str, card: &str) -> ReceivedEvent {
        let body = format!(r#"{{"requestId":"{request_id}","cardNumber":"{card}","exp":"2801"}}"#);
        ReceivedEvent {
            routing_key: "card.issued".into(),
            message_id: Some(format!("card.issued:{request_id}")),
            body: body.into_bytes(),
            redelivered: false,
        }
    }

    #[test]
    fn a_card_that_is_not_the_partners_is_a_mismatch() {
        let mut ledger = Ledger::default();
        ledger.record_sent("r-1".into(), 0);
        ledger.record(&issued("r-1", "8600999999999999"));

        let figures = Figures::new("run", &ledger, Some(&partner(&[("r-1", true)])));

        assert_eq!(figures.card_mismatches.len(), 1);
        assert_eq!(figures.issued, 1);
    }

    #[test]
    fn a_card_the_partner_issued_without_an_event_is_unannounced_and_lost() {
        let mut ledger = Ledger::default();
        ledger.record_sent("r-1".into(), 0);

        let figures = Figures::new("run", &ledger, Some(&partner(&[("r-1", true)])));

        assert_eq!(figures.unannounced_cards.len(), 1);
        assert_eq!(figures.lost.len(), 1);
        assert!(!figures.passed(), "a lost request fails the run");
    }

    #[test]
    fn evidence_tells_the_partners_side_by_the_last_four_digits_only() {
        let mut ledger = Ledger::default();
        ledger.record_sent("r-1".into(), 0);

        let figures = Figures::new("run", &ledger, Some(&partner(&[("r-1", true)])));

        let detail = &figures.lost[0].detail;
        assert!(detail.contains("no event"), "{detail}");
        assert!(detail.contains("card ending 3333"), "{detail}");
        assert!(!format!("{figures:?} {figures:#}").contains(PARTNER_CARD));
    }

    #[test]
    fn a_matching_card_passes() {
        let mut ledger = Ledger::default();
        ledger.record_sent("r-1".into(), 0);
        ledger.record(&issued("r-1", PARTNER_CARD));

        let mut figures = Figures::new("run", &ledger, Some(&partner(&[("r-1", true)])));
        figures.completed = true;

        assert!(figures.card_mismatches.is_empty() && figures.unannounced_cards.is_empty());
        assert!(figures.passed());
    }
}
