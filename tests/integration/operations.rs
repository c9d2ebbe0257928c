//! What operators do by hand: submit a command, ask the partner, and move
//! parked messages back to resume where they stopped.

use std::time::Duration;

use card_issuer::domain::RequestId;
use card_issuer::ops::dead_letters::{self, Selection};
use card_issuer::ops::{partner_query, submit};
use card_issuer::partner::PartnerClient;
use card_issuer::secret::Secret;
use card_issuer::settings::BrokerSettings;

use crate::support::{TestApp, broker, request_id};

fn direct(app: &TestApp) -> BrokerSettings {
    BrokerSettings {
        urls: vec![Secret::new(broker::url())],
        ..app.settings.broker.clone()
    }
}

#[tokio::test]
async fn submit_publishes_one_command_and_returns_its_event() {
    let app = TestApp::start().await;
    let command = app.command("submit");

    let event = submit::submit(
        &direct(&app),
        command.to_string().as_bytes(),
        Some("ops"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();

    assert_eq!(event.routing_key, "card.issued");
    assert_eq!(event.request_id(), Some(request_id(&command)));
    assert_eq!(event.correlation_id.as_deref(), Some("ops"));
    app.stop().await;
}

#[tokio::test]
async fn the_partner_can_be_asked_directly_and_cards_are_shown_masked() {
    let mut app = TestApp::start().await;
    let command = app.command("ask");
    app.send(&command).await;
    app.outcome(request_id(&command)).await;
    let client = PartnerClient::new(&app.settings.partner, 1).unwrap();

    let products = client.products().await.unwrap();
    let status =
        partner_query::status(&client, &RequestId::parse(request_id(&command)).unwrap()).await;

    let card = app.partner.stats(request_id(&command)).card.unwrap();
    assert_eq!(products.len(), 2);
    assert!(status.starts_with("issued: card "), "{status}");
    assert!(!status.contains(&card), "{status}");
    assert!(status.contains(&card[card.len() - 4..]), "{status}");
    app.stop().await;
}

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_parked_status_check_moved_back_resumes_without_a_second_open_card() {
    let mut app = TestApp::start_with(&[("--handler-failure-limit", "1")]).await;
    let command = app.command("resume");
    let id = request_id(&command).to_owned();
    app.script(
        &command,
        vec![],
        vec![
            card_issuer::simulator::Reply::code("1005"),
            card_issuer::simulator::Reply::success(),
        ],
    );
    app.send(&command).await;
    // Let the open-card go through, then make the status check fail.
    wait_until(|| app.partner.stats(&id).open_card_calls == 1).await;
    card_issuer::failpoint::arm(&id, u32::MAX);
    let listed = wait_for_listed(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].reason.as_str(), listed[0].stage.as_str()),
        ("handler_failed", "status_check")
    );
    assert_eq!(
        dead_letters::by_reason(&listed).get("handler_failed"),
        Some(&1)
    );

    card_issuer::failpoint::arm(&id, 0);
    let selection = Selection {
        request_ids: vec![id.clone()],
        ..Selection::default()
    };
    let moved = dead_letters::requeue(&direct(&app), &selection, 100)
        .await
        .unwrap();

    assert_eq!(moved.len(), 1);
    assert_eq!(app.outcome(&id).await.routing_key, "card.issued");
    assert_eq!(app.partner.stats(&id).open_card_calls, 1);
    assert!(
        dead_letters::list(&direct(&app), 100)
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn requeue_leaves_unselected_messages_parked() {
    let mut app = TestApp::start().await;
    let mut bad_phone = app.command("stay");
    bad_phone["phoneNumber"] = "+99890".into();
    app.send(&bad_phone).await;
    app.outcome(request_id(&bad_phone)).await;
    wait_for_listed(&app).await;

    let selection = Selection {
        reasons: vec!["not_json".into()],
        ..Selection::default()
    };
    let moved = dead_letters::requeue(&direct(&app), &selection, 100)
        .await
        .unwrap();

    assert!(moved.is_empty());
    let listed = dead_letters::list(&direct(&app), 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason, "invalid_phone");
    app.stop().await;
}

async fn wait_for_listed(app: &TestApp) -> Vec<dead_letters::Parked> {
    for _ in 0..100 {
        let listed = dead_letters::list(&direct(app), 100).await.unwrap();
        if !listed.is_empty() {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing was parked");
}

#[cfg(feature = "failpoints")]
async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition never held");
}
