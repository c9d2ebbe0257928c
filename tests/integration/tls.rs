//! The worker over TLS: `amqps://` to the broker and `https://` to the
//! partner, both trusting a private CA given in a file.

use card_issuer::partner::PartnerClient;
use card_issuer::settings::Settings;

use crate::support::tls::PrivateCa;
use crate::support::{TestApp, broker, request_id};

#[tokio::test]
async fn a_card_is_issued_over_amqps_and_https_with_a_private_ca() {
    let ca = PrivateCa::new();
    let amqps_port = ca.terminate(broker::addr().await).await;
    // The simulator is started by the app; a first app tells us its port.
    let mut app = TestApp::start().await;
    let https_port = ca.terminate(app.partner.addr()).await;
    let ca_file = ca.ca_file.to_str().unwrap().to_owned();
    app.stop_worker().await;
    app.settings = Settings::from_flags(&[
        "--amqp-url".to_owned(),
        format!("amqps://guest:guest@localhost:{amqps_port}/%2f"),
        "--amqp-ca-file".to_owned(),
        ca_file.clone(),
        "--partner-url".to_owned(),
        format!("https://localhost:{https_port}"),
        "--partner-ca-file".to_owned(),
        ca_file,
        "--partner-username".to_owned(),
        "login".to_owned(),
        "--partner-password".to_owned(),
        "p@ssw0rd".to_owned(),
        "--partner-calls-per-second".to_owned(),
        "0".to_owned(),
        // The same delays as the first worker, so the same queues are
        // cleaned up at the end.
        "--status-check-delays".to_owned(),
        "100ms,200ms".to_owned(),
        "--retry-delays".to_owned(),
        "100ms,300ms".to_owned(),
        "--commands-exchange".to_owned(),
        app.settings.broker.commands_exchange.clone(),
        "--events-exchange".to_owned(),
        app.settings.broker.events_exchange.clone(),
        "--queue-prefix".to_owned(),
        app.settings.broker.queue_prefix.clone(),
    ])
    .unwrap();
    app.start_worker().await;
    let command = app.command("tls");

    app.send(&command).await;

    assert_eq!(
        app.outcome(request_id(&command)).await.routing_key,
        "card.issued"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_partner_certificate_from_an_unknown_ca_is_refused() {
    let ca = PrivateCa::new();
    let app = TestApp::start().await;
    let https_port = ca.terminate(app.partner.addr()).await;
    let settings = Settings::from_flags(&[
        "--partner-url".to_owned(),
        format!("https://localhost:{https_port}"),
        "--partner-username".to_owned(),
        "login".to_owned(),
        "--partner-password".to_owned(),
        "p@ssw0rd".to_owned(),
    ])
    .unwrap();
    let trusting = Settings::from_flags(&[
        "--partner-url".to_owned(),
        format!("https://localhost:{https_port}"),
        "--partner-ca-file".to_owned(),
        ca.ca_file.to_str().unwrap().to_owned(),
        "--partner-username".to_owned(),
        "login".to_owned(),
        "--partner-password".to_owned(),
        "p@ssw0rd".to_owned(),
    ])
    .unwrap();

    let without_ca = PartnerClient::new(&settings.partner, 1)
        .unwrap()
        .products()
        .await;
    let with_ca = PartnerClient::new(&trusting.partner, 1)
        .unwrap()
        .products()
        .await;

    assert!(without_ca.is_err());
    assert_eq!(with_ca.unwrap().len(), 2);
    app.stop().await;
}
