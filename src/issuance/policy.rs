//! What each partner reply leads to: the contract's table, in one place.
//!
//! | reply          | to open-card                  | to a status check        |
//! |----------------|-------------------------------|--------------------------|
//! | success        | schedule the first check      | `card.issued`            |
//! | 1000           | check once now (pending check)| keep checking            |
//! | 1002           | schedule a check              | keep checking            |
//! | 1003           | schedule a check              | keep checking            |
//! | 1005           | keep checking                 | keep checking            |
//! | 1006, 1008     | rejected, not retryable       | same                     |
//! | 1007, 1009     | retry after the retry delay   | same                     |
//! | another code   | rejected, not retryable       | same                     |
//! | no usable reply| retry after the retry delay   | same                     |
//! | 401, 403       | retry after the longest delay | same                     |
//!
//! The pending check (after a 1000) is a status check whose 1003 means
//! "the application in progress is not ours": `card.failed`, rejected, code
//! 1000, retryable; unless an earlier open-card of ours may have got through
//! unanswered, when it means "not yet" as anywhere else. The two cells the
//! contract leaves empty (1002 to a status check, 1003 to open-card) make no
//! sense from a partner; they lead to status checks, the answer that cannot
//! cost a card.
//!
//! Past the deadline, whatever would have waited fails instead with
//! `deadline_exceeded`; a final answer that arrives on the last check still
//! counts.

use std::time::Duration;

use super::{Failure, FailureReason, Progress, Stage};
use crate::domain::{CardNumber, Expiry};
use crate::partner::{PartnerCode, Reply};
use crate::settings::IssuanceSettings;

/// The delays decisions choose from.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Waits before each status check; the last repeats.
    pub status_check_delays: Vec<Duration>,
    /// Waits before each retry; the last repeats.
    pub retry_delays: Vec<Duration>,
}

impl Plan {
    /// The plan the settings describe.
    pub fn new(settings: &IssuanceSettings) -> Self {
        Self {
            status_check_delays: settings.status_check_delays.clone(),
            retry_delays: settings.retry_delays.clone(),
        }
    }

    /// Every distinct delay a decision may choose: one delay queue each. A
    /// zero delay needs no queue; such a step goes straight back.
    pub fn all_delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = self
            .status_check_delays
            .iter()
            .chain(&self.retry_delays)
            .copied()
            .collect();
        delays.retain(|delay| !delay.is_zero());
        delays.sort();
        delays.dedup();
        delays
    }

    fn status_check_delay(&self, checks_made: u32) -> Duration {
        nth_or_last(&self.status_check_delays, checks_made)
    }

    /// The retry delay after `retries` failures in a row, or, when the
    /// partner asked for a longer wait, the shortest configured delay that
    /// honours it.
    fn retry_delay(&self, retries: u32, asked: Option<Duration>) -> Duration {
        let planned = nth_or_last(&self.retry_delays, retries);
        match asked {
            Some(asked) if asked > planned => {
                let mut sorted = self.retry_delays.clone();
                sorted.sort();
                sorted
                    .into_iter()
                    .find(|delay| *delay >= asked)
                    .unwrap_or(self.longest_retry())
            }
            _ => planned,
        }
    }

    fn longest_retry(&self) -> Duration {
        self.retry_delays.iter().copied().max().unwrap_or_default()
    }
}

fn nth_or_last(delays: &[Duration], n: u32) -> Duration {
    let index = (n as usize).min(delays.len().saturating_sub(1));
    delays.get(index).copied().unwrap_or_default()
}

/// Why a status check was scheduled, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCheckReason {
    /// open-card accepted the application.
    Accepted,
    /// open-card said the request id is known (1002).
    DuplicateRequest,
    /// 1005.
    UnderReview,
    /// 1003 on a status check.
    NotFoundYet,
    /// 1000: an application is pending, and it is ours.
    ApplicationPending,
}

impl StatusCheckReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::DuplicateRequest => "duplicate_request",
            Self::UnderReview => "under_review",
            Self::NotFoundYet => "not_found_yet",
            Self::ApplicationPending => "application_pending",
        }
    }
}

/// What happens next to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run `progress.stage` at once, within the same delivery.
    RunNow(Progress),
    /// Check the status after `delay`.
    CheckLater {
        /// The progress the scheduled message carries.
        progress: Progress,
        /// How long to wait.
        delay: Duration,
        /// Why, for the metric.
        reason: StatusCheckReason,
    },
    /// Make the same call again after `delay`.
    RetryLater {
        /// The progress the scheduled message carries.
        progress: Progress,
        /// How long to wait.
        delay: Duration,
        /// Why, as a metric label.
        reason: &'static str,
    },
    /// The card exists: publish `card.issued`.
    Issue {
        /// The card number.
        card: CardNumber,
        /// Its expiry.
        exp: Expiry,
    },
    /// Publish `card.failed`.
    Fail(Failure),
}

/// The stage to run for a message that just arrived, or the failure to
/// publish at once because its deadline passed.
///
/// Past the deadline an open-card is not sent again. If an earlier one may
/// have reached the partner unanswered, one status check runs instead, so a
/// card issued in the meantime is still reported.
pub fn stage_to_run(progress: &Progress, now_ms: u64) -> Result<Stage, Failure> {
    if !progress.is_past_deadline(now_ms) {
        return Ok(progress.stage);
    }
    match progress.stage {
        Stage::OpenCard if !progress.maybe_submitted => Err(deadline_exceeded(progress)),
        Stage::OpenCard => Ok(Stage::StatusCheck),
        other => Ok(other),
    }
}

/// Decides what a reply to the call made at `stage` leads to.
pub fn decide(
    stage: Stage,
    reply: Reply,
    progress: &Progress,
    plan: &Plan,
    now_ms: u64,
) -> Decision {
    let decision = by_table(stage, reply, progress, plan);
    match decision {
        // The pending check runs even now: it is the answer to the 1000
        // just received, and its own decision meets this same test.
        Decision::CheckLater { progress: next, .. }
        | Decision::RetryLater { progress: next, .. }
            if next.is_past_deadline(now_ms) =>
        {
            Decision::Fail(deadline_exceeded(&next))
        }
        decision => decision,
    }
}

fn by_table(stage: Stage, reply: Reply, progress: &Progress, plan: &Plan) -> Decision {
    use PartnerCode::*;
    match (stage, reply) {
        (_, Reply::Issued { card, exp }) => Decision::Issue { card, exp },
        (Stage::OpenCard, Reply::Accepted) => {
            check_later(stage, progress, plan, StatusCheckReason::Accepted)
        }
        // A status success without a card is read as unreadable; this arm
        // only keeps the table total.
        (_, Reply::Accepted) => check_later(stage, progress, plan, StatusCheckReason::UnderReview),
        (stage, Reply::Refused { code, message }) => {
            let before = progress;
            let progress = &Progress {
                last_code: Some(code.to_string()),
                last_message: Some(message.clone()),
                ..progress.clone()
            };
            match (stage, &code) {
                (Stage::OpenCard, ApplicationPending) => Decision::RunNow(Progress {
                    stage: Stage::PendingCheck,
                    retries: 0,
                    ..progress.clone()
                }),
                (_, ApplicationPending) => {
                    check_later(stage, progress, plan, StatusCheckReason::ApplicationPending)
                }
                // A known request id: the status tells. (1002 to a status
                // check makes no sense from a partner; checking again is the
                // answer that cannot cost a card.)
                (_, DuplicateRequestId) => {
                    check_later(stage, progress, plan, StatusCheckReason::DuplicateRequest)
                }
                // 1003 can appear right after a submission, so when an
                // earlier open-card of ours may have got through unanswered,
                // the pending application may be ours: keep checking.
                (Stage::PendingCheck, NotFound) if before.maybe_submitted => {
                    check_later(stage, progress, plan, StatusCheckReason::NotFoundYet)
                }
                // The 1000 stands: the application in progress is someone
                // else's request, so the customer may try again once it ends.
                (Stage::PendingCheck, NotFound) => Decision::Fail(Failure {
                    reason: FailureReason::Rejected,
                    code: Some("1000".into()),
                    message: before.last_message.clone(),
                    retryable: true,
                }),
                // To a status check, "not yet"; to open-card it makes no
                // sense, and checking is again the answer that cannot cost a
                // card (the deadline ends it if the partner never knows it).
                (Stage::StatusCheck | Stage::OpenCard, NotFound) => {
                    check_later(stage, progress, plan, StatusCheckReason::NotFoundYet)
                }
                (_, UnderReview) => {
                    check_later(stage, progress, plan, StatusCheckReason::UnderReview)
                }
                (_, HumoUnavailable) => retry_later(stage, progress, plan, None, "code_1007"),
                (_, ServiceUnavailable) => retry_later(stage, progress, plan, None, "code_1009"),
                (_, _) => Decision::Fail(Failure {
                    reason: FailureReason::Rejected,
                    code: Some(code.to_string()),
                    message: Some(message),
                    retryable: false,
                }),
            }
        }
        (stage, Reply::Unavailable { cause, retry_after }) => {
            // An open-card that got no answer may still have been taken.
            let progress = &Progress {
                maybe_submitted: progress.maybe_submitted || stage == Stage::OpenCard,
                ..progress.clone()
            };
            retry_later(stage, progress, plan, retry_after, cause.label())
        }
        (stage, Reply::CredentialsRejected { .. }) => Decision::RetryLater {
            progress: Progress {
                stage,
                ..progress.clone()
            },
            delay: plan.longest_retry(),
            reason: "credentials_rejected",
        },
    }
}

fn check_later(
    stage: Stage,
    progress: &Progress,
    plan: &Plan,
    reason: StatusCheckReason,
) -> Decision {
    let checks = match stage {
        Stage::OpenCard => progress.checks,
        Stage::PendingCheck | Stage::StatusCheck => progress.checks + 1,
    };
    Decision::CheckLater {
        delay: plan.status_check_delay(checks),
        progress: Progress {
            stage: Stage::StatusCheck,
            checks,
            retries: 0,
            ..progress.clone()
        },
        reason,
    }
}

fn retry_later(
    stage: Stage,
    progress: &Progress,
    plan: &Plan,
    asked: Option<Duration>,
    reason: &'static str,
) -> Decision {
    Decision::RetryLater {
        delay: plan.retry_delay(progress.retries, asked),
        progress: Progress {
            stage,
            retries: progress.retries + 1,
            ..progress.clone()
        },
        reason,
    }
}

fn deadline_exceeded(progress: &Progress) -> Failure {
    Failure {
        reason: FailureReason::DeadlineExceeded,
        code: progress.last_code.clone(),
        message: progress.last_message.clone(),
        retryable: true,
    }
}

#[cfg(test)]
mod tests;
