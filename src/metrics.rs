//! Every metric the worker exports: names, labels and buckets, in one place.
//!
//! Labels hold only bounded, non-personal values: stages, reasons, endpoints
//! and the partner's known error codes. Never a request id, phone, PINFL or
//! card number.

use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Commands taken from the command queue, valid or not.
pub const COMMANDS_RECEIVED: &str = "card_issuer_commands_received_total";
/// Terminal events published, by `outcome` and `reason`.
pub const OUTCOMES: &str = "card_issuer_outcomes_total";
/// Partner calls, by `endpoint` and `result`.
pub const PARTNER_CALLS: &str = "card_issuer_partner_calls_total";
/// Partner error codes seen, by `endpoint` and `code`.
pub const PARTNER_ERROR_CODES: &str = "card_issuer_partner_error_codes_total";
/// Calls scheduled again after a transient failure, by `stage` and `reason`.
pub const RETRIES: &str = "card_issuer_retries_total";
/// Status checks scheduled, by the `stage` that scheduled them and `reason`.
pub const STATUS_CHECKS_SCHEDULED: &str = "card_issuer_status_checks_scheduled_total";
/// Partner call latency, by `endpoint`.
pub const PARTNER_CALL_DURATION: &str = "card_issuer_partner_call_duration_seconds";
/// Time from a command's first receipt to its terminal event, by `outcome`.
pub const TIME_TO_OUTCOME: &str = "card_issuer_time_to_outcome_seconds";
/// Deliveries being handled right now.
pub const MESSAGES_IN_PROGRESS: &str = "card_issuer_messages_in_progress";
/// Messages moved to the dead-letter queue, by `reason`.
pub const DEAD_LETTERED: &str = "card_issuer_dead_lettered_total";
/// Partner answers of 401 or 403.
pub const PARTNER_AUTH_FAILURES: &str = "card_issuer_partner_auth_failures_total";
/// The circuit breaker: 0 closed, 1 half-open (one trial call), 2 open.
pub const CIRCUIT_STATE: &str = "card_issuer_circuit_breaker_state";
/// Products the partner offers, as last fetched.
pub const PRODUCTS_KNOWN: &str = "card_issuer_products_known";
/// 1 while connected to the broker, topology declared and consuming.
pub const BROKER_READY: &str = "card_issuer_broker_ready";
/// Broker sessions lost and started again.
pub const BROKER_RECONNECTS: &str = "card_issuer_broker_reconnects_total";
/// Publishes that failed (unroutable, nacked, unconfirmed in time), by `reason`.
pub const PUBLISH_FAILURES: &str = "card_issuer_publish_failures_total";
/// Seconds partner calls waited for the calls-per-second cap.
pub const RATE_LIMIT_WAIT: &str = "card_issuer_partner_rate_limit_wait_seconds";

/// Partner latency, from a quick answer on loopback to a slow partner's tens
/// of seconds.
const PARTNER_BUCKETS: &[f64] = &[
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Time to outcome, from sub-second issuance to the 24-hour deadline.
const OUTCOME_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0,
    21600.0, 43200.0, 86400.0, 172800.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Handles of the series a card touches, by label values, kept once the
/// recorder is installed. Each `counter!` with labels builds a key and looks
/// it up in the registry: about 14k instructions a card over ten calls
/// (callgrind); a kept handle costs a short scan. Before `install` (unit
/// tests) nothing is kept, so no handle outlives a recorder it missed.
struct Handles<T> {
    known: RwLock<Vec<([&'static str; 2], T)>>,
}

impl<T: Clone> Handles<T> {
    const fn new() -> Self {
        Self {
            known: RwLock::new(Vec::new()),
        }
    }

    /// The handle for `labels`, registered with `register` the first time.
    fn get(&self, labels: [&'static str; 2], register: impl FnOnce() -> T) -> T {
        if HANDLE.get().is_none() {
            return register();
        }
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, handle)) = known.iter().find(|(key, _)| *key == labels) {
            return handle.clone();
        }
        drop(known);
        let handle = register();
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        known.push((labels, handle.clone()));
        handle
    }
}

static COMMANDS_RECEIVED_HANDLE: Handles<Counter> = Handles::new();
static IN_PROGRESS_HANDLE: Handles<Gauge> = Handles::new();
static OUTCOME_COUNTERS: Handles<Counter> = Handles::new();
static OUTCOME_AGES: Handles<Histogram> = Handles::new();
static PARTNER_CALL_COUNTERS: Handles<Counter> = Handles::new();
static PARTNER_CALL_DURATIONS: Handles<Histogram> = Handles::new();
static STATUS_CHECKS_SCHEDULED_COUNTERS: Handles<Counter> = Handles::new();

/// Installs the Prometheus recorder once per process and returns the handle
/// that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(PARTNER_CALL_DURATION.into()),
                    PARTNER_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(TIME_TO_OUTCOME.into()),
                        OUTCOME_BUCKETS,
                    )
                })
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(RATE_LIMIT_WAIT.into()),
                        PARTNER_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .install_recorder()
                .expect("the metrics recorder is installed once, here");
            describe();
            start_at_zero();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        COMMANDS_RECEIVED,
        "Commands taken from the command queue, valid or not."
    );
    describe_counter!(
        OUTCOMES,
        "Terminal events published, by outcome and reason."
    );
    describe_counter!(PARTNER_CALLS, "Partner calls, by endpoint and result.");
    describe_counter!(
        PARTNER_ERROR_CODES,
        "Partner error codes, by endpoint and code."
    );
    describe_counter!(RETRIES, "Calls scheduled again after a transient failure.");
    describe_counter!(
        STATUS_CHECKS_SCHEDULED,
        "Status checks scheduled, by stage and reason."
    );
    describe_histogram!(PARTNER_CALL_DURATION, "Partner call latency in seconds.");
    describe_histogram!(
        TIME_TO_OUTCOME,
        "Seconds from first receipt to the terminal event."
    );
    describe_gauge!(MESSAGES_IN_PROGRESS, "Deliveries being handled right now.");
    describe_counter!(
        DEAD_LETTERED,
        "Messages moved to the dead-letter queue, by reason."
    );
    describe_counter!(PARTNER_AUTH_FAILURES, "Partner answers of 401 or 403.");
    describe_gauge!(
        CIRCUIT_STATE,
        "Circuit breaker: 0 closed, 1 half-open, 2 open."
    );
    describe_gauge!(
        PRODUCTS_KNOWN,
        "Products the partner offers, as last fetched."
    );
    describe_gauge!(
        BROKER_READY,
        "1 while connected, topology declared and consuming."
    );
    describe_counter!(BROKER_RECONNECTS, "Broker sessions lost and started again.");
    describe_counter!(PUBLISH_FAILURES, "Publishes that failed, by reason.");
    describe_histogram!(
        RATE_LIMIT_WAIT,
        "Seconds partner calls waited for the rate cap."
    );
}

/// Series that alerts compute `increase()` or ratios over exist from the
/// start, at zero: a counter first seen at 1 would hide its first increment
/// from Prometheus.
fn start_at_zero() {
    for name in [COMMANDS_RECEIVED, PARTNER_AUTH_FAILURES, BROKER_RECONNECTS] {
        counter!(name).absolute(0);
    }
    let outcomes = [
        ("issued", "issued"),
        ("failed", "rejected"),
        ("failed", "invalid_command"),
        ("failed", "unknown_product"),
        ("failed", "deadline_exceeded"),
    ];
    for (outcome, reason) in outcomes {
        counter!(OUTCOMES, "outcome" => outcome, "reason" => reason).absolute(0);
    }
    for reason in ["unroutable", "nacked", "unconfirmed", "channel"] {
        counter!(PUBLISH_FAILURES, "reason" => reason).absolute(0);
    }
    gauge!(MESSAGES_IN_PROGRESS).set(0.0);
    gauge!(BROKER_READY).set(0.0);
    gauge!(PRODUCTS_KNOWN).set(0.0);
}

/// Counts a command taken from the queue.
pub fn command_received() {
    COMMANDS_RECEIVED_HANDLE
        .get(["", ""], || counter!(COMMANDS_RECEIVED))
        .increment(1);
}

/// Counts a terminal event and records how long the request took.
pub fn outcome(outcome: &'static str, reason: &'static str, age: Duration) {
    OUTCOME_COUNTERS
        .get(
            [outcome, reason],
            || counter!(OUTCOMES, "outcome" => outcome, "reason" => reason),
        )
        .increment(1);
    OUTCOME_AGES
        .get(
            [outcome, ""],
            || histogram!(TIME_TO_OUTCOME, "outcome" => outcome),
        )
        .record(age.as_secs_f64());
}

/// Counts a partner call and records its latency.
pub fn partner_call(endpoint: &'static str, result: &'static str, took: Duration) {
    PARTNER_CALL_COUNTERS
        .get(
            [endpoint, result],
            || counter!(PARTNER_CALLS, "endpoint" => endpoint, "result" => result),
        )
        .increment(1);
    PARTNER_CALL_DURATIONS
        .get(
            [endpoint, ""],
            || histogram!(PARTNER_CALL_DURATION, "endpoint" => endpoint),
        )
        .record(took.as_secs_f64());
}

/// Counts a partner error code; `code` must come from a bounded set.
pub fn partner_error_code(endpoint: &'static str, code: &'static str) {
    counter!(PARTNER_ERROR_CODES, "endpoint" => endpoint, "code" => code).increment(1);
}

/// Counts a retry scheduled after a transient failure.
pub fn retry(stage: &'static str, reason: &'static str) {
    counter!(RETRIES, "stage" => stage, "reason" => reason).increment(1);
}

/// Counts a status check scheduled.
pub fn status_check_scheduled(stage: &'static str, reason: &'static str) {
    STATUS_CHECKS_SCHEDULED_COUNTERS
        .get(
            [stage, reason],
            || counter!(STATUS_CHECKS_SCHEDULED, "stage" => stage, "reason" => reason),
        )
        .increment(1);
}

/// Counts a message parked in the dead-letter queue.
pub fn dead_lettered(reason: &'static str) {
    counter!(DEAD_LETTERED, "reason" => reason).increment(1);
}

/// Counts a 401 or 403 from the partner.
pub fn partner_auth_failure() {
    counter!(PARTNER_AUTH_FAILURES).increment(1);
}

/// Sets the circuit breaker gauge.
pub fn circuit_state(state: u8) {
    gauge!(CIRCUIT_STATE).set(f64::from(state));
}

/// Sets the number of products known.
pub fn products_known(count: usize) {
    gauge!(PRODUCTS_KNOWN).set(count as f64);
}

/// Sets whether the broker side is ready.
pub fn broker_ready(ready: bool) {
    gauge!(BROKER_READY).set(if ready { 1.0 } else { 0.0 });
}

/// Counts a broker session lost and started again.
pub fn broker_reconnect() {
    counter!(BROKER_RECONNECTS).increment(1);
}

/// Counts a failed publish.
pub fn publish_failure(reason: &'static str) {
    counter!(PUBLISH_FAILURES, "reason" => reason).increment(1);
}

/// Records a wait for the calls-per-second cap.
pub fn rate_limit_wait(waited: Duration) {
    histogram!(RATE_LIMIT_WAIT).record(waited.as_secs_f64());
}

/// Counts a delivery as in progress until the guard is dropped, so a panic or
/// an early return cannot leave the gauge high.
pub struct InProgress(());

impl InProgress {
    /// Starts counting one delivery.
    pub fn start() -> Self {
        in_progress_gauge().increment(1.0);
        Self(())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        in_progress_gauge().decrement(1.0);
    }
}

fn in_progress_gauge() -> Gauge {
    IN_PROGRESS_HANDLE.get(["", ""], || gauge!(MESSAGES_IN_PROGRESS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_handles_count_into_the_series_the_registry_has() {
        let handle = install();

        for _ in 0..3 {
            partner_call("status", "kept-handle-test", Duration::from_millis(3));
        }
        status_check_scheduled("kept_handle_stage", "kept_handle_reason");
        status_check_scheduled("kept_handle_stage", "kept_handle_reason");

        let text = handle.render();
        let calls =
            r#"card_issuer_partner_calls_total{endpoint="status",result="kept-handle-test"} 3"#;
        let scheduled = "card_issuer_status_checks_scheduled_total\
                         {stage=\"kept_handle_stage\",reason=\"kept_handle_reason\"} 2";
        assert!(text.contains(calls), "{text}");
        assert!(text.contains(scheduled), "{text}");
    }
}
