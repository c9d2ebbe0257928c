//! SIGTERM lets work in flight finish and exits 0; SIGKILL loses nothing.

use std::time::Duration;

use crate::processes::{Partner, Worker, collect, command, upstream};

#[tokio::test]
async fn sigterm_finishes_work_in_flight_hands_back_the_rest_and_exits_zero() {
    let partner = Partner::start(&["--latency", "300ms"]);
    let prefix = Worker::prefix("sigterm");
    let mut worker = Worker::start(
        &prefix,
        Worker::env_for(&partner, &prefix),
        &["--concurrency", "4"],
    )
    .await;
    let (upstream, mut events) = upstream(&worker).await;
    let commands: Vec<_> = (0..30).map(|n| command(&prefix, n)).collect();
    for command in &commands {
        upstream
            .publish_command(command.to_string().as_bytes(), None)
            .await
            .unwrap();
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.signal("TERM");
    let code = worker.wait_exit(Duration::from_secs(15)).await;
    worker.restart().await;
    let ids: Vec<String> = commands
        .iter()
        .map(|c| c["requestId"].as_str().unwrap().to_owned())
        .collect();
    let seen = collect(&mut events, &ids, Duration::from_secs(60)).await;

    assert_eq!(code, Some(0), "{}", worker.log_text());
    assert!(
        worker
            .log_text()
            .contains("shutting down: finishing work in flight")
    );
    // Work in flight was finished and acknowledged, not done again after the
    // restart: one open-card call and one event each.
    let mut seen = seen;
    let late = collect(&mut events, &[String::new()], Duration::from_secs(2)).await;
    for (id, keys) in late {
        seen.entry(id).or_default().extend(keys);
    }
    for id in &ids {
        let keys = seen.get(id).unwrap_or_else(|| panic!("no event for {id}"));
        assert_eq!(keys, &["card.issued".to_owned()], "{id}");
        assert_eq!(partner.stats(id).await["open_card_calls"], 1, "{id}");
    }
}

#[tokio::test]
async fn sigkill_at_any_moment_loses_nothing_and_issues_one_card_each() {
    let partner = Partner::start(&["--latency", "50ms", "--review-checks", "2"]);
    let prefix = Worker::prefix("sigkill");
    let mut worker = Worker::start(&prefix, Worker::env_for(&partner, &prefix), &[]).await;
    let (upstream, mut events) = upstream(&worker).await;
    let commands: Vec<_> = (0..60).map(|n| command(&prefix, n)).collect();

    for (n, command) in commands.iter().enumerate() {
        upstream
            .publish_command(command.to_string().as_bytes(), None)
            .await
            .unwrap();
        if n % 20 == 19 {
            worker.signal("KILL");
            worker.wait_exit(Duration::from_secs(5)).await;
            worker.restart().await;
        }
    }
    let ids: Vec<String> = commands
        .iter()
        .map(|c| c["requestId"].as_str().unwrap().to_owned())
        .collect();
    let seen = collect(&mut events, &ids, Duration::from_secs(60)).await;

    for id in &ids {
        let keys = seen.get(id).unwrap_or_else(|| panic!("no event for {id}"));
        assert!(
            keys.iter().all(|key| key == "card.issued"),
            "{id}: {keys:?}"
        );
        let stats = partner.stats(id).await;
        assert_eq!(stats["accepted"], true, "{id}");
    }
}
