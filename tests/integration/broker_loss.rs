//! The broker connection breaks or goes silent; the worker notices, starts
//! a new session and loses nothing.

use std::time::Duration;

use card_issuer::simulator::Reply;

use crate::support::proxy::Proxy;
use crate::support::{TestApp, broker, request_id};

async fn proxy() -> Proxy {
    Proxy::start(broker::addr().await).await
}

async fn reconnects(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("card_issuer_broker_reconnects_total "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_dropped_connection_is_rebuilt_and_requests_carry_on() {
    let proxy = proxy().await;
    let mut app = TestApp::start_with(&[
        ("--amqp-url", &proxy.amqp_url()),
        ("--status-check-delays", "300ms"),
    ])
    .await;
    let commands: Vec<_> = (0..10).map(|n| app.command(&format!("cut-{n}"))).collect();
    let before = reconnects(&app).await;
    for command in &commands {
        app.script(
            command,
            vec![],
            vec![Reply::code("1005"), Reply::code("1005"), Reply::success()],
        );
        app.send(command).await;
    }

    tokio::time::sleep(Duration::from_millis(400)).await;
    proxy.cut();

    for command in &commands {
        assert_eq!(
            app.outcome(request_id(command)).await.routing_key,
            "card.issued"
        );
        assert!(app.partner.stats(request_id(command)).open_card_calls <= 2);
    }
    assert!(
        reconnects(&app).await > before,
        "no new broker session was started"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_silent_broker_is_noticed_and_unconfirmed_work_is_done_again() {
    let proxy = proxy().await;
    let mut app = TestApp::start_with(&[
        ("--amqp-url", &proxy.amqp_url()),
        ("--publish-timeout", "1s"),
    ])
    .await;
    let command = app.command("silent");

    // Nothing the worker publishes from now on is confirmed, and no
    // heartbeat reaches it, until it gives up on the connection.
    proxy.freeze(true);
    app.send(&command).await;

    let event = app.outcome(request_id(&command)).await;
    assert_eq!(event.routing_key, "card.issued");
    assert!(reconnects(&app).await >= 1);
    app.stop().await;
}

#[tokio::test]
async fn a_lost_broker_is_replaced_by_the_next_of_the_list() {
    let (first, second) = (proxy().await, proxy().await);
    let brokers = format!("{},{}", first.amqp_url(), second.amqp_url());
    let mut app = TestApp::start_with(&[("--amqp-url", &brokers)]).await;
    let before = app.command("before");
    app.send(&before).await;
    assert_eq!(
        app.outcome(request_id(&before)).await.routing_key,
        "card.issued"
    );
    assert_eq!(
        second.accepted(),
        0,
        "the first broker of the list comes first"
    );

    // The first broker goes away for good: its connections drop and it
    // takes no new ones.
    drop(first);
    let after = app.command("after");
    app.send(&after).await;

    assert_eq!(
        app.outcome(request_id(&after)).await.routing_key,
        "card.issued"
    );
    assert!(
        second.accepted() >= 2,
        "the worker never moved to the second broker"
    );
    app.stop().await;
}
