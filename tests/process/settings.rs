//! How settings combine, and how a bad one is reported.

use std::process::Command;

use crate::processes::{BIN, Partner, Worker};

#[tokio::test]
async fn flags_win_over_the_file_and_the_file_over_the_environment() {
    let partner = Partner::start(&[]);
    let prefix = Worker::prefix("layers");
    let file = std::env::temp_dir().join(format!("{prefix}.toml"));
    std::fs::write(&file, "partner_timeout = \"3s\"\ndeadline = \"1h\"\n").unwrap();
    let mut env = Worker::env_for(&partner, &prefix);
    env.retain(|(name, _)| name != "CARD_ISSUER_PARTNER_TIMEOUT" && name != "CARD_ISSUER_DEADLINE");
    env.push(("CARD_ISSUER_PARTNER_TIMEOUT".into(), "7s".into()));
    env.push(("CARD_ISSUER_DEADLINE".into(), "2h".into()));
    env.push(("CARD_ISSUER_CONCURRENCY".into(), "5".into()));

    let worker = Worker::start(
        &prefix,
        env,
        &["--config", file.to_str().unwrap(), "--deadline", "30m"],
    )
    .await;

    let log = worker.log_text();
    assert!(log.contains("partner_timeout=3s"), "{log}");
    assert!(log.contains("deadline=1800s"), "{log}");
    assert!(log.contains("concurrency=5"), "{log}");
}

#[test]
fn a_bad_setting_stops_the_worker_with_the_variable_named_and_no_secret_shown() {
    let output = Command::new(BIN)
        .arg("run")
        .env("CARD_ISSUER_PARTNER_TIMEOUT", "soon")
        .env(
            "CARD_ISSUER_AMQP_URL",
            "amqp://user:hunter2@127.0.0.1:1/%2f",
        )
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("CARD_ISSUER_PARTNER_TIMEOUT"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let output = Command::new(BIN)
        .args(["--log-format", "json", "run"])
        .env("CARD_ISSUER_PARTNER_TIMEOUT", "soon")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().expect("one line at least");
    let parsed: serde_json::Value = serde_json::from_str(first).expect("a JSON line");
    assert_eq!(parsed["level"], "ERROR");
}

#[tokio::test]
async fn one_config_file_serves_the_worker_and_the_operator_commands() {
    let partner = Partner::start(&[]);
    let file = std::env::temp_dir().join(format!("{}.toml", Worker::prefix("shared-config")));
    let contents = format!(
        "partner_url = \"{}\"\npartner_username = \"login\"\npartner_password = \"p@ssw0rd\"\n\
         metrics_addr = \"127.0.0.1:0\"\nconcurrency = 8\ndeadline = \"1h\"\n",
        partner.url
    );
    std::fs::write(&file, contents).unwrap();

    let output = Command::new(BIN)
        .args(["--config", file.to_str().unwrap(), "partner", "products"])
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("HUMO virtual"), "{stdout}");
}

#[tokio::test]
async fn partner_settings_may_follow_the_query() {
    let partner = Partner::start(&[]);

    let output = Command::new(BIN)
        .args(["partner", "products", "--partner-url", &partner.url])
        .args([
            "--partner-username",
            "login",
            "--partner-password",
            "p@ssw0rd",
        ])
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("VISA virtual"));
}
