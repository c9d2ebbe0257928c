//! The simulator over HTTP, as a client sees it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::card::is_luhn_valid;
use super::*;

const PHONE: &str = "+998991234567";
const PIN: &str = "32000000262057";

#[tokio::test]
async fn calls_without_the_right_credentials_get_401_with_a_json_body() {
    let (sim, client) = start(local()).await;

    let anonymous = client
        .http
        .get(client.url("/api/v1/products"))
        .send()
        .await
        .unwrap();
    let wrong = client.get_as("/api/v1/products", "login", "wrong").await;

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body.get("code")),
        (Some("error"), None)
    );
    assert_eq!(
        (sim.totals().unauthorized_calls, sim.totals().products_calls),
        (2, 0)
    );
}

#[tokio::test]
async fn products_are_listed() {
    let (_sim, client) = start(local()).await;

    let body = client.json(client.get("/api/v1/products").await).await;

    let expected = json!([{"id": 1, "name": "HUMO virtual"}, {"id": 2, "name": "VISA virtual"}]);
    assert_eq!(body, json!({"status": "success", "data": expected}));
}

#[tokio::test]
async fn a_new_request_is_accepted_and_its_repeat_gets_1002() {
    let (sim, client) = start(local()).await;

    let first = client.open_card("r-1", PIN).await;
    let repeat = client.open_card("r-1", PIN).await;

    assert_eq!(first, json!({"status": "success", "data": null}));
    assert_eq!(code(&repeat), "1002");
    assert_eq!(repeat["message"], "RequestId должен быть уникальным");
    assert!(sim.stats("r-1").accepted);
    assert_eq!(sim.stats("r-1").open_card_calls, 2);
}

#[tokio::test]
async fn a_customer_waiting_for_a_card_gets_1000_for_another_request() {
    let (_sim, client) = start(local()).await;
    client.open_card("r-1", PIN).await;

    let same_person = client.open_card("r-2", PIN).await;
    let other_person = client.open_card("r-3", "32000000262058").await;

    assert_eq!(code(&same_person), "1000");
    assert_eq!(other_person["status"], "success");
}

#[tokio::test]
async fn a_customer_whose_card_was_issued_may_apply_again() {
    let (_sim, client) = start(local()).await;
    client.open_card("r-1", PIN).await;
    client.status("r-1").await;

    let again = client.open_card("r-2", PIN).await;

    assert_eq!(again["status"], "success");
}

#[tokio::test]
async fn product_ids_are_read_in_every_spelling_and_unknown_ones_get_1008() {
    let (_sim, client) = start(local()).await;
    let body = |id: &str, field: &str, product: Value| {
        let mut body = json!({"requestId": id, "phoneNumber": PHONE, "pin": id});
        body[field] = product;
        body
    };

    let numeric = client.post_json(body("a", "productId", json!(2))).await;
    let lowercase = client.post_json(body("b", "productid", json!("1"))).await;
    let unknown = client.post_json(body("c", "productId", json!("7"))).await;

    assert_eq!(client.json(numeric).await["status"], "success");
    assert_eq!(client.json(lowercase).await["status"], "success");
    assert_eq!(code(&client.json(unknown).await), "1008");
}

#[tokio::test]
async fn unreadable_calls_get_400_without_a_code() {
    let (sim, client) = start(local()).await;
    let without_pin = json!({"requestId": "r", "phoneNumber": PHONE, "productId": 1});

    let not_json = client.post_raw("{not json").await;
    let no_pin = client.post_json(without_pin).await;
    let not_utf8 = client.get("/card/status/%FF").await;

    for response in [not_json, no_pin, not_utf8] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["status"].as_str(), body.get("code")),
            (Some("error"), None)
        );
    }
    assert_eq!(sim.totals().bad_requests, 3);
}

#[tokio::test]
async fn status_is_1003_then_1005_for_the_review_then_a_valid_card() {
    let (sim, client) = start(SimulatorConfig {
        review_checks: 2,
        ..local()
    })
    .await;
    let before = client.status("r-1").await;
    client.open_card("r-1", PIN).await;

    let reviews = [client.status("r-1").await, client.status("r-1").await];
    let issued = client.status("r-1").await;
    let again = client.status("r-1").await;

    assert_eq!(code(&before), "1003");
    assert_eq!(reviews.map(|body| code(&body).to_owned()), ["1005", "1005"]);
    let card = issued["data"]["cardNumber"].as_str().unwrap();
    assert!(
        card.len() == 16 && card.starts_with("8600") && is_luhn_valid(card),
        "{card}"
    );
    assert_eq!(issued["data"]["exp"], expiry("r-1"));
    assert_eq!(again, issued);
    let stats = sim.stats("r-1");
    assert_eq!(
        (stats.issued, stats.card.as_deref(), stats.status_calls),
        (true, Some(card), 5)
    );
}

#[tokio::test]
async fn scripted_replies_come_in_order_and_the_last_one_repeats() {
    let (sim, client) = start(local()).await;
    let scenario = Scenario {
        open_card: vec![Reply::code("1007"), Reply::success()],
        status: vec![
            Reply::code(1005),
            Reply::success().with_http(StatusCode::CREATED),
        ],
    };
    sim.script("r-1", scenario);

    let opens = [
        client.open_card("r-1", PIN).await,
        client.open_card("r-1", PIN).await,
    ];
    let third_open = client.open_card("r-1", PIN).await;
    let first_status = client.status("r-1").await;
    let later = [
        client.get("/card/status/r-1").await,
        client.get("/card/status/r-1").await,
    ];

    assert_eq!(code(&opens[0]), "1007");
    assert_eq!(
        (&opens[1]["status"], &third_open["status"]),
        (&json!("success"), &json!("success"))
    );
    assert_eq!(first_status["code"], json!(1005));
    assert!(
        later
            .iter()
            .all(|response| response.status() == StatusCode::CREATED)
    );
}

#[tokio::test]
async fn a_scripted_ok_on_open_card_lets_the_stateful_status_issue_the_card() {
    let (sim, client) = start(local()).await;
    sim.script(
        "r-1",
        Scenario {
            open_card: vec![Reply::success()],
            status: vec![],
        },
    );

    client.open_card("r-1", PIN).await;
    let status = client.status("r-1").await;

    assert_eq!(status["data"]["cardNumber"], card_number("r-1"));
}

#[tokio::test]
async fn request_ids_with_reserved_characters_round_trip_through_the_path() {
    let (sim, client) = start(local()).await;
    let request_id = "a/b?c#d e%f+g—ünï😀";
    client.open_card(request_id, PIN).await;

    let encoded = utf8_percent_encode(request_id, NON_ALPHANUMERIC).to_string();
    let status = client
        .json(client.get(&format!("/card/status/{encoded}")).await)
        .await;

    assert_eq!(status["data"]["cardNumber"], card_number(request_id));
    assert_eq!(sim.stats(request_id).status_calls, 1);
}

#[tokio::test]
async fn a_rule_with_share_one_always_faults_and_share_zero_never() {
    let (sim, client) = start(local()).await;
    client.open_card("r-1", PIN).await;

    sim.set_rules(vec!["status:1:1009".parse().unwrap()]);
    let faulted = [client.status("r-1").await, client.status("r-1").await];
    sim.set_rules(vec!["status:0:1009".parse().unwrap()]);
    let clean = client.status("r-1").await;

    assert!(faulted.iter().all(|body| code(body) == "1009"));
    assert_eq!(clean["status"], "success");
    assert_eq!(sim.totals().faults, [("1009".to_owned(), 2)].into());
    assert_eq!(sim.stats("r-1").status_calls, 3);
}

#[tokio::test]
async fn rules_leave_scripted_request_ids_alone() {
    let config = SimulatorConfig {
        rules: vec!["any:1:http503".parse().unwrap()],
        ..local()
    };
    let (sim, client) = start(config).await;
    sim.script(
        "r-1",
        Scenario {
            open_card: vec![Reply::success()],
            status: vec![],
        },
    );

    let scripted = client.post_json(open_card_body("r-1", PIN)).await;
    let unscripted = client.post_json(open_card_body("r-2", PIN)).await;

    assert_eq!(scripted.status(), StatusCode::OK);
    assert_eq!(unscripted.status(), StatusCode::SERVICE_UNAVAILABLE);
    let content_type = unscripted.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"));
    assert!(
        unscripted
            .text()
            .await
            .unwrap()
            .contains("503 Service Unavailable")
    );
    assert!(!sim.stats("r-2").accepted);
}

#[tokio::test]
async fn a_lost_reply_is_processed_but_comes_too_late() {
    let config = SimulatorConfig {
        rules: vec!["open-card:1:lost=300ms".parse().unwrap()],
        ..local()
    };
    let (sim, client) = start(config).await;
    let request = client
        .http
        .post(client.url("/api/v1/open-card"))
        .basic_auth("login", Some("p@ssw0rd"));

    let result = request
        .json(&open_card_body("r-1", PIN))
        .timeout(ms(50))
        .send()
        .await;

    assert!(result.unwrap_err().is_timeout());
    assert!(sim.stats("r-1").accepted);
    assert_eq!(sim.totals().faults, [("lost".to_owned(), 1)].into());
}

#[tokio::test]
async fn a_timeout_fault_answers_504_late_and_processes_nothing() {
    let config = SimulatorConfig {
        rules: vec!["any:1:timeout=100ms".parse().unwrap()],
        ..local()
    };
    let (sim, client) = start(config).await;
    let started = Instant::now();

    let response = client.post_json(open_card_body("r-1", PIN)).await;

    assert!(started.elapsed() >= ms(100));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(!sim.stats("r-1").accepted);
}

#[tokio::test]
async fn the_same_seed_faults_the_same_calls() {
    let rules = vec!["open-card:0.5:1007".parse().unwrap()];
    let config = || SimulatorConfig {
        seed: 5,
        rules: Vec::clone(&rules),
        ..local()
    };
    let (_first, first_client) = start(config()).await;
    let (_second, second_client) = start(config()).await;

    let first = first_client.codes_for_twenty_requests().await;
    let second = second_client.codes_for_twenty_requests().await;

    assert_eq!(first, second);
    assert!(first.contains(&"1007".to_owned()) && first.contains(&"success".to_owned()));
}

#[tokio::test]
async fn control_endpoints_script_rule_report_and_reset() {
    let (sim, client) = start(local()).await;
    let scenarios = json!({"r-1": {"status": [{"code": "1006"}]}});

    let scripted = client.control("/_scenarios", scenarios).await;
    let ruled = client.control("/_rules", json!(["open-card:1:1009"])).await;
    let refused = client.control("/_rules", json!(["open-card:2:1009"])).await;
    let status = client.status("r-1").await;
    let open = client.open_card("r-2", PIN).await;
    let stats = client
        .json(client.http.get(client.url("/_stats")).send().await.unwrap())
        .await;
    client.control("/_reset", json!(null)).await;

    assert_eq!([scripted.status(), ruled.status()], [StatusCode::OK; 2]);
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!((code(&status), code(&open)), ("1006", "1009"));
    assert_eq!(stats["totals"]["faults"], json!({"1009": 1}));
    assert_eq!(stats["requests"]["r-2"]["open_card_calls"], 1);
    assert_eq!(sim.totals(), Totals::default());
    assert_eq!(sim.stats("r-2"), RequestStats::default());
}

#[tokio::test]
async fn latency_delays_partner_answers_but_not_control_endpoints() {
    let (_sim, client) = start(SimulatorConfig {
        latency: ms(200),
        ..local()
    })
    .await;

    let started = Instant::now();
    client
        .http
        .get(client.url("/_health"))
        .send()
        .await
        .unwrap();
    let control_time = started.elapsed();
    client.get("/api/v1/products").await;
    let partner_time = started.elapsed() - control_time;

    assert!(control_time < ms(200), "{control_time:?}");
    assert!(partner_time >= ms(200), "{partner_time:?}");
}

#[tokio::test]
async fn shutdown_cuts_held_back_answers_short() {
    let config = SimulatorConfig {
        rules: vec!["any:1:timeout=30s".parse().unwrap()],
        ..local()
    };
    let (sim, client) = start(config).await;
    let waiting = tokio::spawn(async move { client.get("/api/v1/products").await.status() });
    while sim.totals().products_calls == 0 {
        tokio::time::sleep(ms(5)).await;
    }
    let started = Instant::now();

    sim.shutdown().await.unwrap();

    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(waiting.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn debug_logs_hold_no_personal_data_card_numbers_or_password() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE);
    // A current-thread runtime runs the server's tasks on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber.with_writer(logs.clone()).finish());
    let (sim, client) = start(SimulatorConfig {
        rules: vec!["status:0.5:1009".parse().unwrap()],
        ..local()
    })
    .await;

    client.open_card("r-1", PIN).await;
    while client.status("r-1").await["status"] != "success" {}
    client
        .post_json(json!({"requestId": "r-2", "phoneNumber": PHONE, "productId": 1, "pin": 3}))
        .await;
    let card = sim.stats("r-1").card.unwrap();
    drop(sim);

    let text = logs.text();
    assert!(text.contains("r-1") && text.contains("listening"), "{text}");
    for secret in [PIN, "991234567", &card[4..], "p@ssw0rd", "cEBzc3cwcmQ"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A client of one simulator, with the default credentials.
struct Client {
    http: reqwest::Client,
    base_url: String,
}

async fn start(config: SimulatorConfig) -> (SimulatorHandle, Client) {
    let sim = spawn(config)
        .await
        .expect("the simulator binds a free port");
    // reqwest builds a TLS configuration even for http://, and this crate
    // leaves the choice of crypto provider to the binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = Client {
        http,
        base_url: sim.base_url(),
    };
    (sim, client)
}

fn local() -> SimulatorConfig {
    SimulatorConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ..Default::default()
    }
}

fn open_card_body(request_id: &str, pin: &str) -> Value {
    json!({"requestId": request_id, "phoneNumber": PHONE, "productId": "1", "pin": pin})
}

/// The error code of a partner body, as text.
fn code(body: &Value) -> &str {
    body["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(path, "login", "p@ssw0rd").await
    }

    async fn get_as(&self, path: &str, username: &str, password: &str) -> reqwest::Response {
        let request = self
            .http
            .get(self.url(path))
            .basic_auth(username, Some(password));
        request.send().await.unwrap()
    }

    async fn post_json(&self, body: Value) -> reqwest::Response {
        self.post_raw(&body.to_string()).await
    }

    async fn post_raw(&self, body: &str) -> reqwest::Response {
        let request = self.http.post(self.url("/api/v1/open-card"));
        let request = request
            .basic_auth("login", Some("p@ssw0rd"))
            .body(body.to_owned());
        request
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap()
    }

    async fn open_card(&self, request_id: &str, pin: &str) -> Value {
        self.json(self.post_json(open_card_body(request_id, pin)).await)
            .await
    }

    async fn status(&self, request_id: &str) -> Value {
        let encoded = utf8_percent_encode(request_id, NON_ALPHANUMERIC);
        self.json(self.get(&format!("/card/status/{encoded}")).await)
            .await
    }

    async fn control(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, response: reqwest::Response) -> Value {
        response.json().await.unwrap()
    }

    /// Open-card for r-0 .. r-19, each for its own customer: the code, or
    /// `success`.
    async fn codes_for_twenty_requests(&self) -> Vec<String> {
        let mut codes = Vec::new();
        for n in 0..20 {
            let body = self.open_card(&format!("r-{n}"), &format!("{n:014}")).await;
            codes.push(body["code"].as_str().unwrap_or("success").to_owned());
        }
        codes
    }
}
