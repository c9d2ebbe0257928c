//! Fault rules: a share of the calls to an endpoint goes wrong in a chosen
//! way, and which calls is decided by hashing, so a rerun repeats it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;

use super::answer::Answer;
use super::hash::{stable_hash, unit_interval};

/// A partner endpoint, or all of them in a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/v1/open-card`.
    OpenCard,
    /// `GET /card/status/{requestId}`.
    Status,
    /// `GET /api/v1/products`.
    Products,
    /// Every partner endpoint (in rules only).
    Any,
}

/// What goes wrong with a faulted call.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The partner's error body with this code (such as 1007 or 1009); nothing
    /// is processed.
    Code(String),
    /// An HTML error page with this HTTP status; nothing is processed.
    Http(u16),
    /// Nothing is processed and a 504 page comes only after this long.
    Timeout(Duration),
    /// The call is processed, but its real answer comes only after this long,
    /// so a client with a shorter timeout never learns the outcome.
    LostReply(Duration),
}

/// One rule: this share of the calls to this endpoint gets this fault.
///
/// Written `endpoint:share:fault` on the command line, such as
/// `open-card:0.1:1007`, `status:0.05:http503`, `any:0.02:timeout=15s` or
/// `open-card:0.01:lost=15s`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct FaultRule {
    /// The endpoint whose calls the rule may fault.
    pub endpoint: Endpoint,
    /// The fraction of those calls it faults, from 0 to 1.
    pub share: f64,
    /// What goes wrong.
    pub fault: Fault,
}

/// Why a fault rule could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseRuleError {
    /// Not three parts separated by colons.
    #[error("expected endpoint:share:fault, such as open-card:0.1:1007, got `{0}`")]
    Shape(String),
    /// An endpoint name the simulator does not serve.
    #[error("unknown endpoint `{0}`: expected open-card, status, products or any")]
    Endpoint(String),
    /// A share that is not a number from 0 to 1.
    #[error("share `{0}` is not a number from 0 to 1")]
    Share(String),
    /// A fault that is not one of the four kinds.
    #[error(
        "unknown fault `{0}`: expected a code (1007), httpNNN, timeout=DURATION or lost=DURATION"
    )]
    Fault(String),
    /// `httpNNN` with a status that is not an HTTP error.
    #[error("`{0}` is not an HTTP error status (400 to 599)")]
    HttpStatus(String),
    /// `timeout=` or `lost=` with a duration humantime cannot read.
    #[error("bad duration in `{fault}`")]
    Duration {
        /// The fault as written.
        fault: String,
        /// Why the duration was refused.
        #[source]
        source: humantime::DurationError,
    },
}

/// What a fault does to one call.
pub(crate) enum Effect {
    /// The call is not processed; this answer goes out instead.
    Replace(Answer),
    /// The call is processed; its answer is held back this long.
    Hold(Duration),
}

impl Endpoint {
    /// The name used in rules and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::OpenCard => "open-card",
            Endpoint::Status => "status",
            Endpoint::Products => "products",
            Endpoint::Any => "any",
        }
    }

    /// Whether a rule for `self` applies to a call to `call`.
    fn covers(self, call: Endpoint) -> bool {
        self == Endpoint::Any || self == call
    }
}

impl Fault {
    /// The key under which injections of this fault are counted: the code,
    /// `httpNNN`, `timeout` or `lost`.
    pub fn kind(&self) -> String {
        match self {
            Fault::Code(code) => code.clone(),
            Fault::Http(status) => format!("http{status}"),
            Fault::Timeout(_) => "timeout".to_owned(),
            Fault::LostReply(_) => "lost".to_owned(),
        }
    }

    /// What this fault does to the call it hits.
    pub(crate) fn effect(&self) -> Effect {
        match self {
            Fault::Code(code) => Effect::Replace(Answer::error(code)),
            Fault::Http(status) => Effect::Replace(Answer::error_page(http_status(*status))),
            Fault::Timeout(after) => {
                Effect::Replace(Answer::error_page(StatusCode::GATEWAY_TIMEOUT).after(*after))
            }
            Fault::LostReply(after) => Effect::Hold(*after),
        }
    }
}

/// Picks the fault for one call, or none.
///
/// One roll per call, from the seed, the endpoint, the request id and the
/// call's ordinal for that request and endpoint, so a rerun faults the same
/// calls however requests interleave. The applicable rules' shares are laid
/// end to end over [0, 1), so each rule faults its own share of the calls as
/// long as the shares add up to at most 1.
pub(crate) fn pick<'a>(
    rules: &'a [FaultRule],
    seed: u64,
    call: Endpoint,
    request_id: &str,
    ordinal: u32,
) -> Option<&'a Fault> {
    if rules.is_empty() {
        return None;
    }
    let roll = unit_interval(stable_hash(&[
        &seed.to_le_bytes(),
        call.as_str().as_bytes(),
        request_id.as_bytes(),
        &ordinal.to_le_bytes(),
    ]));
    let mut reach = 0.0;
    let rule = rules
        .iter()
        .filter(|rule| rule.endpoint.covers(call))
        .find(|rule| {
            reach += rule.share;
            roll < reach
        });
    rule.map(|rule| &rule.fault)
}

/// A status for an error page; a rule built in code with a status outside
/// HTTP's range gets a plain 500.
fn http_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl FromStr for Endpoint {
    type Err = ParseRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "open-card" => Ok(Endpoint::OpenCard),
            "status" => Ok(Endpoint::Status),
            "products" => Ok(Endpoint::Products),
            "any" => Ok(Endpoint::Any),
            _ => Err(ParseRuleError::Endpoint(text.to_owned())),
        }
    }
}

impl FromStr for Fault {
    type Err = ParseRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Fault::Code(text.to_owned()));
        }
        if let Some(status) = text.strip_prefix("http") {
            return parse_http_status(status).map(Fault::Http);
        }
        if let Some(after) = text.strip_prefix("timeout=") {
            return parse_duration(text, after).map(Fault::Timeout);
        }
        if let Some(after) = text.strip_prefix("lost=") {
            return parse_duration(text, after).map(Fault::LostReply);
        }
        Err(ParseRuleError::Fault(text.to_owned()))
    }
}

impl FromStr for FaultRule {
    type Err = ParseRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.splitn(3, ':');
        let (Some(endpoint), Some(share), Some(fault)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseRuleError::Shape(text.to_owned()));
        };
        Ok(FaultRule {
            endpoint: endpoint.trim().parse()?,
            share: parse_share(share.trim())?,
            fault: fault.trim().parse()?,
        })
    }
}

impl TryFrom<String> for FaultRule {
    type Error = ParseRuleError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

fn parse_share(text: &str) -> Result<f64, ParseRuleError> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(ParseRuleError::Share(text.to_owned())),
    }
}

fn parse_http_status(text: &str) -> Result<u16, ParseRuleError> {
    match text.parse::<u16>() {
        Ok(status) if (400..=599).contains(&status) => Ok(status),
        _ => Err(ParseRuleError::HttpStatus(text.to_owned())),
    }
}

fn parse_duration(fault: &str, text: &str) -> Result<Duration, ParseRuleError> {
    humantime::parse_duration(text).map_err(|source| ParseRuleError::Duration {
        fault: fault.to_owned(),
        source,
    })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Code(_) | Fault::Http(_) => f.write_str(&self.kind()),
            Fault::Timeout(after) => write!(f, "timeout={}", humantime::format_duration(*after)),
            Fault::LostReply(after) => write!(f, "lost={}", humantime::format_duration(*after)),
        }
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.endpoint, self.share, self.fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> FaultRule {
        text.parse().unwrap()
    }

    #[test]
    fn rules_parse_from_the_command_line_syntax() {
        let cases = [
            (
                "open-card:0.1:1007",
                Endpoint::OpenCard,
                0.1,
                Fault::Code("1007".into()),
            ),
            (
                "status:0.05:http503",
                Endpoint::Status,
                0.05,
                Fault::Http(503),
            ),
            (
                "any:0.02:timeout=15s",
                Endpoint::Any,
                0.02,
                Fault::Timeout(secs(15)),
            ),
            (
                "open-card:0.01:lost=15s",
                Endpoint::OpenCard,
                0.01,
                Fault::LostReply(secs(15)),
            ),
            (
                "products:1:timeout=250ms",
                Endpoint::Products,
                1.0,
                Fault::Timeout(ms(250)),
            ),
        ];

        for (text, endpoint, share, fault) in cases {
            assert_eq!(
                rule(text),
                FaultRule {
                    endpoint,
                    share,
                    fault
                },
                "{text}"
            );
        }
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let cases = [
            ("open-card:0.1", "expected endpoint:share:fault"),
            ("cards:0.1:1007", "unknown endpoint `cards`"),
            ("status:1.5:1007", "share `1.5` is not a number from 0 to 1"),
            ("status:-0.1:1007", "share `-0.1`"),
            ("status:NaN:1007", "share `NaN`"),
            ("status:half:1007", "share `half`"),
            ("status:0.1:boom", "unknown fault `boom`"),
            ("status:0.1:", "unknown fault ``"),
            ("status:0.1:http200", "`200` is not an HTTP error status"),
            ("status:0.1:httpx", "`x` is not an HTTP error status"),
            ("status:0.1:timeout=soon", "bad duration in `timeout=soon`"),
            ("status:0.1:lost=", "bad duration in `lost=`"),
        ];

        for (text, reason) in cases {
            let error = text.parse::<FaultRule>().unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn rules_print_as_they_parse() {
        for text in [
            "open-card:0.1:1007",
            "status:1:http503",
            "any:0.5:lost=1m 30s",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
    }

    #[test]
    fn share_one_always_faults_and_share_zero_never() {
        let always = [rule("status:1:1009")];
        let never = [rule("status:0:1009")];

        for ordinal in 0..1000 {
            assert!(pick(&always, 7, Endpoint::Status, "r", ordinal).is_some());
            assert!(pick(&never, 7, Endpoint::Status, "r", ordinal).is_none());
        }
    }

    #[test]
    fn rules_fault_only_their_endpoint() {
        let rules = [rule("open-card:1:1007")];

        assert!(pick(&rules, 1, Endpoint::OpenCard, "r", 0).is_some());
        assert!(pick(&rules, 1, Endpoint::Status, "r", 0).is_none());
        assert!(pick(&[rule("any:1:1009")], 1, Endpoint::Products, "", 0).is_some());
    }

    #[test]
    fn decisions_repeat_for_the_same_seed_and_differ_for_another() {
        let rules = [rule("any:0.5:1009")];
        let decide = |seed| -> Vec<bool> {
            (0..64)
                .map(|n| pick(&rules, seed, Endpoint::Status, "r-1", n).is_some())
                .collect()
        };

        assert_eq!(decide(42), decide(42));
        assert_ne!(decide(42), decide(43));
    }

    #[test]
    fn each_rule_faults_about_its_share() {
        let rules = [rule("status:0.2:1007"), rule("any:0.1:http503")];
        let mut counts = [0u32; 3];

        for n in 0..20_000 {
            let request_id = format!("r-{n}");
            match pick(&rules, 9, Endpoint::Status, &request_id, 0) {
                Some(Fault::Code(_)) => counts[0] += 1,
                Some(_) => counts[1] += 1,
                None => counts[2] += 1,
            }
        }

        assert!((3_700..4_300).contains(&counts[0]), "{counts:?}");
        assert!((1_700..2_300).contains(&counts[1]), "{counts:?}");
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
