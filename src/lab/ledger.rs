//! What a run sent and what came back: the commands the broker confirmed,
//! and every event the collector received, grouped by request.
//!
//! Two events are "the same" when their routing key and body match once the
//! timestamps (`issuedAt`, `failedAt`) are left out: a worker that publishes
//! an outcome again after a crash may stamp it anew, and that is allowed.
//! Anything else that differs is a different outcome.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::collector::ReceivedEvent;
use crate::domain::CardNumber;

/// Body fields that may differ between two publications of one outcome.
const TIMESTAMP_FIELDS: [&str; 2] = ["issuedAt", "failedAt"];

/// Everything a run has seen so far.
#[derive(Default)]
pub struct Ledger {
    sent: BTreeSet<String>,
    publish_retries: u64,
    requests: HashMap<String, RequestRecord>,
    contents_by_message_id: HashMap<String, BTreeSet<String>>,
    counts: EventCounts,
}

/// Counts over every event received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Events received, redeliveries to the collector excluded.
    pub received: u64,
    /// Events whose `message_id` was seen before: the worker published
    /// them more than once.
    pub duplicates: u64,
    /// Deliveries the collector got again because its acknowledgement was
    /// lost with its connection; not the worker's doing.
    pub redelivered_to_collector: u64,
    /// Events without a `message_id`, which the contract requires.
    pub without_message_id: u64,
    /// Events whose body names no request id.
    pub without_request_id: u64,
}

/// The events of one request.
#[derive(Default)]
struct RequestRecord {
    /// Each distinct outcome, in the order first seen.
    outcomes: Vec<Outcome>,
}

/// One distinct outcome of a request. Its `Debug` leaves out the content,
/// which may hold a full card number.
pub struct Outcome {
    /// The routing key and body without timestamps: what "the same" means.
    content: String,
    /// What it says.
    pub verdict: Verdict,
}

/// What an event says happened.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `card.issued`.
    Issued {
        /// `cardNumber`, if the event carries it.
        card: Option<CardNumber>,
        /// `maskedCardNumber`.
        masked: Option<String>,
        /// `exp`.
        exp: Option<String>,
    },
    /// `card.failed`.
    Failed {
        /// `reason`.
        reason: String,
        /// `code`, if any.
        code: Option<String>,
    },
    /// Any other routing key.
    Other(String),
}

impl Ledger {
    /// Notes a command the broker confirmed after `retries` publishes that
    /// were not confirmed (any of which may have got through, so the
    /// worker may see the command more than once).
    pub fn record_sent(&mut self, request_id: String, retries: u32) {
        self.sent.insert(request_id);
        self.publish_retries += u64::from(retries);
    }

    /// Notes one event as the collector received it.
    pub fn record(&mut self, event: &ReceivedEvent) {
        let body: Value = serde_json::from_slice(&event.body).unwrap_or(Value::Null);
        let content = content_of(&event.routing_key, &body);
        if !self.is_new_sighting(event, &content) {
            return;
        }
        self.counts.received += 1;
        let Some(request_id) = body.get("requestId").and_then(Value::as_str) else {
            self.counts.without_request_id += 1;
            return;
        };
        let record = self.requests.entry(request_id.to_owned()).or_default();
        if record.outcomes.iter().all(|known| known.content != content) {
            let verdict = Verdict::read(&event.routing_key, &body);
            record.outcomes.push(Outcome { content, verdict });
        }
    }

    /// Counts the event against its `message_id`; false for a redelivery to
    /// the collector of an event already recorded.
    fn is_new_sighting(&mut self, event: &ReceivedEvent, content: &str) -> bool {
        let Some(message_id) = &event.message_id else {
            self.counts.without_message_id += 1;
            return true;
        };
        let contents = self
            .contents_by_message_id
            .entry(message_id.clone())
            .or_default();
        if !contents.is_empty() {
            if event.redelivered && contents.contains(content) {
                self.counts.redelivered_to_collector += 1;
                return false;
            }
            self.counts.duplicates += 1;
        }
        contents.insert(content.to_owned());
        true
    }

    /// Request ids the broker confirmed, in publishing order.
    pub fn sent(&self) -> impl Iterator<Item = &str> {
        self.sent.iter().map(String::as_str)
    }

    /// How many commands the broker confirmed.
    pub fn sent_count(&self) -> usize {
        self.sent.len()
    }

    /// Publishes repeated after no confirm.
    pub fn publish_retries(&self) -> u64 {
        self.publish_retries
    }

    /// The distinct outcomes of a request, in the order first seen.
    pub fn outcomes(&self, request_id: &str) -> &[Outcome] {
        self.requests
            .get(request_id)
            .map_or(&[], |record| record.outcomes.as_slice())
    }

    /// Sent requests with at least one event.
    pub fn terminal_count(&self) -> usize {
        self.sent()
            .filter(|id| !self.outcomes(id).is_empty())
            .count()
    }

    /// Sent requests without any event.
    pub fn lost(&self) -> Vec<&str> {
        self.sent()
            .filter(|id| self.outcomes(id).is_empty())
            .collect()
    }

    /// Requests with more than one distinct outcome (which covers one
    /// `message_id` published with two contents), sent or not.
    pub fn conflicting(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .requests
            .iter()
            .filter(|(_, record)| record.outcomes.len() > 1)
            .map(|(id, _)| id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Request ids with events that the run never sent.
    pub fn unsent_with_events(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .requests
            .keys()
            .map(String::as_str)
            .filter(|id| !self.sent.contains(*id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Counts over every event.
    pub fn counts(&self) -> &EventCounts {
        &self.counts
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

impl Verdict {
    fn read(routing_key: &str, body: &Value) -> Self {
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
        match routing_key {
            "card.issued" => Verdict::Issued {
                card: text("cardNumber").map(CardNumber::new),
                masked: text("maskedCardNumber"),
                exp: text("exp"),
            },
            "card.failed" => Verdict::Failed {
                reason: text("reason").unwrap_or_default(),
                code: text("code"),
            },
            other => Verdict::Other(other.to_owned()),
        }
    }

    /// A short description without personal data or card numbers:
    /// `issued (card ending 1234)`, `failed: rejected 1006`.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Issued { card, masked, .. } => {
                let last_four = card
                    .as_ref()
                    .map(CardNumber::last_four)
                    .or_else(|| masked.as_ref().map(|m| last_four_of(m)))
                    .unwrap_or_else(|| "????".into());
                format!("issued (card ending {last_four})")
            }
            Verdict::Failed { reason, code } => {
                format!("failed: {reason} {}", code.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_owned()
            }
            Verdict::Other(key) => format!("unexpected routing key {key}"),
        }
    }
}

/// The routing key and the body without timestamps, as one comparable
/// string. serde_json keeps object keys sorted, so equal bodies print
/// equally whatever order the worker wrote them in.
fn content_of(routing_key: &str, body: &Value) -> String {
    let mut body = body.clone();
    if let Value::Object(fields) = &mut body {
        for field in TIMESTAMP_FIELDS {
            fields.remove(field);
        }
    }
    format!("{routing_key} {body}")
}

fn last_four_of(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(request_id: &str, card: &str, at: &str) -> ReceivedEvent {
        event(
            "card.issued",
            request_id,
            &format!(
                r#"{{"requestId":"{request_id}","productId":1,"cardNumber":"{card}","exp":"2801","issuedAt":"{at}"}}"#
            ),
        )
    }

    fn failed(request_id: &str) -> ReceivedEvent {
        event(
            "card.failed",
            request_id,
            &format!(r#"{{"requestId":"{request_id}","reason":"rejected","code":"1006"}}"#),
        )
    }

    fn event(routing_key: &str, request_id: &str, body: &str) -> ReceivedEvent {
        ReceivedEvent {
            routing_key: routing_key.into(),
            message_id: Some(format!("{routing_key}:{request_id}")),
            body: body.as_bytes().to_vec(),
            redelivered: false,
        }
    }

    fn ledger_with_sent(ids: &[&str]) -> Ledger {
        let mut ledger = Ledger::default();
        for id in ids {
            ledger.record_sent((*id).to_owned(), 0);
        }
        ledger
    }

    #[test]
    fn a_request_without_events_is_lost() {
        let mut ledger = ledger_with_sent(&["r-1", "r-2"]);

        ledger.record(&issued("r-1", "8600000000000001", "t1"));

        assert_eq!(ledger.lost(), ["r-2"]);
        assert_eq!(ledger.terminal_count(), 1);
    }

    #[test]
    fn the_same_outcome_stamped_anew_is_a_duplicate_not_a_conflict() {
        let mut ledger = ledger_with_sent(&["r-1"]);

        ledger.record(&issued("r-1", "8600000000000001", "t1"));
        ledger.record(&issued("r-1", "8600000000000001", "t2"));

        assert_eq!(ledger.counts().duplicates, 1);
        assert!(ledger.conflicting().is_empty());
    }

    #[test]
    fn two_outcomes_of_one_request_conflict() {
        let mut ledger = ledger_with_sent(&["r-1", "r-2"]);

        ledger.record(&issued("r-1", "8600000000000001", "t1"));
        ledger.record(&failed("r-1"));
        ledger.record(&issued("r-2", "8600000000000002", "t1"));
        ledger.record(&issued("r-2", "8600000000000009", "t1"));

        assert_eq!(ledger.conflicting(), ["r-1", "r-2"]);
        assert_eq!(ledger.counts().duplicates, 1, "r-2's message id came twice");
    }

    #[test]
    fn a_redelivery_to_the_collector_is_not_the_workers_duplicate() {
        let mut ledger = ledger_with_sent(&["r-1"]);
        let first = issued("r-1", "8600000000000001", "t1");
        let again = ReceivedEvent {
            redelivered: true,
            ..first.clone()
        };

        ledger.record(&first);
        ledger.record(&again);

        assert_eq!(ledger.counts().duplicates, 0);
        assert_eq!(ledger.counts().redelivered_to_collector, 1);
    }

    #[test]
    fn descriptions_show_at_most_the_last_four_digits() {
        let mut ledger = ledger_with_sent(&["r-1"]);

        ledger.record(&issued("r-1", "8600123456781234", "t1"));

        let described = ledger.outcomes("r-1")[0].verdict.describe();
        assert_eq!(described, "issued (card ending 1234)");
        assert!(!format!("{:?}", ledger.outcomes("r-1")).contains("8600123456781234"));
    }

    #[test]
    fn events_for_requests_never_sent_are_noticed() {
        let mut ledger = ledger_with_sent(&["r-1"]);

        ledger.record(&failed("r-9"));

        assert_eq!(ledger.unsent_with_events(), ["r-9"]);
        assert_eq!(ledger.terminal_count(), 0);
    }
}
