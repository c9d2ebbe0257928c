//! A message the handler keeps failing on is parked with its reason, and the
//! worker goes on with the rest.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};

use crate::support::{TestApp, connect, request_id};

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_message_that_always_panics_the_handler_is_parked_and_others_go_on() {
    let mut app = TestApp::start().await;
    let poison = app.command("poison");
    let healthy = app.command("healthy");
    card_issuer::failpoint::arm(request_id(&poison), u32::MAX);

    app.send(&poison).await;
    app.send(&healthy).await;

    assert_eq!(
        app.outcome(request_id(&healthy)).await.routing_key,
        "card.issued"
    );
    let parked = app.wait_for_parked(1).await;
    assert_eq!(parked[0].reason, "handler_failed");
    assert_eq!(parked[0].body, poison.to_string().into_bytes());
    app.assert_no_event(request_id(&poison), Duration::from_millis(500))
        .await;
    app.stop().await;
}

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_passing_handler_failure_costs_a_retry_delay_not_the_card() {
    let mut app = TestApp::start().await;
    let command = app.command("flaky");
    card_issuer::failpoint::arm(request_id(&command), 1);

    app.send(&command).await;

    assert_eq!(
        app.outcome(request_id(&command)).await.routing_key,
        "card.issued"
    );
    assert!(app.parked().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_message_delivered_too_often_is_parked_as_poison() {
    let mut app = TestApp::start().await;
    let command = app.command("redelivered");
    // What RabbitMQ's quorum queue reports after a message went back to the
    // queue 25 times (the worker died each time it held it).
    let mut headers = FieldTable::default();
    headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(25));

    publish_with_headers(&app, &command, headers).await;

    let parked = app.wait_for_parked(1).await;
    assert_eq!(parked[0].reason, "delivery_limit");
    app.assert_no_event(request_id(&command), Duration::from_millis(500))
        .await;
    assert_eq!(app.partner.stats(request_id(&command)).open_card_calls, 0);
    app.stop().await;
}

#[tokio::test]
async fn unreadable_progress_headers_are_parked_not_guessed() {
    let mut app = TestApp::start().await;
    let command = app.command("bad-stage");
    let mut headers = FieldTable::default();
    headers.insert(
        "card-issuer-stage".into(),
        AMQPValue::LongString("issue_twice".into()),
    );

    publish_with_headers(&app, &command, headers).await;

    let parked = app.wait_for_parked(1).await;
    assert_eq!(parked[0].reason, "invalid_progress");
    app.assert_no_event(request_id(&command), Duration::from_millis(300))
        .await;
    app.stop().await;
}

async fn publish_with_headers(app: &TestApp, command: &serde_json::Value, headers: FieldTable) {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let exchange = app.settings.broker.commands_exchange.as_str();
    channel
        .basic_publish(
            exchange.into(),
            "card.open".into(),
            BasicPublishOptions::default(),
            command.to_string().as_bytes(),
            BasicProperties::default()
                .with_headers(headers)
                .with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
}
