//! Following the demo's commands to their outcomes and printing each one.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use super::cases::{Case, Expect};
use crate::upstream::{Event, ParkedMessage};

/// What each case has received so far.
pub struct Tally<'a> {
    cases: &'a [Case],
    seen: Vec<Seen>,
}

#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    parked: Option<String>,
    problems: Vec<String>,
}

impl<'a> Tally<'a> {
    /// Nothing received yet.
    pub fn new(cases: &'a [Case]) -> Self {
        Self {
            cases,
            seen: cases.iter().map(|_| Seen::default()).collect(),
        }
    }

    /// Records and prints an event; `case` is `None` when it matches no case.
    pub fn on_event(&mut self, case: Option<usize>, event: &Event, at: Duration) {
        let Some(index) = case else {
            println!(
                "  ?? an event for a request the demo did not send: {}",
                event.routing_key
            );
            return;
        };
        let seen = &mut self.seen[index];
        seen.events.push(event.clone());
        let problem = check_event(&self.cases[index].expect, event);
        print_line(
            problem.is_none(),
            &event_summary(event),
            self.cases[index].title,
            at,
        );
        seen.problems.extend(problem);
    }

    /// Records and prints a parked message.
    pub fn on_parked(&mut self, case: Option<usize>, message: &ParkedMessage, at: Duration) {
        let Some(index) = case else {
            println!(
                "  ?? a parked message the demo did not send ({})",
                message.reason
            );
            return;
        };
        let expected = match self.cases[index].expect {
            Expect::Failed { parked, .. } => parked,
            Expect::ParkedOnly { reason } => Some(reason),
            Expect::Issued { .. } => None,
        };
        let good = expected == Some(message.reason.as_str());
        let summary = format!("parked: {} ({})", message.reason, message.detail);
        print_line(good, &summary, self.cases[index].title, at);
        let seen = &mut self.seen[index];
        if !good {
            seen.problems.push(format!(
                "parked as {}, expected {expected:?}",
                message.reason
            ));
        }
        seen.parked = Some(message.reason.clone());
    }

    /// Whether every case has everything it waits for.
    pub fn all_settled(&self) -> bool {
        self.cases
            .iter()
            .zip(&self.seen)
            .all(|(case, seen)| settled(&case.expect, seen))
    }

    /// Prints the summary; true when every case reached its outcome.
    pub fn finish(self, took: Duration) -> bool {
        let mut failures = 0;
        for (case, seen) in self.cases.iter().zip(&self.seen) {
            let mut problems = seen.problems.clone();
            if !settled(&case.expect, seen) {
                problems.push(format!("still waiting: expected {:?}", case.expect));
            }
            if let Expect::Issued { .. } = case.expect {
                let ids: HashSet<_> = seen.events.iter().map(|event| &event.message_id).collect();
                if ids.len() > 1 {
                    problems.push("two different event ids for one request".into());
                }
            }
            if !problems.is_empty() {
                failures += 1;
                println!("demo: FAILED {}: {}", case.title, problems.join("; "));
            }
        }
        let total = self.cases.len();
        println!(
            "\ndemo: {} of {total} commands reached the expected outcome in {:.1} s",
            total - failures,
            took.as_secs_f64()
        );
        failures == 0
    }
}

fn settled(expect: &Expect, seen: &Seen) -> bool {
    match expect {
        Expect::Issued { copies } => seen.events.len() >= *copies,
        Expect::Failed { parked, .. } => {
            !seen.events.is_empty() && (parked.is_none() || seen.parked.is_some())
        }
        Expect::ParkedOnly { .. } => seen.parked.is_some(),
    }
}

fn check_event(expect: &Expect, event: &Event) -> Option<String> {
    let body = &event.body;
    match expect {
        Expect::Issued { .. } if event.routing_key == "card.issued" => None,
        Expect::Failed {
            reason,
            code,
            retryable,
            ..
        } if event.routing_key == "card.failed" => {
            let same = body["reason"] == *reason
                && body.get("code").and_then(Value::as_str) == *code
                && body["retryable"] == *retryable;
            (!same).then(|| format!("expected {reason} {code:?} retryable={retryable}, got {body}"))
        }
        other => Some(format!("expected {other:?}, got {}", event.routing_key)),
    }
}

fn event_summary(event: &Event) -> String {
    let body = &event.body;
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    match event.routing_key.as_str() {
        "card.issued" => {
            format!(
                "issued: card {}, exp {}",
                text("maskedCardNumber"),
                text("exp")
            )
        }
        "card.failed" => {
            let code = body.get("code").and_then(Value::as_str);
            let retryable = body
                .get("retryable")
                .and_then(Value::as_bool)
                .unwrap_or_default();
            let code = code.map(|code| format!(" {code}")).unwrap_or_default();
            format!("failed: {}{code} (retryable: {retryable})", text("reason"))
        }
        other => format!("unexpected event {other}"),
    }
}

fn print_line(good: bool, summary: &str, title: &str, at: Duration) {
    let mark = if good { "ok" } else { "!!" };
    println!(
        "  [{mark}] {:>5.1} s  {title}\n               {summary}",
        at.as_secs_f64()
    );
}
