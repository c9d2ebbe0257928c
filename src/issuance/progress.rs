//! Where a request stands, carried in its message's own headers.
//!
//! The stage, the counts that pick the next delay, the deadline and the
//! last partner code travel with the message, not in the worker's memory and
//! not in RabbitMQ's `x-death`, so any worker, a restarted one or another
//! replica, carries on where the last one stopped.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Header names, all prefixed so they cannot clash with the caller's own.
pub mod headers {
    /// Which step runs next: `open_card`, `pending_check` or `status_check`.
    pub const STAGE: &str = "card-issuer-stage";
    /// Status checks already made.
    pub const CHECKS: &str = "card-issuer-checks";
    /// Transient failures in a row at the current step.
    pub const RETRIES: &str = "card-issuer-retries";
    /// When the command was first received, in Unix milliseconds.
    pub const RECEIVED_AT: &str = "card-issuer-received-at";
    /// When the request fails if still undecided, in Unix milliseconds.
    pub const DEADLINE: &str = "card-issuer-deadline";
    /// The partner's last error code.
    pub const LAST_CODE: &str = "card-issuer-last-code";
    /// The partner's last error text.
    pub const LAST_MESSAGE: &str = "card-issuer-last-message";
    /// Whether an open-card call may have reached the partner unanswered.
    pub const MAYBE_SUBMITTED: &str = "card-issuer-maybe-submitted";
    /// Times the handler itself failed on this message.
    pub const HANDLER_FAILURES: &str = "card-issuer-handler-failures";
    /// Why a message was parked (dead-letter queue only).
    pub const REASON: &str = "card-issuer-reason";
    /// The parking reason in a sentence (dead-letter queue only).
    pub const DETAIL: &str = "card-issuer-detail";
    /// The stage a parked message was at (dead-letter queue only).
    pub const PARKED_FROM: &str = "card-issuer-parked-from";
    /// RabbitMQ's count of earlier deliveries (quorum queues).
    pub const DELIVERY_COUNT: &str = "x-delivery-count";

    /// Every header the worker writes for its own use.
    pub const OWN: &[&str] = &[
        STAGE,
        CHECKS,
        RETRIES,
        RECEIVED_AT,
        DEADLINE,
        LAST_CODE,
        LAST_MESSAGE,
        MAYBE_SUBMITTED,
        HANDLER_FAILURES,
        REASON,
        DETAIL,
        PARKED_FROM,
    ];
}

/// The partner's last message is kept to this many characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// A step of a request's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Ask the partner for a card.
    OpenCard,
    /// After a 1000 answer: one status check to learn whether the pending
    /// application is ours.
    PendingCheck,
    /// Ask the partner how the application stands.
    StatusCheck,
}

impl Stage {
    /// The header value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenCard => "open_card",
            Self::PendingCheck => "pending_check",
            Self::StatusCheck => "status_check",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "open_card" => Some(Self::OpenCard),
            "pending_check" => Some(Self::PendingCheck),
            "status_check" => Some(Self::StatusCheck),
            _ => None,
        }
    }
}

/// A request's progress, as read from and written to message headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The step to run when the message arrives.
    pub stage: Stage,
    /// Status checks already made; picks the next status-check delay.
    pub checks: u32,
    /// Transient failures in a row; picks the next retry delay.
    pub retries: u32,
    /// First receipt, Unix milliseconds.
    pub received_at_ms: u64,
    /// The overall deadline, Unix milliseconds.
    pub deadline_ms: u64,
    /// The partner's last error code.
    pub last_code: Option<String>,
    /// The partner's last error text, shortened.
    pub last_message: Option<String>,
    /// An open-card call timed out or broke, so the partner may hold the
    /// application although it never said so.
    pub maybe_submitted: bool,
    /// Times the handler itself failed on this message.
    pub handler_failures: u32,
}

/// A header of ours holds something we never write.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("header {header} holds an unusable value")]
pub struct ProgressError {
    /// The header.
    pub header: &'static str,
}

impl Progress {
    /// The progress of a command seen for the first time.
    pub fn fresh(now_ms: u64, deadline: Duration) -> Self {
        Self {
            stage: Stage::OpenCard,
            checks: 0,
            retries: 0,
            received_at_ms: now_ms,
            deadline_ms: now_ms.saturating_add(deadline.as_millis() as u64),
            last_code: None,
            last_message: None,
            maybe_submitted: false,
            handler_failures: 0,
        }
    }

    /// Reads progress from a message's headers; a message without our stage
    /// header is a fresh command.
    pub fn from_headers(
        headers: Option<&FieldTable>,
        now_ms: u64,
        deadline: Duration,
    ) -> Result<Self, ProgressError> {
        let fresh = Self::fresh(now_ms, deadline);
        let Some(table) = headers else {
            return Ok(fresh);
        };
        let table = table.inner();
        let Some(stage) = table.get(headers::STAGE) else {
            return Ok(fresh);
        };
        let stage = text(stage)
            .and_then(|text| Stage::parse(&text))
            .ok_or(ProgressError {
                header: headers::STAGE,
            })?;
        let number = |name: &'static str, default: u64| match table.get(name) {
            None => Ok(default),
            Some(value) => integer(value).ok_or(ProgressError { header: name }),
        };
        let small = |name: &'static str| {
            number(name, 0)
                .and_then(|n| u32::try_from(n).map_err(|_| ProgressError { header: name }))
        };
        Ok(Self {
            stage,
            checks: small(headers::CHECKS)?,
            retries: small(headers::RETRIES)?,
            received_at_ms: number(headers::RECEIVED_AT, fresh.received_at_ms)?,
            deadline_ms: number(headers::DEADLINE, fresh.deadline_ms)?,
            last_code: table.get(headers::LAST_CODE).and_then(text),
            last_message: table.get(headers::LAST_MESSAGE).and_then(text),
            maybe_submitted: matches!(
                table.get(headers::MAYBE_SUBMITTED),
                Some(AMQPValue::Boolean(true))
            ),
            handler_failures: small(headers::HANDLER_FAILURES)?,
        })
    }

    /// Writes progress into a copy of the message's headers, keeping the
    /// caller's own.
    pub fn to_headers(&self, original: Option<&FieldTable>) -> FieldTable {
        let mut table = without_own(original);
        let mut put = |name: &str, value: AMQPValue| {
            table.insert(ShortString::from(name), value);
        };
        put(headers::STAGE, long_string(self.stage.as_str()));
        put(
            headers::CHECKS,
            AMQPValue::LongLongInt(i64::from(self.checks)),
        );
        put(
            headers::RETRIES,
            AMQPValue::LongLongInt(i64::from(self.retries)),
        );
        put(
            headers::RECEIVED_AT,
            AMQPValue::LongLongInt(self.received_at_ms as i64),
        );
        put(
            headers::DEADLINE,
            AMQPValue::LongLongInt(self.deadline_ms as i64),
        );
        put(
            headers::MAYBE_SUBMITTED,
            AMQPValue::Boolean(self.maybe_submitted),
        );
        put(
            headers::HANDLER_FAILURES,
            AMQPValue::LongLongInt(i64::from(self.handler_failures)),
        );
        if let Some(code) = &self.last_code {
            put(headers::LAST_CODE, long_string(code));
        }
        if let Some(message) = &self.last_message {
            let short: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
            put(headers::LAST_MESSAGE, long_string(&short));
        }
        table
    }

    /// Time since first receipt.
    pub fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.received_at_ms))
    }

    /// Whether the deadline has passed.
    pub fn is_past_deadline(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms
    }
}

/// How many times RabbitMQ delivered this message before (quorum queues).
pub fn earlier_deliveries(headers: Option<&FieldTable>) -> u64 {
    headers
        .and_then(|table| table.inner().get(headers::DELIVERY_COUNT))
        .and_then(integer)
        .unwrap_or(0)
}

/// A copy of the headers with ours removed, and RabbitMQ's delivery count,
/// which belongs to the queue the message leaves.
pub fn without_own(original: Option<&FieldTable>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in original.into_iter().flat_map(|table| table.inner()) {
        let name_text = name.as_str();
        if !headers::OWN.contains(&name_text) && name_text != headers::DELIVERY_COUNT {
            table.insert(name.clone(), value.clone());
        }
    }
    table
}

/// A header's value as text, when it is a string.
pub fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    headers
        .and_then(|table| table.inner().get(name))
        .and_then(text)
}

/// A header value as text.
pub fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text.as_bytes().to_vec()))
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(text) => String::from_utf8(text.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
        _ => None,
    }
}

fn integer(value: &AMQPValue) -> Option<u64> {
    let signed = match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::Timestamp(n) => return Some(*n),
        _ => return None,
    };
    u64::try_from(signed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_message_without_our_headers_is_a_fresh_command() {
        let progress = Progress::from_headers(None, 1_000, DAY).unwrap();

        assert_eq!(progress, Progress::fresh(1_000, DAY));
        assert_eq!(progress.deadline_ms, 1_000 + 86_400_000);
    }

    #[test]
    fn progress_survives_a_trip_through_headers() {
        let mut original = FieldTable::default();
        original.insert("x-upstream-trace".into(), long_string("abc"));
        let progress = Progress {
            stage: Stage::StatusCheck,
            checks: 3,
            retries: 1,
            received_at_ms: 5,
            deadline_ms: 99,
            last_code: Some("1005".into()),
            last_message: Some("Заявка на рассмотрении".into()),
            maybe_submitted: true,
            handler_failures: 2,
        };

        let headers = progress.to_headers(Some(&original));
        let read = Progress::from_headers(Some(&headers), 1_000, DAY).unwrap();

        assert_eq!(read, progress);
        assert!(headers.contains_key("x-upstream-trace"));
    }

    #[test]
    fn an_unknown_stage_is_an_error_not_a_guess() {
        let mut headers = FieldTable::default();
        headers.insert(headers::STAGE.into(), long_string("issue_twice"));

        let read = Progress::from_headers(Some(&headers), 0, DAY);

        assert_eq!(
            read,
            Err(ProgressError {
                header: headers::STAGE
            })
        );
    }

    #[test]
    fn counts_from_other_clients_may_be_any_integer_type() {
        let mut headers = FieldTable::default();
        headers.insert(
            headers::STAGE.into(),
            AMQPValue::ShortString("status_check".into()),
        );
        headers.insert(headers::CHECKS.into(), AMQPValue::ShortShortUInt(4));
        headers.insert(headers::RETRIES.into(), AMQPValue::LongInt(-1));

        let read = Progress::from_headers(Some(&headers), 0, DAY);

        assert_eq!(
            read,
            Err(ProgressError {
                header: headers::RETRIES
            })
        );
        headers.insert(headers::RETRIES.into(), AMQPValue::LongUInt(2));
        let read = Progress::from_headers(Some(&headers), 0, DAY).unwrap();
        assert_eq!((read.checks, read.retries), (4, 2));
    }

    #[test]
    fn the_delivery_count_is_read_and_not_carried_on() {
        let mut headers = FieldTable::default();
        headers.insert(headers::DELIVERY_COUNT.into(), AMQPValue::LongLongInt(3));

        assert_eq!(earlier_deliveries(Some(&headers)), 3);
        assert!(!without_own(Some(&headers)).contains_key(headers::DELIVERY_COUNT));
    }
}
