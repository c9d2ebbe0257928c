//! The figures a run prints, drawn from the ledger (what the upstream saw)
//! and the simulator's stats (what the partner saw).
//!
//! Nothing here prints a card number, a phone number or a PINFL: cards are
//! compared whole and shown by their last four digits at most.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::ledger::{EventCounts, Ledger, Verdict};
use super::partner_stats::{PartnerRequest, PartnerStats};
use super::teardown::TeardownReport;

/// How many request ids a list of evidence shows before "and N more".
const EVIDENCE_SHOWN: usize = 20;

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
    pub lost: Vec<String>,
    /// Requests with more than one distinct outcome, each described.
    pub conflicting: Vec<(String, Vec<String>)>,
    /// Counts over all events.
    pub events: EventCounts,
    /// Request ids with events that the run never sent.
    pub unsent_with_events: Vec<String>,
    /// Open-card calls per sent request, from the partner's side.
    pub open_card_calls: CallSpread,
    /// Status checks per sent request.
    pub status_calls: CallSpread,
    /// `card.issued` events whose card or expiry is not the partner's.
    pub card_mismatches: Vec<String>,
    /// Cards the partner handed out that no `card.issued` event announced.
    pub unannounced_cards: Vec<String>,
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
            lost: owned(ledger.lost()),
            events: ledger.counts().clone(),
            unsent_with_events: owned(ledger.unsent_with_events()),
            ..Self::default()
        };
        figures.count_outcomes(ledger);
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
        let conflicting = ledger.conflicting();
        self.conflicting = conflicting
            .into_iter()
            .map(|id| {
                let outcomes = ledger.outcomes(id).iter();
                (
                    id.to_owned(),
                    outcomes.map(|o| o.verdict.describe()).collect(),
                )
            })
            .collect();
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
                    self.card_mismatches.push(request_id.to_owned());
                }
            }
            if !any_announced && seen.is_some_and(|r| r.issued) {
                self.unannounced_cards.push(request_id.to_owned());
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

fn owned(ids: Vec<&str>) -> Vec<String> {
    ids.into_iter().map(str::to_owned).collect()
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_outcomes(f)?;
        self.fmt_partner(f)?;
        self.fmt_run(f)?;
        self.fmt_evidence(f)?;
        let verdict = match (self.completed, self.passed()) {
            (false, _) => "INCOMPLETE, the run stopped early",
            (true, true) => "PASS",
            (true, false) => "FAIL",
        };
        writeln!(
            f,
            "result: {verdict} (lost {}, conflicting {})",
            self.lost.len(),
            self.conflicting.len()
        )
    }
}

impl Figures {
    fn fmt_outcomes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: usize = self.failed.values().sum();
        writeln!(f, "fault run {}", self.run_id)?;
        line(
            f,
            "commands sent",
            self.sent,
            &format!("publish retries {}", self.publish_retries),
        )?;
        line(
            f,
            "terminal outcomes",
            self.terminal,
            &format!(
                "issued {}, failed {failed}{}",
                self.issued,
                listed(&self.failed)
            ),
        )?;
        line(f, "lost", self.lost.len(), "sent, no terminal event")?;
        line(
            f,
            "conflicting outcomes",
            self.conflicting.len(),
            "two different outcomes, or one message_id with two contents",
        )?;
        line(
            f,
            "duplicate events",
            self.events.duplicates,
            &format!(
                "same message_id again; {} more were the collector's own redeliveries",
                self.events.redelivered_to_collector
            ),
        )?;
        line(
            f,
            "events received",
            self.events.received,
            &format!(
                "{} without message_id, {} without requestId, {} for requests never sent",
                self.events.without_message_id,
                self.events.without_request_id,
                self.unsent_with_events.len()
            ),
        )
    }

    fn fmt_partner(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(partner) = &self.partner else {
            return writeln!(
                f,
                "  (the partner's stats could not be read: no call or card figures)"
            );
        };
        line(
            f,
            "open-card calls/request",
            spread(&self.open_card_calls),
            "",
        )?;
        line(f, "status checks/request", spread(&self.status_calls), "")?;
        line(
            f,
            "cards not matching partner",
            self.card_mismatches.len(),
            "card.issued whose card or expiry is not the partner's",
        )?;
        line(
            f,
            "partner cards unannounced",
            self.unannounced_cards.len(),
            "issued by the partner, no card.issued event",
        )?;
        let faults: u64 = partner.faults.values().sum();
        line(
            f,
            "faults injected",
            faults,
            listed(&partner.faults).trim_start_matches(", "),
        )?;
        line(
            f,
            "partner calls",
            partner.open_card_calls + partner.status_calls + partner.products_calls,
            &format!(
                "open-card {}, status {}, products {}, refused {}",
                partner.open_card_calls,
                partner.status_calls,
                partner.products_calls,
                partner.refused_calls
            ),
        )
    }

    fn fmt_run(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.disruptions;
        line(
            f,
            "worker kills (SIGKILL)",
            d.kills,
            &format!(
                "{} worker starts, {} exits nobody asked for",
                d.worker_starts,
                d.unexpected_exits.len()
            ),
        )?;
        line(
            f,
            "broker restarts",
            d.broker_restarts,
            &format!(
                "reconnects: collector {}, sender {}",
                d.collector_reconnects, d.sender_reconnects
            ),
        )?;
        let t = &self.timing;
        let wall = format!("{:.1}s", t.wall.as_secs_f64());
        let gave_up = if t.gave_up { "; gave up waiting" } else { "" };
        line(
            f,
            "wall time",
            wall,
            &format!("publishing {:.1}s{gave_up}", t.publishing.as_secs_f64()),
        )?;
        if let Some(teardown) = &self.teardown {
            let left: Vec<String> = teardown
                .leftovers
                .iter()
                .map(|(q, n)| format!("{q}: {n}"))
                .collect();
            let total: u32 = teardown.leftovers.iter().map(|(_, n)| n).sum();
            line(f, "messages left in queues", total, &left.join(", "))?;
        }
        line(f, "worker logs", self.logs.workers.display(), "")?;
        line(f, "simulator log", self.logs.simulator.display(), "")?;
        line(f, "rabbitmqctl log", self.logs.broker.display(), "")
    }

    fn fmt_evidence(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        evidence(
            f,
            "lost",
            self.lost.iter().map(|id| (id.as_str(), String::new())),
        )?;
        let conflicting = self
            .conflicting
            .iter()
            .map(|(id, outcomes)| (id.as_str(), outcomes.join(" / ")));
        evidence(f, "conflicting", conflicting)?;
        evidence(
            f,
            "card mismatch",
            self.card_mismatches
                .iter()
                .map(|id| (id.as_str(), String::new())),
        )?;
        evidence(
            f,
            "unannounced card",
            self.unannounced_cards
                .iter()
                .map(|id| (id.as_str(), String::new())),
        )?;
        for exit in &self.disruptions.unexpected_exits {
            writeln!(f, "  unexpected exit: {exit}")?;
        }
        Ok(())
    }
}

fn line(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    value: impl fmt::Display,
    note: &str,
) -> fmt::Result {
    let value = value.to_string();
    if note.is_empty() {
        writeln!(f, "  {label:<28} {value}")
    } else {
        writeln!(f, "  {label:<28} {value:<8} ({note})")
    }
}

fn spread(calls: &CallSpread) -> String {
    format!(
        "1: {}  2: {}  3+: {}  none: {}  max: {}",
        calls.one, calls.two, calls.three_or_more, calls.none, calls.max
    )
}

fn listed<V: fmt::Display>(counts: &BTreeMap<String, V>) -> String {
    counts.iter().map(|(k, v)| format!(", {k}: {v}")).collect()
}

fn evidence<'a>(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    items: impl ExactSizeIterator<Item = (&'a str, String)>,
) -> fmt::Result {
    let total = items.len();
    for (id, detail) in items.take(EVIDENCE_SHOWN) {
        writeln!(f, "  {what}: {id} {detail}")?;
    }
    if total > EVIDENCE_SHOWN {
        writeln!(f, "  {what}: and {} more", total - EVIDENCE_SHOWN)?;
    }
    Ok(())
}
