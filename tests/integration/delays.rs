//! Scheduled steps wait in fixed-delay queues, one per delay.

use std::time::{Duration, Instant};

use card_issuer::simulator::Reply;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::support::{TestApp, connect, request_id};

#[tokio::test]
async fn every_configured_delay_has_its_own_queue() {
    let app = TestApp::start_with(&[
        ("--status-check-delays", "100ms,250ms"),
        ("--retry-delays", "250ms,2s"),
    ])
    .await;
    let topology = app.topology();
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();

    let mut found = vec![];
    for delay in &topology.delays {
        let name = topology.delay_queue(*delay);
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        channel
            .queue_declare(name.as_str().into(), passive, FieldTable::default())
            .await
            .unwrap();
        found.push(name);
    }

    let prefix = &app.settings.broker.queue_prefix;
    let expected: Vec<String> = ["100ms", "250ms", "2s"]
        .iter()
        .map(|label| format!("{prefix}.delay.{label}"))
        .collect();
    assert_eq!(found, expected);
    app.stop().await;
}

#[tokio::test]
async fn a_short_wait_does_not_queue_behind_a_long_one() {
    let mut app = TestApp::start_with(&[("--retry-delays", "3s")]).await;
    let slow = app.command("long-wait");
    let quick = app.command("short-wait");
    app.script(&slow, vec![Reply::code("1009"), Reply::success()], vec![]);
    let started = Instant::now();

    app.send(&slow).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&quick).await;
    app.outcome(request_id(&quick)).await;
    let quick_took = started.elapsed();
    app.outcome(request_id(&slow)).await;

    assert!(
        quick_took < Duration::from_secs(2),
        "the short wait took {quick_took:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    app.stop().await;
}

#[tokio::test]
async fn a_second_worker_declares_the_same_topology_without_conflict() {
    let mut app = TestApp::start().await;
    let command = app.command("second-worker");

    // A second start redeclares every exchange, queue and binding.
    app.stop_worker().await;
    app.start_worker().await;
    app.send(&command).await;

    assert_eq!(
        app.outcome(request_id(&command)).await.routing_key,
        "card.issued"
    );
    app.stop().await;
}
