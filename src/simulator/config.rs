//! How the simulated partner is set up.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rules::FaultRule;
use super::scenario::Scenarios;

/// Everything the simulator needs to start.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// Where to listen; port 0 picks a free port. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The basic-auth username callers must give. Default `login`.
    pub username: String,
    /// The basic-auth password callers must give. Default `p@ssw0rd`.
    pub password: String,
    /// Added before every partner answer (not the control endpoints).
    /// Default none.
    pub latency: Duration,
    /// The product list. Default 1 "HUMO virtual" and 2 "VISA virtual".
    pub products: Vec<Product>,
    /// Status checks of an accepted application answered 1005 (under review)
    /// before the card is issued. Default 0.
    pub review_checks: u32,
    /// Faults injected into a share of the unscripted calls. Default none.
    pub rules: Vec<FaultRule>,
    /// Seeds the fault decisions; the same seed faults the same calls.
    /// Default 1.
    pub seed: u64,
    /// Scripted replies per request id. Default none.
    pub scenarios: Scenarios,
}

/// One product the partner offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The id callers send as `productId`.
    pub id: u32,
    /// The name shown to people, such as `HUMO virtual`.
    pub name: String,
}

impl Product {
    /// A product with this id and name.
    pub fn new(id: u32, name: impl Into<String>) -> Self {
        Product {
            id,
            name: name.into(),
        }
    }

    /// The products the simulator offers unless told otherwise.
    pub fn defaults() -> Vec<Product> {
        vec![
            Product::new(1, "HUMO virtual"),
            Product::new(2, "VISA virtual"),
        ]
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            // The example credentials of the partner's document.
            username: "login".to_owned(),
            password: "p@ssw0rd".to_owned(),
            latency: Duration::ZERO,
            products: Product::defaults(),
            review_checks: 0,
            rules: Vec::new(),
            seed: 1,
            scenarios: Scenarios::new(),
        }
    }
}

// Written by hand so the password never reaches a log line.
impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("listen", &self.listen)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("latency", &self.latency)
            .field("products", &self.products)
            .field("review_checks", &self.review_checks)
            .field("rules", &self.rules)
            .field("seed", &self.seed)
            .field("scenarios", &self.scenarios.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let config = SimulatorConfig {
            password: "s3cret-pw".to_owned(),
            ..Default::default()
        };

        let printed = format!("{config:?}");

        assert!(!printed.contains("s3cret-pw"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }
}
