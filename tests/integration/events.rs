//! What an upstream consumer relies on in every event.

use crate::support::{TestApp, request_id};

#[tokio::test]
async fn events_are_persistent_json_typed_and_carry_stable_ids() {
    let mut app = TestApp::start().await;
    let issued = app.command("props-issued");
    let failed = app.command("props-failed");
    app.script(
        &failed,
        vec![card_issuer::simulator::Reply::code("1006")],
        vec![],
    );

    app.send(&issued).await;
    app.send_correlated(&failed, "trace-42").await;
    let issued_event = app.outcome(request_id(&issued)).await;
    let failed_event = app.outcome(request_id(&failed)).await;

    for (event, key, correlation) in [
        (&issued_event, "card.issued", request_id(&issued)),
        (&failed_event, "card.failed", "trace-42"),
    ] {
        assert_eq!(event.routing_key, key);
        assert_eq!(event.kind.as_deref(), Some(key));
        assert_eq!(event.content_type.as_deref(), Some("application/json"));
        assert_eq!(event.delivery_mode, Some(2));
        assert_eq!(event.correlation_id.as_deref(), Some(correlation));
        let request = event.request_id().unwrap();
        assert_eq!(
            event.message_id.as_deref(),
            Some(format!("{key}:{request}").as_str())
        );
    }
    assert!(
        issued_event.body["issuedAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        failed_event.body["failedAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    app.stop().await;
}

#[tokio::test]
async fn masked_mode_keeps_the_full_card_number_out_of_events() {
    let mut app = TestApp::start_with(&[("--event-card-number", "masked")]).await;
    let command = app.command("masked");

    app.send(&command).await;
    let event = app.outcome(request_id(&command)).await;

    let card = app
        .partner
        .stats(request_id(&command))
        .card
        .expect("issued");
    assert!(event.body.get("cardNumber").is_none());
    assert!(!event.body.to_string().contains(&card));
    assert!(
        event.body["maskedCardNumber"]
            .as_str()
            .unwrap()
            .ends_with(&card[card.len() - 4..])
    );
    app.stop().await;
}

#[tokio::test]
async fn the_same_command_twice_gives_one_card_and_one_event_id() {
    let mut app = TestApp::start().await;
    let command = app.command("twice");

    app.send(&command).await;
    app.send(&command).await;
    let first = app.outcome(request_id(&command)).await;
    let second = app.outcome(request_id(&command)).await;

    assert_eq!(first.routing_key, "card.issued");
    assert_eq!(first.message_id, second.message_id);
    assert_eq!(first.body["cardNumber"], second.body["cardNumber"]);
    app.stop().await;
}

#[tokio::test]
async fn the_worker_can_declare_a_queue_for_the_events_itself() {
    let queue = format!("events-{:08x}", fastrand::u32(..));
    let app = TestApp::start_with(&[("--events-queue", queue.as_str())]).await;
    let command = app.command("own-queue");

    app.send(&command).await;

    let connection = crate::support::connect().await;
    let channel = connection.create_channel().await.unwrap();
    let mut got = None;
    for _ in 0..100 {
        let options = lapin::options::BasicGetOptions { no_ack: true };
        got = channel
            .basic_get(queue.as_str().into(), options)
            .await
            .unwrap();
        if got.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let message = got.expect("the event reached the worker's own events queue");
    assert_eq!(message.delivery.routing_key.as_str(), "card.issued");
    app.stop().await;
}
