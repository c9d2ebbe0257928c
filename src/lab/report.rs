//! The figures as a run prints them: one line per figure, then the
//! requests that went wrong with what the events and the partner say about
//! each, then the verdict. No card number, phone number or PINFL appears.

use std::collections::BTreeMap;
use std::fmt;

use super::figures::{CallSpread, Evidence, Figures};

/// How many requests of each kind of trouble the plain form lists.
const EVIDENCE_SHOWN: usize = 20;

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

impl super::run::Report for Figures {
    fn passed(&self) -> bool {
        Figures::passed(self)
    }
}

impl Figures {
    fn fmt_outcomes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: usize = self.failed.values().sum();
        writeln!(f, "run {}", self.run_id)?;
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
                self.unsent_with_events
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
        if let Some(ready) = d.ready_at_end {
            let state = if ready { "consuming" } else { "NOT READY" };
            line(f, "last worker at the end", state, "its /readyz")?;
        }
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
        // `{:#}` lists every request; the plain form the first few.
        let shown = if f.alternate() {
            usize::MAX
        } else {
            EVIDENCE_SHOWN
        };
        evidence(f, "lost", &self.lost, shown)?;
        evidence(f, "conflicting", &self.conflicting, shown)?;
        evidence(f, "card mismatch", &self.card_mismatches, shown)?;
        evidence(f, "unannounced card", &self.unannounced_cards, shown)?;
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

fn evidence(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    items: &[Evidence],
    shown: usize,
) -> fmt::Result {
    for item in items.iter().take(shown) {
        writeln!(f, "  {what}: {} ({})", item.request_id, item.detail)?;
    }
    if items.len() > shown {
        let more = items.len() - shown;
        writeln!(f, "  {what}: and {more} more (all of them in figures.txt)")?;
    }
    Ok(())
}
