//! Odd and hostile input, from upstream services and from the partner: each
//! gets a clear outcome, never a crash, a silent drop or a loop.

use std::time::Duration;

use card_issuer::simulator::Reply;
use serde_json::{Value, json};

use crate::support::{TestApp, request_id};

fn reply(spec: Value) -> Reply {
    serde_json::from_value(spec).expect("a valid scripted reply")
}

#[tokio::test]
async fn request_ids_that_need_percent_encoding_reach_the_status_check_intact() {
    let mut app = TestApp::start().await;
    let suffixes = [
        "a/b",
        "q?x=1",
        "frag#1",
        "../etc/passwd",
        "with space",
        "заявка-№7",
        "a..b",
    ];

    for suffix in suffixes {
        let mut command = app.command("enc");
        command["requestId"] = json!(format!("{} {suffix}", request_id(&command)));
        app.send(&command).await;
        let event = app.outcome(request_id(&command)).await;
        let stats = app.partner.stats(request_id(&command));
        assert_eq!(event.routing_key, "card.issued", "{suffix}");
        assert_eq!(
            (stats.open_card_calls, stats.status_calls),
            (1, 1),
            "{suffix}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn ids_written_as_numbers_and_numbers_written_as_strings_are_understood() {
    let mut app = TestApp::start().await;
    let mut command = app.command("types");
    let numeric_id = fastrand::u64(1_000_000_000..u64::MAX / 2);
    command["requestId"] = json!(numeric_id);
    command["productId"] = json!("2");

    app.send(&command).await;

    let event = app.outcome(&numeric_id.to_string()).await;
    assert_eq!(event.routing_key, "card.issued");
    assert_eq!(event.body["requestId"], numeric_id.to_string());
    assert_eq!(event.body["productId"], 2);
    app.stop().await;
}

#[tokio::test]
async fn unusable_request_ids_are_refused_and_overlong_ones_not_echoed() {
    let mut app = TestApp::start().await;
    let mut dots = app.command("dots");
    dots["requestId"] = json!("..");
    let mut overlong = app.command("long");
    overlong["requestId"] = json!("x".repeat(300));

    app.send(&dots).await;
    app.send(&overlong).await;

    let event = app.outcome("..").await;
    assert_eq!(event.body["reason"], "invalid_command");
    let parked = app.wait_for_parked(2).await;
    assert!(
        parked
            .iter()
            .all(|message| message.reason == "invalid_request_id")
    );
    app.assert_no_event(&"x".repeat(300), Duration::from_millis(300))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_parked() {
    let app = TestApp::start_with(&[("--max-command-bytes", "512")]).await;
    let mut command = app.command("large");
    command["padding"] = json!("x".repeat(1000));

    app.send(&command).await;

    let parked = app.wait_for_parked(1).await;
    assert_eq!(parked[0].reason, "too_large");
    app.stop().await;
}

#[tokio::test]
async fn the_partner_s_odd_replies_are_read_as_meant() {
    let mut app = TestApp::start().await;
    let rows = [
        // A numeric code is the same code.
        (
            vec![reply(json!({"code": 1006}))],
            vec![],
            "card.failed",
            Some("1006"),
        ),
        // "Success" and "SUCCESS" are success.
        (
            vec![reply(json!({"ok": true, "status_text": "Success"}))],
            vec![reply(json!({"ok": true, "status_text": "SUCCESS"}))],
            "card.issued",
            None,
        ),
        // A card number sent as a number is still the card.
        (
            vec![],
            vec![reply(
                json!({"ok": true, "card": 8600123412341234_u64, "exp": 2912}),
            )],
            "card.issued",
            None,
        ),
        // Extra fields change nothing.
        (
            vec![reply(
                json!({"body": {"status": "success", "data": null, "traceId": "x", "extra": [1]}}),
            )],
            vec![reply(json!({"body": {"status": "success", "extra": true,
                                    "data": {"cardNumber": "8600111122223333", "exp": "2912", "cvv": null}}}))],
            "card.issued",
            None,
        ),
        // An empty body is no answer: the call is made again.
        (
            vec![reply(json!({"empty": true})), reply(json!({"ok": true}))],
            vec![],
            "card.issued",
            None,
        ),
    ];

    for (open_card, status, key, code) in rows {
        let command = app.command("odd");
        app.script(&command, open_card, status);
        app.send(&command).await;
        let event = app.outcome(request_id(&command)).await;
        assert_eq!(event.routing_key, key, "{}", event.body);
        assert_eq!(event.body.get("code").and_then(Value::as_str), code);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_multi_line_partner_message_reaches_the_event_whole() {
    let mut app = TestApp::start().await;
    let command = app.command("lines");
    let message = "Эта карта\nне поддерживается\r\n(line three)";
    app.script(
        &command,
        vec![reply(json!({"code": "1008", "message": message}))],
        vec![],
    );

    app.send(&command).await;

    let event = app.outcome(request_id(&command)).await;
    assert_eq!(event.body["message"], message);
    app.stop().await;
}

#[tokio::test]
async fn a_card_number_sent_as_a_number_comes_out_as_a_string() {
    let mut app = TestApp::start().await;
    let command = app.command("numeric-card");
    let card = reply(json!({"ok": true, "card": 8600999988887777_u64, "exp": "3001"}));
    app.script(&command, vec![], vec![card]);

    app.send(&command).await;

    let event = app.outcome(request_id(&command)).await;
    assert_eq!(event.body["cardNumber"], "8600999988887777");
    assert_eq!(event.body["maskedCardNumber"], "860099******7777");
    app.stop().await;
}
