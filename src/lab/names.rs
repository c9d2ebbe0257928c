//! The names one lab run uses on the broker. Every run has exchanges and a
//! queue prefix of its own, so it never takes commands meant for another
//! worker on the same broker, never sends its own to one, and can delete
//! everything it declared afterwards without touching anyone else's queues.

/// The first part of every name a lab run declares.
pub const LAB_PREFIX: &str = "card-issuer-lab";

/// The broker names of one run.
#[derive(Clone, Debug)]
pub struct RunNames {
    /// `<kind>-<six hex digits>`, e.g. `fault-run-3fa2c1`; also the first
    /// part of the run's request ids.
    pub run_id: String,
    /// Where the run publishes commands.
    pub commands_exchange: String,
    /// Where the run's workers publish events.
    pub events_exchange: String,
    /// The workers' `--queue-prefix`.
    pub queue_prefix: String,
    /// The lab's own durable queue of events.
    pub collector_queue: String,
}

impl RunNames {
    /// Fresh names for a run of this kind (`fault-run`).
    pub fn new(kind: &str) -> Self {
        let run_id = format!("{kind}-{:06x}", fastrand::u32(..0x100_0000));
        let base = format!("{LAB_PREFIX}.{run_id}");
        Self {
            commands_exchange: format!("{base}.commands"),
            events_exchange: format!("{base}.events"),
            queue_prefix: base.clone(),
            collector_queue: format!("{base}.lab-events"),
            run_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_share_no_name() {
        let (first, second) = (RunNames::new("fault-run"), RunNames::new("fault-run"));

        assert_ne!(first.queue_prefix, second.queue_prefix);
        assert!(
            first
                .commands_exchange
                .starts_with("card-issuer-lab.fault-run-")
        );
    }

    #[test]
    fn the_collector_queue_is_not_a_worker_queue_name() {
        let names = RunNames::new("fault-run");

        // The worker's own queues are <prefix>.open-card, .status-check,
        // .dead-letter and .delay.<delay>.
        assert!(names.collector_queue.ends_with(".lab-events"));
    }
}
