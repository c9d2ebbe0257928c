//! Each row of the contract's table, through the broker and the simulator.

use std::time::Duration;

use axum::http::StatusCode;
use card_issuer::simulator::{Reply, ReplyContent};
use serde_json::Value;

use crate::support::{TestApp, request_id};

fn codes(codes: &[&str]) -> Vec<Reply> {
    codes.iter().map(|code| Reply::code(*code)).collect()
}

fn then_ok(mut replies: Vec<Reply>) -> Vec<Reply> {
    replies.push(Reply::success());
    replies
}

/// Sends a command with scripted answers and returns its event's routing
/// key and body, with the partner's call counts.
async fn outcome_of(
    app: &mut TestApp,
    open_card: Vec<Reply>,
    status: Vec<Reply>,
) -> (String, Value, u32, u32) {
    let command = app.command("case");
    app.script(&command, open_card, status);
    app.send(&command).await;
    let event = app.outcome(request_id(&command)).await;
    let stats = app.partner.stats(request_id(&command));
    (
        event.routing_key,
        event.body,
        stats.open_card_calls,
        stats.status_calls,
    )
}

#[tokio::test]
async fn success_to_open_card_then_to_a_status_check_issues_the_card() {
    let mut app = TestApp::start().await;

    let (key, body, open_card, status) = outcome_of(&mut app, vec![], vec![]).await;

    assert_eq!(key, "card.issued");
    assert_eq!((open_card, status), (1, 1));
    let card = body["cardNumber"].as_str().unwrap();
    assert_eq!(
        body["maskedCardNumber"],
        format!("{}******{}", &card[..6], &card[12..])
    );
    app.stop().await;
}

#[tokio::test]
async fn open_card_1000_for_our_own_pending_request_keeps_checking() {
    let mut app = TestApp::start().await;

    let (key, _, open_card, status) =
        outcome_of(&mut app, codes(&["1000"]), then_ok(codes(&["1005"]))).await;

    assert_eq!(key, "card.issued");
    assert_eq!((open_card, status), (1, 2));
    app.stop().await;
}

#[tokio::test]
async fn open_card_1000_for_someone_elses_request_fails_retryable() {
    let mut app = TestApp::start().await;

    let (key, body, open_card, status) =
        outcome_of(&mut app, codes(&["1000"]), codes(&["1003"])).await;

    assert_eq!(key, "card.failed");
    assert_eq!(
        (&body["reason"], &body["code"], &body["retryable"]),
        (&"rejected".into(), &"1000".into(), &true.into())
    );
    assert_eq!((open_card, status), (1, 1));
    app.stop().await;
}

#[tokio::test]
async fn open_card_1002_moves_on_to_status_checks() {
    let mut app = TestApp::start().await;

    // A scripted 1002 leaves the simulated partner without the application,
    // so the status it would then report is scripted too.
    let (key, _, open_card, status) =
        outcome_of(&mut app, codes(&["1002"]), vec![Reply::success()]).await;

    assert_eq!(key, "card.issued");
    assert_eq!((open_card, status), (1, 1));
    app.stop().await;
}

#[tokio::test]
async fn status_1003_and_1005_mean_not_yet() {
    let mut app = TestApp::start().await;

    let (key, _, open_card, status) = outcome_of(
        &mut app,
        vec![],
        then_ok(codes(&["1003", "1005", "1003", "1005"])),
    )
    .await;

    assert_eq!(key, "card.issued");
    assert_eq!((open_card, status), (1, 5));
    app.stop().await;
}

#[tokio::test]
async fn open_card_1005_means_keep_checking() {
    let mut app = TestApp::start().await;

    let (key, _, open_card, status) =
        outcome_of(&mut app, codes(&["1005"]), vec![Reply::success()]).await;

    assert_eq!(key, "card.issued");
    assert_eq!((open_card, status), (1, 1));
    app.stop().await;
}

#[tokio::test]
async fn final_rejections_fail_without_retrying() {
    let mut app = TestApp::start().await;
    let rows = [
        (codes(&["1006"]), vec![], "1006", (1, 0)),
        (codes(&["1008"]), vec![], "1008", (1, 0)),
        (vec![], codes(&["1006"]), "1006", (1, 1)),
        (vec![], codes(&["1008"]), "1008", (1, 1)),
        (codes(&["4711"]), vec![], "4711", (1, 0)),
        (vec![], codes(&["77"]), "77", (1, 1)),
    ];

    for (open_card, status, code, calls) in rows {
        let (key, body, open_calls, status_calls) = outcome_of(&mut app, open_card, status).await;
        assert_eq!(key, "card.failed", "{code}");
        assert_eq!(body["reason"], "rejected", "{code}");
        assert_eq!(body["code"], code);
        assert_eq!(body["retryable"], false, "{code}");
        assert_eq!((open_calls, status_calls), calls, "{code}");
    }
    app.stop().await;
}

#[tokio::test]
async fn temporary_unavailability_retries_the_same_call() {
    let mut app = TestApp::start().await;
    let html_503 = Reply::new(ReplyContent::Raw("<html>503</html>".into()))
        .with_http(StatusCode::SERVICE_UNAVAILABLE);
    let html_200 = Reply::new(ReplyContent::Raw("<html>maintenance</html>".into()));
    let too_many = Reply::new(ReplyContent::Empty).with_http(StatusCode::TOO_MANY_REQUESTS);
    let rows = [
        (then_ok(codes(&["1007", "1009"])), vec![], (3, 1)),
        (vec![], then_ok(codes(&["1007", "1009"])), (1, 3)),
        (
            vec![html_503.clone(), Reply::success()],
            vec![html_503, Reply::success()],
            (2, 2),
        ),
        (
            vec![html_200, Reply::success()],
            vec![too_many, Reply::success()],
            (2, 2),
        ),
    ];

    for (open_card, status, calls) in rows {
        let (key, _, open_calls, status_calls) = outcome_of(&mut app, open_card, status).await;
        assert_eq!(key, "card.issued");
        assert_eq!((open_calls, status_calls), calls);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_timed_out_call_is_made_again() {
    let mut app = TestApp::start().await;
    let slow = Reply::success().after(Duration::from_millis(1500));

    let (key, _, open_card, status) = outcome_of(
        &mut app,
        vec![slow.clone(), Reply::success()],
        vec![slow, Reply::success()],
    )
    .await;

    assert_eq!(key, "card.issued");
    assert_eq!((open_card, status), (2, 2));
    app.stop().await;
}

#[tokio::test]
async fn rejected_credentials_keep_the_request_and_retry_after_the_longest_delay() {
    let mut app = TestApp::start_with(&[("--retry-delays", "100ms,1s")]).await;
    let unauthorized = Reply::new(ReplyContent::Empty).with_http(StatusCode::UNAUTHORIZED);
    let command = app.command("credentials");
    app.script(&command, vec![unauthorized, Reply::success()], vec![]);
    let started = std::time::Instant::now();

    app.send(&command).await;
    let event = app.outcome(request_id(&command)).await;

    assert_eq!(event.routing_key, "card.issued");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before the longest delay"
    );
    assert!(
        app.metrics()
            .await
            .contains("card_issuer_partner_auth_failures_total 1")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_request_that_never_settles_fails_at_the_deadline_with_the_last_code() {
    let mut app = TestApp::start_with(&[("--deadline", "2s")]).await;
    let rows = [
        (vec![], codes(&["1005"]), "1005"),
        (codes(&["1007"]), vec![], "1007"),
    ];

    for (open_card, status, last_code) in rows {
        let (key, body, _, _) = outcome_of(&mut app, open_card, status).await;
        assert_eq!(key, "card.failed");
        assert_eq!(body["reason"], "deadline_exceeded");
        assert_eq!(body["code"], last_code);
        assert_eq!(body["retryable"], true);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_request_gets_exactly_one_terminal_event() {
    let mut app = TestApp::start().await;
    let command = app.command("once");

    app.send(&command).await;
    app.outcome(request_id(&command)).await;

    app.assert_no_event(request_id(&command), Duration::from_secs(2))
        .await;
    app.stop().await;
}
