//! A worker that stops, or dies, mid-request loses nothing: the request's
//! progress travels in its message, and the next worker resumes it.

use std::time::Duration;

use card_issuer::simulator::Reply;

use crate::support::{TestApp, request_id};

#[tokio::test]
async fn a_killed_worker_s_requests_resume_without_a_second_open_card() {
    let mut app = TestApp::start_with(&[("--status-check-delays", "300ms")]).await;
    let commands: Vec<_> = (0..20).map(|n| app.command(&format!("kill-{n}"))).collect();
    for command in &commands {
        app.script(
            command,
            vec![],
            vec![Reply::code("1005"), Reply::code("1005"), Reply::success()],
        );
        app.send(command).await;
    }

    // Kill it while the requests wait for status checks.
    tokio::time::sleep(Duration::from_millis(400)).await;
    app.kill_worker().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_worker().await;

    for command in &commands {
        let event = app.outcome(request_id(command)).await;
        assert_eq!(event.routing_key, "card.issued");
        let stats = app.partner.stats(request_id(command));
        assert!(
            stats.open_card_calls <= 2,
            "{} open-card calls",
            stats.open_card_calls
        );
        assert!(stats.accepted);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_graceful_stop_between_steps_loses_nothing() {
    let mut app = TestApp::start_with(&[("--status-check-delays", "1s")]).await;
    let command = app.command("graceful");

    app.send(&command).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.stop_worker().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.start_worker().await;

    assert_eq!(
        app.outcome(request_id(&command)).await.routing_key,
        "card.issued"
    );
    assert_eq!(app.partner.stats(request_id(&command)).open_card_calls, 1);
    app.stop().await;
}
