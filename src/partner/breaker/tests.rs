use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::partner::Unavailable;

const PAUSE: Duration = Duration::from_secs(10);

fn breaker() -> Breaker {
    Breaker::new(6, PAUSE, Duration::from_secs(120))
}

fn timeout() -> Reply {
    Reply::Unavailable {
        cause: Unavailable::Timeout,
        retry_after: None,
    }
}

fn refused(code: &str) -> Reply {
    Reply::Refused {
        code: PartnerCode::parse(code),
        message: String::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn stays_closed_below_the_threshold() {
    let breaker = breaker();

    breaker.record_open_card(&timeout());
    breaker.record_open_card(&refused("1007"));

    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn odd_failures_among_answers_leave_it_closed() {
    let breaker = breaker();

    for _ in 0..5 {
        breaker.record_open_card(&timeout());
        for _ in 0..3 {
            breaker.record_open_card(&refused("1006"));
        }
    }

    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_of_the_window_failing_opens_it() {
    let breaker = breaker();

    for reply in [
        timeout(),
        Reply::Accepted,
        refused("1009"),
        Reply::Accepted,
        timeout(),
    ] {
        breaker.record_open_card(&reply);
    }

    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn once_open_admission_waits_for_the_pause() {
    let breaker = breaker();
    for _ in 0..3 {
        breaker.record_open_card(&refused("1009"));
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let start = Instant::now();

    let admission = breaker.admit().await;

    let waited = start.elapsed();
    assert!(admission.trial);
    assert!(
        waited >= PAUSE && waited <= PAUSE.mul_f64(1.2),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_trial_at_a_time_and_its_success_closes_the_breaker() {
    let breaker = breaker();
    for _ in 0..3 {
        breaker.record_open_card(&timeout());
    }
    tokio::time::advance(PAUSE * 2).await;
    let trial = breaker.admit().await;
    let second = tokio::time::timeout(Duration::from_secs(60), breaker.admit()).await;
    assert!(second.is_err(), "a second call went out beside the trial");

    breaker.record_open_card(&Reply::Accepted);
    drop(trial);

    let after = tokio::time::timeout(Duration::from_millis(1), breaker.admit()).await;
    assert!(after.is_ok_and(|admission| !admission.trial));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_doubles_the_pause() {
    let breaker = breaker();
    for _ in 0..3 {
        breaker.record_open_card(&timeout());
    }
    tokio::time::advance(PAUSE * 2).await;
    let trial = breaker.admit().await;

    breaker.record_open_card(&timeout());
    drop(trial);
    let start = Instant::now();
    let _next = breaker.admit().await;

    let waited = start.elapsed();
    assert!(
        waited >= PAUSE * 2 && waited <= (PAUSE * 2).mul_f64(1.2),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_trial_lets_another_caller_try() {
    let breaker = breaker();
    for _ in 0..3 {
        breaker.record_open_card(&timeout());
    }
    tokio::time::advance(PAUSE * 2).await;

    drop(breaker.admit().await);

    let next = tokio::time::timeout(Duration::from_millis(1), breaker.admit()).await;
    assert!(next.is_ok_and(|admission| admission.trial));
}

#[tokio::test(start_paused = true)]
async fn retry_after_opens_it_at_once_for_as_long_as_asked() {
    let breaker = breaker();
    let asked = Duration::from_secs(45);

    breaker.record_open_card(&Reply::Unavailable {
        cause: Unavailable::TooManyRequests,
        retry_after: Some(asked),
    });
    let start = Instant::now();
    let _admission = breaker.admit().await;

    let waited = start.elapsed();
    assert!(
        waited >= asked && waited <= asked.mul_f64(1.2),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_pause_for_the_credentials_pause() {
    let breaker = breaker();

    breaker.record_open_card(&Reply::CredentialsRejected { http_status: 401 });
    let start = Instant::now();
    let _admission = breaker.admit().await;

    assert_eq!(start.elapsed(), Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn status_check_answers_neither_open_nor_close_it() {
    let breaker = breaker();
    for _ in 0..3 {
        breaker.record_status_check(&timeout());
    }
    assert_eq!(breaker.state(), BreakerState::Closed);

    for _ in 0..3 {
        breaker.record_open_card(&timeout());
    }
    breaker.record_status_check(&Reply::Accepted);
    breaker.record_status_check(&refused("1005"));

    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_status_check_can_still_report_rejected_credentials_and_retry_after() {
    let breaker = breaker();
    let asked = Reply::Unavailable {
        cause: Unavailable::TooManyRequests,
        retry_after: Some(PAUSE),
    };

    breaker.record_status_check(&asked);
    assert_eq!(breaker.state(), BreakerState::Open);

    let other = self::breaker();
    other.record_status_check(&Reply::CredentialsRejected { http_status: 403 });
    assert_eq!(other.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_is_capped_and_never_overflows() {
    let breaker = breaker();
    let absurd = Reply::Unavailable {
        cause: Unavailable::ServerError(503),
        retry_after: Some(Duration::from_secs(u64::MAX)),
    };

    breaker.record_open_card(&absurd);
    let start = Instant::now();
    let _admission = breaker.admit().await;

    // The longest pause here is the credentials pause, two minutes.
    let waited = start.elapsed();
    assert!(
        waited <= Duration::from_secs(120).mul_f64(1.2),
        "{waited:?}"
    );
}
