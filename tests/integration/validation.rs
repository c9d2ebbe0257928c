//! Commands that never reach the partner: an event when the request id can
//! be read, and a parked copy with the reason in every case.

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn invalid_commands_fail_and_are_parked_without_a_partner_call() {
    let mut app = TestApp::start().await;
    let base = app.command("invalid");
    let with = |field: &str, value: serde_json::Value, slug: &str| {
        let mut command = base.clone();
        command[field] = value;
        command["requestId"] = json!(format!("{}-{slug}", base["requestId"].as_str().unwrap()));
        command
    };
    let rows = [
        (
            with("phoneNumber", json!("+99890123"), "phone"),
            "invalid_command",
            "invalid_phone",
        ),
        (
            with("pin", json!("3010199000012"), "pin"),
            "invalid_command",
            "invalid_pin",
        ),
        (
            with("productId", json!("one"), "product-id"),
            "invalid_command",
            "invalid_product_id",
        ),
        (
            with("productId", json!(99), "product"),
            "unknown_product",
            "unknown_product",
        ),
    ];

    for (command, event_reason, _) in &rows {
        app.send(command).await;
        let event = app.outcome(command["requestId"].as_str().unwrap()).await;
        assert_eq!(event.routing_key, "card.failed");
        assert_eq!(event.body["reason"], *event_reason);
        assert_eq!(event.body["retryable"], false);
    }

    let parked = app.parked().await;
    for (command, _, parked_reason) in &rows {
        let body = command.to_string().into_bytes();
        let copy = parked
            .iter()
            .find(|message| message.body == body)
            .expect("parked");
        assert_eq!(copy.reason, *parked_reason);
        assert!(!copy.detail.is_empty());
        assert_eq!(
            app.partner
                .stats(command["requestId"].as_str().unwrap())
                .open_card_calls,
            0
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn bodies_without_a_request_id_are_parked_with_a_reason() {
    let app = TestApp::start().await;
    let rows: [(&[u8], &str); 5] = [
        (b"requestId=1&phone=2", "not_json"),
        (b"\xff\xfe\x00", "not_utf8"),
        (b"[1, 2, 3]", "not_an_object"),
        (br#"{"phoneNumber": "+998901234567"}"#, "missing_request_id"),
        (b"", "empty_body"),
    ];

    for (body, _) in &rows {
        app.send_raw(body).await;
    }
    let mut parked = vec![];
    for _ in 0..50 {
        parked.extend(app.parked().await);
        if parked.len() >= rows.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    for (body, reason) in rows {
        let copy = parked.iter().find(|message| message.body == body);
        assert_eq!(copy.map(|message| message.reason.as_str()), Some(reason));
    }
    app.stop().await;
}
