use std::io::Write;
use std::time::Duration;

use clap::{Args, Command, FromArgMatches};

use super::*;

fn command() -> Command {
    run_groups(ConfigArgs::augment_args(
        Command::new("test").no_binary_name(true),
    ))
}

fn known() -> Vec<String> {
    let mut ids = ids_of::<BrokerArgs>();
    ids.extend(ids_of::<PartnerArgs>());
    ids.extend(ids_of::<IssuanceArgs>());
    ids.extend(ids_of::<WorkerArgs>());
    ids
}

fn load(argv: &[&str], file: Option<&str>) -> Result<Settings, SettingsError> {
    let matches = command().try_get_matches_from(argv).expect("flags parse");
    let config = ConfigArgs::from_arg_matches(&matches).unwrap().config;
    let temp = file.map(|contents| {
        let mut temp = tempfile();
        temp.1.write_all(contents.as_bytes()).unwrap();
        temp
    });
    let path = temp
        .as_ref()
        .map(|(path, _)| path.as_path())
        .or(config.as_deref().map(Path::new));
    let ids = known();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let layers = Layers::new(&matches, path, &ids)?;
    Settings::load(&layers)
}

use std::path::{Path, PathBuf};

fn tempfile() -> (PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!(
        "card-issuer-settings-{}-{}.toml",
        std::process::id(),
        fastrand::u64(..)
    ));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

#[test]
fn defaults_match_the_contract() {
    let settings = load(&[], None).unwrap();

    assert_eq!(
        settings.broker.urls[0].expose(),
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    );
    assert_eq!(settings.broker.commands_exchange, "cards.commands");
    assert_eq!(settings.broker.events_exchange, "cards.events");
    assert_eq!(settings.worker.metrics_addr.to_string(), "0.0.0.0:9464");
    assert_eq!(settings.worker.concurrency, 64);
    assert_eq!(settings.issuance.deadline, Duration::from_secs(24 * 3600));
    assert_eq!(settings.issuance.status_check_delays.len(), 6);
    assert_eq!(
        settings.issuance.longest_retry_delay(),
        Duration::from_secs(120)
    );
    assert_eq!(
        settings.issuance.event_card_number,
        CardNumberInEvents::Full
    );
}

#[test]
fn the_file_wins_over_defaults_and_flags_win_over_the_file() {
    let file = "partner_timeout = \"3s\"\nconcurrency = 8\nretry_delays = [\"100ms\", \"1s\"]\n";

    let settings = load(&["--concurrency", "16"], Some(file)).unwrap();

    assert_eq!(settings.partner.timeout, Duration::from_secs(3));
    assert_eq!(settings.worker.concurrency, 16);
    assert_eq!(
        settings.issuance.retry_delays,
        vec![Duration::from_millis(100), Duration::from_secs(1)]
    );
}

#[test]
fn a_misspelt_key_in_the_file_is_an_error() {
    let error = load(&[], Some("partner_timout = \"3s\"\n")).err().unwrap();

    assert!(error.to_string().contains("partner_timout"), "{error}");
}

#[test]
fn bad_values_name_the_variable_to_fix() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["--partner-timeout", "soon"],
            "CARD_ISSUER_PARTNER_TIMEOUT",
        ),
        (
            &["--status-check-delays", ","],
            "CARD_ISSUER_STATUS_CHECK_DELAYS",
        ),
        (&["--concurrency", "0"], "CARD_ISSUER_CONCURRENCY"),
        (&["--queue-type", "stream"], "CARD_ISSUER_QUEUE_TYPE"),
        (&["--publish-timeout", "0s"], "CARD_ISSUER_PUBLISH_TIMEOUT"),
        (&["--partner-timeout", "0s"], "CARD_ISSUER_PARTNER_TIMEOUT"),
        (&["--retry-delays", "1s,0s"], "CARD_ISSUER_RETRY_DELAYS"),
        (
            &["--max-command-bytes", "0"],
            "CARD_ISSUER_MAX_COMMAND_BYTES",
        ),
        (
            &["--amqp-url", "http://u:hunter2@host"],
            "CARD_ISSUER_AMQP_URL",
        ),
    ];
    for (argv, variable) in cases {
        let error = load(argv, None).err().expect("should fail").to_string();
        assert!(error.contains(variable), "{argv:?}: {error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[test]
fn secrets_come_from_files_without_their_line_break() {
    let (path, mut file) = tempfile();
    file.write_all(b"s3cret\n").unwrap();
    let path = path.to_str().unwrap();

    let settings = load(
        &[
            "--partner-password",
            "ignored",
            "--partner-password-file",
            path,
        ],
        None,
    );

    let password = settings.unwrap().partner.password.unwrap();
    assert_eq!(password.expose(), "s3cret");
}

#[test]
fn several_brokers_are_comma_separated() {
    let urls = "amqp://a:5672/%2f, amqps://b:5671/%2f";

    let settings = load(&["--amqp-url", urls], None).unwrap();

    let urls: Vec<&str> = settings
        .broker
        .urls
        .iter()
        .map(|url| url.expose().as_str())
        .collect();
    assert_eq!(urls, ["amqp://a:5672/%2f", "amqps://b:5671/%2f"]);
}

#[test]
fn redacted_urls_keep_the_host_and_drop_the_password() {
    assert_eq!(
        redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
        "amqp://guest:***@127.0.0.1:5672/%2f"
    );
    assert_eq!(redact_url("amqp://127.0.0.1"), "amqp://127.0.0.1");
    assert_eq!(redact_url("amqp://u:p@ss@h/v"), "amqp://u:***@h/v");
    assert_eq!(
        redact_url("amqp://guest:Zq/9s?cret@h:5672/%2f"),
        "amqp://guest:***@h:5672/%2f"
    );
}
