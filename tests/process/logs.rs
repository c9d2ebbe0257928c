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
