//! Competing replicas: workers sharing the queues keep nothing another
//! one needs, and copies of one command on two replicas still make one
//! card.

use std::time::{Duration, Instant};

use card_issuer::simulator::Reply;

use crate::support::{PATIENCE, TestApp, connect, request_id};

/// Messages waiting in `queue` now.
async fn waiting_in(queue: &str) -> u32 {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let declared = channel
        .queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
        .await
        .expect("the delay queue exists");
    let _ = connection.close(200, "counted".into()).await;
    declared.message_count()
}

#[tokio::test]
async fn a_command_begun_by_one_replica_is_finished_by_another() {
    let mut app = TestApp::start_with(&[("--status-check-delays", "2s")]).await;
    let command = app.command("handover");
    let id = request_id(&command).to_owned();
    app.script(
        &command,
        vec![],
        vec![Reply::code("1005"), Reply::success()],
    );

    app.send(&command).await;
    // Once the first replica has opened the card, its status check waits
    // in a delay queue; a second replica starts and the first one dies.
    let delay_queue = app.topology().delay_queue(Duration::from_secs(2));
    let since = Instant::now();
    while waiting_in(&delay_queue).await == 0 {
        assert!(since.elapsed() < PATIENCE, "no status check was scheduled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The command is acknowledged right after its check is confirmed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.start_replica().await;
    app.kill_worker().await;

    let event = app.outcome(&id).await;
    assert_eq!(event.routing_key, "card.issued");
    let stats = app.partner.stats(&id);
    assert_eq!(stats.open_card_calls, 1, "{stats:?}");
    assert_eq!(stats.status_calls, 2, "{stats:?}");
    app.stop().await;
}

#[tokio::test]
async fn copies_of_one_command_on_two_replicas_make_one_card() {
    // One delivery at a time each: while the first replica holds the
    // first copy, the broker can only hand the second to the other one.
    let mut app = TestApp::start_with(&[("--concurrency", "1")]).await;
    app.start_replica().await;
    let command = app.command("copies");
    let id = request_id(&command).to_owned();
    // A slow first answer keeps the first copy's call open while the second
    // copy, on the other replica, calls too and hears 1002.
    app.script(
        &command,
        vec![Reply::success().after(Duration::from_millis(500))],
        vec![],
    );

    app.send(&command).await;
    app.send(&command).await;
    let first = app.outcome(&id).await;
    let second = app.outcome(&id).await;

    assert_eq!(first.routing_key, "card.issued");
    assert_eq!(second.routing_key, "card.issued");
    assert_eq!(first.message_id, second.message_id);
    assert_eq!(first.body["cardNumber"], second.body["cardNumber"]);
    let stats = app.partner.stats(&id);
    assert_eq!(stats.open_card_calls, 2, "{stats:?}");
    assert!(stats.issued, "{stats:?}");
    app.stop().await;
}

// All three replicas run in this process and share its metrics, so the
// test cannot tell which replica did what; it shows that sharing the
// queues three ways neither loses nor repeats anything.
#[tokio::test]
async fn many_commands_on_three_replicas_end_once_each() {
    let mut app = TestApp::start().await;
    app.start_replica().await;
    app.start_replica().await;
    let commands: Vec<_> = (0..30).map(|n| app.command(&format!("many-{n}"))).collect();
    for command in &commands {
        app.send(command).await;
    }

    for command in &commands {
        let event = app.outcome(request_id(command)).await;
        assert_eq!(event.routing_key, "card.issued");
        assert_eq!(app.partner.stats(request_id(command)).open_card_calls, 1);
    }
    app.assert_no_event(request_id(&commands[0]), Duration::from_millis(500))
        .await;
    for command in &commands[1..] {
        app.assert_no_event(request_id(command), Duration::ZERO)
            .await;
    }
    app.stop().await;
}
