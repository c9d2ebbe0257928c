//! The HTTP client for the partner's three endpoints.

use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde_json::json;

use super::{RateLimit, Reply, Unavailable};
use crate::domain::{OpenCardCommand, Product, ProductId, RequestId};
use crate::metrics;
use crate::settings::PartnerSettings;

/// Everything but unreserved characters is encoded, `/`, `?`, `#` and `.`
/// included, so a request id always stays one path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// Reply bodies larger than this are not read: the partner's JSON is tiny,
/// and an endless body from a broken proxy must not exhaust memory.
const MAX_REPLY_BYTES: usize = 256 * 1024;

/// A `Retry-After` longer than an hour is read as an hour: a partner's
/// misconfigured proxy must not stop the worker for a year.
const MAX_RETRY_AFTER_SECONDS: u64 = 3600;

/// The partner's endpoints, as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/v1/products`.
    Products,
    /// `POST /api/v1/open-card`.
    OpenCard,
    /// `GET /card/status/{requestId}`.
    Status,
}

impl Endpoint {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Products => "products",
            Self::OpenCard => "open_card",
            Self::Status => "status",
        }
    }
}

/// The client could not be built or the product list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file is missing or not PEM.
    #[error("cannot use the partner CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client for the partner")]
    Build(#[source] reqwest::Error),
    /// The products call did not succeed; the worker keeps the last list.
    #[error("the partner's product list could not be read ({0})")]
    Products(&'static str),
}

/// The partner's API, with basic auth, the per-request timeout and the
/// calls-per-second cap applied to every call.
pub struct PartnerClient {
    http: reqwest::Client,
    base_url: String,
    /// The two per-card URLs, parsed once: parsing a URL (host, IDNA) cost
    /// more instructions than building the rest of the request (callgrind,
    /// about 14k a card). `None` when the base URL does not parse; calls
    /// then go through the text form and fail as they always did.
    open_card_url: Option<Url>,
    status_url_prefix: Option<Url>,
    /// The `Authorization` header, encoded once rather than per call.
    authorization: Option<HeaderValue>,
    rate_limit: RateLimit,
}

impl PartnerClient {
    /// Builds the client. `max_idle_connections` should match the worker's
    /// concurrency, so kept-alive connections are reused rather than churned.
    pub fn new(
        settings: &PartnerSettings,
        max_idle_connections: usize,
    ) -> Result<Self, ClientError> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(max_idle_connections)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("card-issuer/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|error| ClientError::CaFile {
                path: shown.clone(),
                why: error.to_string(),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                ClientError::CaFile {
                    path: shown,
                    why: error.to_string(),
                }
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(ClientError::Build)?;
        let base_url = settings.url.clone();
        Ok(Self {
            authorization: authorization(&http, settings),
            open_card_url: Url::parse(&format!("{base_url}/api/v1/open-card")).ok(),
            status_url_prefix: Url::parse(&format!("{base_url}/card/status/"))
                .ok()
                .filter(|url| url.query().is_none() && url.fragment().is_none()),
            http,
            base_url,
            rate_limit: RateLimit::per_second(settings.calls_per_second),
        })
    }

    /// Asks for the product list.
    pub async fn products(&self) -> Result<Vec<Product>, ClientError> {
        #[derive(Deserialize)]
        struct Listed {
            id: serde_json::Value,
            name: String,
        }
        #[derive(Deserialize)]
        struct Body {
            status: String,
            data: Vec<Listed>,
        }

        let request = self.http.get(format!("{}/api/v1/products", self.base_url));
        let (answer, took) = self.send(request).await;
        let result = match &answer {
            Ok((status, ..)) if *status == 401 || *status == 403 => "auth_rejected",
            Ok((status, ..)) if (200..300).contains(status) => "success",
            Ok((status, ..)) if *status >= 500 => "http_5xx",
            Ok(_) => "unreadable",
            Err(cause) => cause.label(),
        };
        metrics::partner_call(Endpoint::Products.label(), result, took);
        let (status, _, body) = answer.map_err(|cause| ClientError::Products(cause.label()))?;
        if status == 401 || status == 403 {
            metrics::partner_auth_failure();
            return Err(ClientError::Products("credentials rejected"));
        }
        let parsed: Body = serde_json::from_slice(&body)
            .map_err(|_| ClientError::Products("the body is not the expected JSON"))?;
        if !parsed.status.trim().eq_ignore_ascii_case("success") {
            return Err(ClientError::Products("the status is not success"));
        }
        Ok(parsed
            .data
            .into_iter()
            .filter_map(|listed| {
                let id = match listed.id {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(text) => text.trim().parse().ok(),
                    _ => None,
                }?;
                Some(Product {
                    id: ProductId(id),
                    name: listed.name,
                })
            })
            .collect())
    }

    /// Asks for a card.
    pub async fn open_card(&self, command: &OpenCardCommand) -> Reply {
        // The document's example sends every value as a string.
        let body = json!({
            "requestId": command.request_id.as_str(),
            "phoneNumber": command.phone.expose(),
            "productId": command.product_id.to_string(),
            "pin": command.pin.expose(),
        });
        let request = match &self.open_card_url {
            Some(url) => self.http.post(url.clone()),
            None => self
                .http
                .post(format!("{}/api/v1/open-card", self.base_url)),
        };
        self.call(Endpoint::OpenCard, request.json(&body)).await
    }

    /// Asks for the outcome of one request.
    pub async fn card_status(&self, request_id: &RequestId) -> Reply {
        let segment = utf8_percent_encode(request_id.as_str(), PATH_SEGMENT);
        let request = match &self.status_url_prefix {
            // The segment is already percent-encoded, so setting it as the
            // path gives the URL that parsing the whole text would.
            Some(prefix) => self.http.get(status_url(prefix, &segment.to_string())),
            None => self
                .http
                .get(format!("{}/card/status/{segment}", self.base_url)),
        };
        self.call(Endpoint::Status, request).await
    }

    async fn call(&self, endpoint: Endpoint, request: reqwest::RequestBuilder) -> Reply {
        let (answer, took) = self.send(request).await;
        let reply = match answer {
            Ok((status, retry_after, body)) => {
                Reply::from_http(status, retry_after, &body, endpoint == Endpoint::Status)
            }
            Err(cause) => Reply::Unavailable {
                cause,
                retry_after: None,
            },
        };
        metrics::partner_call(endpoint.label(), reply.label(), took);
        match &reply {
            Reply::Refused { code, .. } => {
                metrics::partner_error_code(endpoint.label(), code.label())
            }
            Reply::CredentialsRejected { .. } => metrics::partner_auth_failure(),
            _ => {}
        }
        reply
    }

    /// Sends one request under the rate cap; returns the answer and how long
    /// it took, the wait for the cap not included.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (Result<RawAnswer, Unavailable>, Duration) {
        self.rate_limit.wait_turn().await;
        let request = match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        };
        let started = Instant::now();
        let answer = read_answer(request).await;
        (answer, started.elapsed())
    }
}

/// `prefix` (`<base>/card/status/`) with an already percent-encoded request
/// id appended: the URL that parsing the whole text would give, without
/// parsing the host again.
fn status_url(prefix: &Url, segment: &str) -> Url {
    let mut url = prefix.clone();
    url.set_path(&format!("{}{segment}", prefix.path()));
    url
}

/// The basic-auth header for the configured credentials, encoded by reqwest
/// exactly as `RequestBuilder::basic_auth` would on each call.
fn authorization(http: &reqwest::Client, settings: &PartnerSettings) -> Option<HeaderValue> {
    let user = settings.username.as_ref()?;
    let password = settings.password.as_ref().map(|p| p.expose());
    let probe = http
        .get("http://partner.invalid/")
        .basic_auth(user.expose(), password)
        .build()
        .ok()?;
    probe.headers().get(AUTHORIZATION).cloned()
}

/// An HTTP status, the `Retry-After` it came with, and the body.
type RawAnswer = (u16, Option<Duration>, Vec<u8>);

async fn read_answer(request: reqwest::RequestBuilder) -> Result<RawAnswer, Unavailable> {
    let mut response = request.send().await.map_err(transport_cause)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds.min(MAX_RETRY_AFTER_SECONDS)));
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_cause)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(Unavailable::Unreadable);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, retry_after, body))
}

fn transport_cause(error: reqwest::Error) -> Unavailable {
    if error.is_timeout() {
        Unavailable::Timeout
    } else {
        Unavailable::Connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_stays_one_path_segment() {
        let cases = [
            ("a/b", "a%2Fb"),
            ("a?b#c", "a%3Fb%23c"),
            ("../x", "%2E%2E%2Fx"),
            ("with space", "with%20space"),
            ("ж", "%D0%B6"),
            ("plain-id_1~", "plain-id_1~"),
        ];
        for (raw, encoded) in cases {
            assert_eq!(utf8_percent_encode(raw, PATH_SEGMENT).to_string(), encoded);
        }
    }

    #[test]
    fn a_status_url_is_the_one_parsing_its_text_gives() {
        let bases = [
            "http://127.0.0.1:8080",
            "https://partner.example/api-gateway/v2",
            "http://[::1]:9000",
            "https://ПАРТНЁР.example",
        ];
        let ids = ["r-1", "a/b?c#d", "../x", "with space", "ж", "%41"];
        for base in bases {
            let prefix = Url::parse(&format!("{base}/card/status/")).unwrap();
            for id in ids {
                let segment = utf8_percent_encode(id, PATH_SEGMENT).to_string();

                let built = status_url(&prefix, &segment);

                let parsed = Url::parse(&format!("{base}/card/status/{segment}")).unwrap();
                assert_eq!(built, parsed, "{base} {id}");
            }
        }
    }

    #[test]
    fn the_authorization_header_is_what_basic_auth_sends() {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::new();
        for password in [Some("p@ssw0rd"), None] {
            let settings = PartnerSettings {
                url: "http://127.0.0.1:8080".into(),
                username: Some(crate::secret::Secret::new("login".into())),
                password: password.map(|p| crate::secret::Secret::new(p.into())),
                ca_file: None,
                timeout: Duration::from_secs(10),
                calls_per_second: 0,
                products_refresh: Duration::from_secs(300),
                breaker_window: 20,
                breaker_open: Duration::from_secs(15),
            };
            let expected = http
                .get("http://127.0.0.1:8080/")
                .basic_auth("login", password)
                .build()
                .unwrap();

            let header = authorization(&http, &settings).unwrap();

            assert_eq!(Some(&header), expected.headers().get(AUTHORIZATION));
            assert!(header.is_sensitive());
        }
    }
}
