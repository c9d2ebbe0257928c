//! The contract's table, row by row, with no broker and no partner.

use std::time::Duration;

use super::*;
use crate::partner::Unavailable;

const NOW: u64 = 1_000_000;
const DAY: Duration = Duration::from_secs(86_400);

fn plan() -> Plan {
    Plan {
        status_check_delays: vec![Duration::from_secs(2), Duration::from_secs(5)],
        retry_delays: vec![
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(120),
        ],
    }
}

fn at(stage: Stage) -> Progress {
    Progress {
        stage,
        ..Progress::fresh(NOW, DAY)
    }
}

fn refused(code: &str) -> Reply {
    Reply::Refused {
        code: PartnerCode::parse(code),
        message: format!("text {code}"),
    }
}

fn unavailable(cause: Unavailable) -> Reply {
    Reply::Unavailable {
        cause,
        retry_after: None,
    }
}

fn issued() -> Reply {
    Reply::Issued {
        card: CardNumber::new("8600123456781234".into()),
        exp: Expiry("2408".into()),
    }
}

fn code(code: &str) -> Option<String> {
    Some(code.to_owned())
}

fn decide_now(stage: Stage, reply: Reply) -> Decision {
    decide(stage, reply, &at(stage), &plan(), NOW)
}

/// The stage the next message runs, how long it waits, and whether it is a
/// retry; or the terminal outcome.
#[derive(Debug, PartialEq)]
enum Next {
    Now(Stage),
    Check(Duration),
    Retry(Stage, Duration),
    Issued,
    Failed(FailureReason, Option<String>, bool),
}

fn next(decision: Decision) -> Next {
    match decision {
        Decision::RunNow(progress) => Next::Now(progress.stage),
        Decision::CheckLater {
            progress, delay, ..
        } => {
            assert_eq!(progress.stage, Stage::StatusCheck);
            Next::Check(delay)
        }
        Decision::RetryLater {
            progress, delay, ..
        } => Next::Retry(progress.stage, delay),
        Decision::Issue { .. } => Next::Issued,
        Decision::Fail(failure) => Next::Failed(failure.reason, failure.code, failure.retryable),
    }
}

#[test]
fn replies_to_open_card() {
    use FailureReason::Rejected;
    let two = Duration::from_secs(2);
    let one = Duration::from_secs(1);
    let rows = [
        (Reply::Accepted, Next::Check(two)),
        (refused("1000"), Next::Now(Stage::PendingCheck)),
        (refused("1002"), Next::Check(two)),
        (refused("1003"), Next::Check(two)),
        (refused("1005"), Next::Check(two)),
        (refused("1006"), Next::Failed(Rejected, code("1006"), false)),
        (refused("1007"), Next::Retry(Stage::OpenCard, one)),
        (refused("1008"), Next::Failed(Rejected, code("1008"), false)),
        (refused("1009"), Next::Retry(Stage::OpenCard, one)),
        (refused("4711"), Next::Failed(Rejected, code("4711"), false)),
        (
            unavailable(Unavailable::Timeout),
            Next::Retry(Stage::OpenCard, one),
        ),
        (
            unavailable(Unavailable::Connection),
            Next::Retry(Stage::OpenCard, one),
        ),
        (
            unavailable(Unavailable::ServerError(502)),
            Next::Retry(Stage::OpenCard, one),
        ),
        (
            unavailable(Unavailable::TooManyRequests),
            Next::Retry(Stage::OpenCard, one),
        ),
        (
            unavailable(Unavailable::Unreadable),
            Next::Retry(Stage::OpenCard, one),
        ),
        (
            Reply::CredentialsRejected { http_status: 401 },
            Next::Retry(Stage::OpenCard, Duration::from_secs(120)),
        ),
    ];
    for (reply, expected) in rows {
        let shown = format!("{reply:?}");
        assert_eq!(
            next(decide_now(Stage::OpenCard, reply)),
            expected,
            "{shown}"
        );
    }
}

#[test]
fn replies_to_a_status_check() {
    use FailureReason::Rejected;
    // The first status check has been made, so the next waits the second delay.
    let five = Duration::from_secs(5);
    let one = Duration::from_secs(1);
    let rows = [
        (issued(), Next::Issued),
        (refused("1000"), Next::Check(five)),
        (refused("1002"), Next::Check(five)),
        (refused("1003"), Next::Check(five)),
        (refused("1005"), Next::Check(five)),
        (refused("1006"), Next::Failed(Rejected, code("1006"), false)),
        (refused("1007"), Next::Retry(Stage::StatusCheck, one)),
        (refused("1008"), Next::Failed(Rejected, code("1008"), false)),
        (refused("1009"), Next::Retry(Stage::StatusCheck, one)),
        (refused("77"), Next::Failed(Rejected, code("77"), false)),
        (
            unavailable(Unavailable::Timeout),
            Next::Retry(Stage::StatusCheck, one),
        ),
        (
            Reply::CredentialsRejected { http_status: 403 },
            Next::Retry(Stage::StatusCheck, Duration::from_secs(120)),
        ),
    ];
    for (reply, expected) in rows {
        let shown = format!("{reply:?}");
        assert_eq!(
            next(decide_now(Stage::StatusCheck, reply)),
            expected,
            "{shown}"
        );
    }
}

#[test]
fn the_pending_check_after_1000() {
    let rows = [
        (issued(), Next::Issued),
        (
            refused("1003"),
            Next::Failed(FailureReason::Rejected, code("1000"), true),
        ),
        (refused("1005"), Next::Check(Duration::from_secs(5))),
        (
            refused("1006"),
            Next::Failed(FailureReason::Rejected, code("1006"), false),
        ),
        (
            refused("1009"),
            Next::Retry(Stage::PendingCheck, Duration::from_secs(1)),
        ),
    ];
    for (reply, expected) in rows {
        let shown = format!("{reply:?}");
        assert_eq!(
            next(decide_now(Stage::PendingCheck, reply)),
            expected,
            "{shown}"
        );
    }
}

#[test]
fn a_rejected_pending_check_keeps_the_1000_message() {
    let after_1000 = match decide_now(Stage::OpenCard, refused("1000")) {
        Decision::RunNow(progress) => progress,
        other => panic!("{other:?}"),
    };

    let decision = decide(
        Stage::PendingCheck,
        refused("1003"),
        &after_1000,
        &plan(),
        NOW,
    );

    let Decision::Fail(failure) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(failure.message.as_deref(), Some("text 1000"));
}

#[test]
fn status_check_delays_advance_and_the_last_repeats() {
    let plan = plan();
    let mut progress = at(Stage::OpenCard);
    let mut waits = vec![];

    for stage in [
        Stage::OpenCard,
        Stage::StatusCheck,
        Stage::StatusCheck,
        Stage::StatusCheck,
    ] {
        let reply = if stage == Stage::OpenCard {
            Reply::Accepted
        } else {
            refused("1005")
        };
        let Decision::CheckLater {
            progress: next,
            delay,
            ..
        } = decide(stage, reply, &progress, &plan, NOW)
        else {
            panic!("expected a check")
        };
        waits.push(delay.as_secs());
        progress = next;
    }

    assert_eq!(waits, [2, 5, 5, 5]);
    assert_eq!(progress.checks, 3);
}

#[test]
fn retry_delays_advance_and_reset_after_a_real_answer() {
    let plan = plan();
    let mut progress = at(Stage::OpenCard);
    let mut waits = vec![];

    for _ in 0..4 {
        let Decision::RetryLater {
            progress: next,
            delay,
            ..
        } = decide(Stage::OpenCard, refused("1007"), &progress, &plan, NOW)
        else {
            panic!("expected a retry")
        };
        waits.push(delay.as_secs());
        progress = next;
    }
    let Decision::CheckLater { progress, .. } =
        decide(Stage::OpenCard, Reply::Accepted, &progress, &plan, NOW)
    else {
        panic!("expected a check")
    };

    assert_eq!(waits, [1, 30, 120, 120]);
    assert_eq!(progress.retries, 0);
}

#[test]
fn retry_after_picks_the_shortest_delay_that_honours_it() {
    let asked = |secs| Reply::Unavailable {
        cause: Unavailable::TooManyRequests,
        retry_after: Some(Duration::from_secs(secs)),
    };

    assert_eq!(
        next(decide_now(Stage::OpenCard, asked(10))),
        Next::Retry(Stage::OpenCard, Duration::from_secs(30))
    );
    assert_eq!(
        next(decide_now(Stage::OpenCard, asked(1000))),
        Next::Retry(Stage::OpenCard, Duration::from_secs(120))
    );
}

#[test]
fn an_unanswered_open_card_is_remembered() {
    let Decision::RetryLater { progress, .. } =
        decide_now(Stage::OpenCard, unavailable(Unavailable::Timeout))
    else {
        panic!("expected a retry")
    };
    let Decision::RetryLater {
        progress: after_1007,
        ..
    } = decide_now(Stage::OpenCard, refused("1007"))
    else {
        panic!("expected a retry")
    };

    assert!(progress.maybe_submitted);
    assert!(
        !after_1007.maybe_submitted,
        "1007 means nothing was processed"
    );
}

#[test]
fn past_the_deadline_waiting_turns_into_failure_with_the_last_code() {
    let mut progress = at(Stage::StatusCheck);
    progress.last_code = Some("1005".into());
    let late = progress.deadline_ms;

    let waiting = decide(
        Stage::StatusCheck,
        refused("1003"),
        &progress,
        &plan(),
        late,
    );
    let final_answer = decide(Stage::StatusCheck, issued(), &progress, &plan(), late);

    assert_eq!(
        next(waiting),
        Next::Failed(FailureReason::DeadlineExceeded, code("1003"), true)
    );
    assert_eq!(next(final_answer), Next::Issued);
}

#[test]
fn past_the_deadline_open_card_is_not_sent_again() {
    let mut progress = at(Stage::OpenCard);
    let late = progress.deadline_ms + 1;

    let never_sent = stage_to_run(&progress, late);
    progress.maybe_submitted = true;
    let maybe_sent = stage_to_run(&progress, late);

    assert_eq!(
        never_sent.map_err(|failure| failure.reason),
        Err(FailureReason::DeadlineExceeded)
    );
    assert_eq!(maybe_sent, Ok(Stage::StatusCheck));
    assert_eq!(stage_to_run(&at(Stage::OpenCard), NOW), Ok(Stage::OpenCard));
}

#[test]
fn every_configured_delay_gets_a_queue_once_and_zero_none() {
    let plan = Plan {
        status_check_delays: vec![
            Duration::ZERO,
            Duration::from_secs(2),
            Duration::from_secs(1),
        ],
        retry_delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
    };

    assert_eq!(
        plan.all_delays(),
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
}

#[test]
fn a_pending_check_s_1003_is_not_yet_when_our_open_card_may_have_got_through() {
    let progress = Progress {
        maybe_submitted: true,
        ..at(Stage::PendingCheck)
    };

    let decision = decide(
        Stage::PendingCheck,
        refused("1003"),
        &progress,
        &plan(),
        NOW,
    );

    assert!(
        matches!(decision, Decision::CheckLater { .. }),
        "{decision:?}"
    );
}
