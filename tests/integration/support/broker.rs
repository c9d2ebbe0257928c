//! Which broker the tests use.
//!
//! In order: the URL in `CARD_ISSUER_TEST_AMQP_URL`; the local broker at
//! 127.0.0.1:5672 when it answers; a RabbitMQ 3.10 container started with
//! testcontainers where Docker is available. Without any of them the tests
//! fail, saying so, rather than pass without a broker.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

const LOCAL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The broker's URL, found once per test binary.
pub fn url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(find).clone()
}

/// The broker's host and port, resolved.
pub async fn addr() -> SocketAddr {
    let url = url();
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next());
    let host_port = host_port.expect("the test broker URL names a host");
    tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .expect("the broker host resolves")
}

/// Deletes everything a worker declared, from a thread of its own: test
/// destructors cannot await.
pub fn delete_in_background(topology: card_issuer::broker::Topology) {
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let Ok(connection) =
                lapin::Connection::connect(&url(), lapin::ConnectionProperties::default()).await
            else {
                return;
            };
            if let Ok(channel) = connection.create_channel().await {
                let _ = topology.delete(&channel).await;
            }
            let _ = connection.close(200, "cleaned up".into()).await;
        });
    })
    .join();
}

fn find() -> String {
    if let Ok(url) = std::env::var("CARD_ISSUER_TEST_AMQP_URL") {
        return url;
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 5672));
    if TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_ok() {
        return LOCAL.to_owned();
    }
    if docker_available() {
        return start_container();
    }
    panic!(
        "no RabbitMQ for the tests: set CARD_ISSUER_TEST_AMQP_URL, start the local broker \
         (scripts/ensure-broker), or make Docker available"
    );
}

fn docker_available() -> bool {
    std::env::var_os("DOCKER_HOST").is_some() || Path::new("/var/run/docker.sock").exists()
}

/// Starts RabbitMQ 3.10 in a container that lives as long as the test
/// binary; testcontainers' reaper removes it afterwards.
fn start_container() -> String {
    use testcontainers_modules::rabbitmq::RabbitMq;
    use testcontainers_modules::testcontainers::ImageExt;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime for the container");
        runtime.block_on(async move {
            let container = RabbitMq::default()
                .with_tag("3.10-management")
                .start()
                .await
                .expect("RabbitMQ container starts");
            let port = container
                .get_host_port_ipv4(5672)
                .await
                .expect("the AMQP port is mapped");
            sender
                .send(format!("amqp://guest:guest@127.0.0.1:{port}/%2f"))
                .unwrap();
            // Keeps the container for the rest of the test binary.
            std::future::pending::<()>().await;
        });
    });
    receiver
        .recv_timeout(Duration::from_secs(180))
        .expect("RabbitMQ container answers")
}
