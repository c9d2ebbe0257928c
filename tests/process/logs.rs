//! A real run's log holds no password, PINFL, full phone or card number.

use std::time::Duration;

use base64::Engine;

use crate::processes::{Partner, Worker, collect, command, upstream};

#[tokio::test]
async fn a_debug_run_logs_no_secret_and_no_personal_data() {
    let partner = Partner::start(&["--rule", "status:0.3:1005"]);
    let prefix = Worker::prefix("logs");
    let worker = Worker::start(
        &prefix,
        Worker::env_for(&partner, &prefix),
        &["--log", "debug"],
    )
    .await;
    let (upstream, mut events) = upstream(&worker).await;
    let mut commands: Vec<_> = (0..10).map(|n| command(&prefix, n)).collect();
    commands[8]["phoneNumber"] = "+99890123".into();
    commands[9]["productId"] = 99.into();
    for command in &commands {
        upstream
            .publish_command(command.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    let ids: Vec<String> = commands
        .iter()
        .map(|c| c["requestId"].as_str().unwrap().to_owned())
        .collect();
    collect(&mut events, &ids, Duration::from_secs(30)).await;

    let log = worker.log_text();
    let mut secrets = vec!["p@ssw0rd".to_owned()];
    secrets.push(base64::engine::general_purpose::STANDARD.encode("login:p@ssw0rd"));
    for command in &commands {
        let phone = command["phoneNumber"].as_str().unwrap();
        secrets.push(command["pin"].as_str().unwrap().to_owned());
        secrets.push(phone.to_owned());
        secrets.push(phone.trim_start_matches('+').to_owned());
    }
    for id in &ids[..8] {
        let card = partner.stats(id).await["card"].as_str().unwrap().to_owned();
        secrets.push(card);
    }
    assert!(
        log.contains("card issued"),
        "the run did not get far enough:\n{log}"
    );
    for secret in secrets {
        assert!(!log.contains(&secret), "the log holds {}…", &secret[..3]);
    }
}

#[tokio::test]
async fn an_event_nobody_listens_for_is_kept_and_retried_without_its_contents_in_the_log() {
    let partner = Partner::start(&[]);
    let prefix = Worker::prefix("unroutable");
    let worker = Worker::start(&prefix, Worker::env_for(&partner, &prefix), &[]).await;
    let settings = worker.broker();
    let upstream = card_issuer::upstream::Upstream::connect(&settings, "process test")
        .await
        .unwrap();
    let command = command(&prefix, 0);
    let id = command["requestId"].as_str().unwrap().to_owned();

    // No queue is bound to the events exchange yet: the event comes back.
    upstream
        .publish_command(command.to_string().as_bytes(), None)
        .await
        .unwrap();
    let since = std::time::Instant::now();
    while !worker.log_text().contains("publish failed") {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut events = upstream.subscribe(&settings.events_exchange).await.unwrap();
    let seen = collect(
        &mut events,
        std::slice::from_ref(&id),
        Duration::from_secs(30),
    )
    .await;

    assert_eq!(
        seen.get(&id).map(Vec::as_slice),
        Some(&["card.issued".to_owned()][..])
    );
    let card = partner.stats(&id).await["card"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_bytes = format!("{:?}", card.as_bytes());
    let log = worker.log_text();
    assert!(log.contains("nothing is bound"), "{log}");
    assert!(!log.contains(&card), "the log holds the card number");
    assert!(
        !log.contains(as_bytes.trim_matches(['[', ']'])),
        "the log holds the card's bytes"
    );
    assert!(
        !log.contains(command["pin"].as_str().unwrap()),
        "the log holds the PINFL"
    );
}
