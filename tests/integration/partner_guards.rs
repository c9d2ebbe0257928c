//! The guards that keep the worker from hammering a failing partner: the
//! circuit breaker, `Retry-After`, and the calls-per-second cap. They cost
//! time, never a card. (The breaker's gauge is process-wide, shared by every
//! test worker in this binary, so it is checked in the process tests.)

use std::time::{Duration, Instant};

use card_issuer::simulator::Reply;
use serde_json::json;

use crate::support::{TestApp, request_id};

#[tokio::test]
async fn failing_open_cards_pause_new_open_card_calls_but_not_status_checks() {
    let mut app = TestApp::start_with(&[
        ("--breaker-window", "4"),
        ("--breaker-open", "2s"),
        ("--status-check-delays", "100ms"),
        ("--retry-delays", "100ms"),
    ])
    .await;
    let checking = app.command("checking");
    app.script(
        &checking,
        vec![],
        vec![Reply::code("1005"); 8]
            .into_iter()
            .chain([Reply::success()])
            .collect(),
    );
    app.send(&checking).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let failing: Vec<_> = (0..2)
        .map(|n| app.command(&format!("failing-{n}")))
        .collect();
    for command in &failing {
        app.script(command, vec![Reply::code("1009"), Reply::success()], vec![]);
        app.send(command).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let opened = Instant::now();
    let waiting = app.command("waiting");

    app.send(&waiting).await;
    app.outcome(request_id(&checking)).await;
    let checks_done_after = opened.elapsed();
    app.outcome(request_id(&waiting)).await;
    let waited = opened.elapsed();

    assert!(
        checks_done_after < Duration::from_millis(1800),
        "status checks paused too: {checks_done_after:?}"
    );
    assert!(
        waited >= Duration::from_millis(1800),
        "open-card went out after {waited:?}"
    );
    for command in &failing {
        assert_eq!(
            app.outcome(request_id(command)).await.routing_key,
            "card.issued"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn retry_after_from_the_partner_is_honoured() {
    let mut app = TestApp::start_with(&[("--retry-delays", "100ms,1s,3s")]).await;
    let command = app.command("retry-after");
    let busy: Reply = serde_json::from_value(
        json!({"http": 429, "empty": true, "headers": {"Retry-After": "1"}}),
    )
    .unwrap();
    app.script(&command, vec![busy, Reply::success()], vec![]);
    let started = Instant::now();

    app.send(&command).await;
    let event = app.outcome(request_id(&command)).await;

    assert_eq!(event.routing_key, "card.issued");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried after {:?}",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_calls_per_second_cap_holds_however_many_messages_wait() {
    let mut app = TestApp::start_with(&[("--partner-calls-per-second", "20")]).await;
    let commands: Vec<_> = (0..20)
        .map(|n| app.command(&format!("capped-{n}")))
        .collect();
    let started = Instant::now();

    for command in &commands {
        app.send(command).await;
    }
    for command in &commands {
        app.outcome(request_id(command)).await;
    }

    // Forty calls (an open-card and a status check each) at twenty a second.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "forty calls took only {took:?}"
    );
    app.stop().await;
}
