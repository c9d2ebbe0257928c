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
async fn unreadable_progress_headers_on_a_step_are_parked_not_guessed() {
    let mut app = TestApp::start().await;
    let command = app.command("bad-stage");
    let mut headers = FieldTable::default();
    headers.insert(
        "card-issuer-stage".into(),
        AMQPValue::LongString("issue_twice".into()),
    );

    // Steps come back through the worker's resume exchange.
    let resume = app.topology().resume_exchange;
    publish_to(&resume, "open-card.now", &command, headers).await;

    let parked = app.wait_for_parked(1).await;
    assert_eq!(parked[0].reason, "invalid_progress");
    app.assert_no_event(request_id(&command), Duration::from_millis(300))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn progress_headers_on_a_new_command_are_ignored() {
    let mut app = TestApp::start().await;
    let command = app.command("forged");
    let mut headers = FieldTable::default();
    headers.insert(
        "card-issuer-stage".into(),
        AMQPValue::LongString("status_check".into()),
    );
    headers.insert("card-issuer-deadline".into(), AMQPValue::LongLongInt(0));

    publish_with_headers(&app, &command, headers).await;

    // A new command goes through validation and open-card, as any other.
    assert_eq!(
        app.outcome(request_id(&command)).await.routing_key,
        "card.issued"
    );
    assert_eq!(app.partner.stats(request_id(&command)).open_card_calls, 1);
    app.stop().await;
}

async fn publish_with_headers(app: &TestApp, command: &serde_json::Value, headers: FieldTable) {
    let exchange = app.settings.broker.commands_exchange.clone();
    publish_to(&exchange, "card.open", command, headers).await;
}

async fn publish_to(
    exchange: &str,
    routing_key: &str,
    command: &serde_json::Value,
    headers: FieldTable,
) {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
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

#[tokio::test]
async fn a_command_that_expires_in_the_queue_is_parked_not_lost() {
    let mut app = TestApp::start().await;
    app.stop_worker().await;
    let command = app.command("expiring");
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let exchange = app.settings.broker.commands_exchange.clone();
    channel
        .basic_publish(
            exchange.as_str().into(),
            "card.open".into(),
            BasicPublishOptions::default(),
            command.to_string().as_bytes(),
            BasicProperties::default().with_expiration("50".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let direct = card_issuer::settings::BrokerSettings {
        urls: vec![card_issuer::secret::Secret::new(
            crate::support::broker::url(),
        )],
        ..app.settings.broker.clone()
    };
    let parked = card_issuer::ops::dead_letters::list(&direct, 10)
        .await
        .unwrap();

    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].reason, "broker:expired");
    app.start_worker().await;
    app.stop().await;
}
