//! The demo's commands: one for each kind of outcome, with the partner's
//! answers scripted to produce it.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::simulator::{Reply, ReplyContent, Scenario};

/// What a demo command should come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `card.issued`; `copies` events sharing one `message_id`.
    Issued {
        /// Events expected (a command published twice gets two).
        copies: usize,
    },
    /// `card.failed` with this reason and code.
    Failed {
        /// The event's `reason`.
        reason: &'static str,
        /// The event's `code`.
        code: Option<&'static str>,
        /// The event's `retryable`.
        retryable: bool,
        /// The dead-letter reason, when the command is also parked.
        parked: Option<&'static str>,
    },
    /// No event (no request id to answer); parked with this reason.
    ParkedOnly {
        /// The dead-letter reason.
        reason: &'static str,
    },
}

/// One demo command.
pub struct Case {
    /// What it shows.
    pub title: &'static str,
    /// The last part of its request id.
    pub slug: &'static str,
    /// The body to publish; `None` means a well-formed command.
    pub raw_body: Option<&'static str>,
    /// Overrides of the command's fields.
    pub fields: serde_json::Value,
    /// How many times it is published.
    pub copies: usize,
    /// The partner's scripted answers; `None` lets the simulated partner
    /// behave as a partner does (accept, then issue).
    pub script: Option<Scenario>,
    /// The outcome it should reach.
    pub expect: Expect,
}

fn script(open_card: Vec<Reply>, status: Vec<Reply>) -> Option<Scenario> {
    Some(Scenario { open_card, status })
}

fn codes(codes: &[&str]) -> Vec<Reply> {
    codes.iter().map(|code| Reply::code(*code)).collect()
}

const fn failed(reason: &'static str, code: Option<&'static str>, retryable: bool) -> Expect {
    Expect::Failed {
        reason,
        code,
        retryable,
        parked: None,
    }
}

/// Every demo case. The partner timeout in the demo is one second and its
/// deadline a few seconds; the slow and never-ending cases rely on both.
pub fn all() -> Vec<Case> {
    let none = json!({});
    let issued = Expect::Issued { copies: 1 };
    vec![
        Case {
            title: "issued at once",
            slug: "plain",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: None,
            expect: issued.clone(),
        },
        Case {
            title: "issued after three 'under review' (1005) answers",
            slug: "review",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(
                vec![],
                [codes(&["1005", "1005", "1005"]), vec![Reply::success()]].concat(),
            ),
            expect: issued.clone(),
        },
        Case {
            title: "issued after 'not found' (1003) right after submission",
            slug: "not-yet",
            raw_body: None,
            fields: json!({"productId": 2}),
            copies: 1,
            script: script(vec![], vec![Reply::code("1003"), Reply::success()]),
            expect: issued.clone(),
        },
        Case {
            title: "issued after the HUMO service was down (1007, 1007)",
            slug: "humo-down",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(
                [codes(&["1007", "1007"]), vec![Reply::success()]].concat(),
                vec![],
            ),
            expect: issued.clone(),
        },
        Case {
            title: "issued after an HTML 503 from a proxy",
            slug: "proxy-503",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(
                vec![
                    Reply::new(ReplyContent::Raw(
                        "<html><body>503 Service Unavailable</body></html>".into(),
                    ))
                    .with_http(StatusCode::SERVICE_UNAVAILABLE),
                    Reply::success(),
                ],
                vec![],
            ),
            expect: issued.clone(),
        },
        Case {
            title: "issued after a status check timed out",
            slug: "slow-status",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(
                vec![],
                vec![
                    Reply::success().after(Duration::from_millis(1500)),
                    Reply::success(),
                ],
            ),
            expect: issued.clone(),
        },
        Case {
            title: "the same command published twice: one card, one event id",
            slug: "twice",
            raw_body: None,
            fields: none.clone(),
            copies: 2,
            script: None,
            expect: Expect::Issued { copies: 2 },
        },
        Case {
            title: "rejected: stateless person (1006)",
            slug: "stateless",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(codes(&["1006"]), vec![]),
            expect: failed("rejected", Some("1006"), false),
        },
        Case {
            title: "rejected: card not supported (1008) on a status check",
            slug: "not-supported",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(vec![], codes(&["1008"])),
            expect: failed("rejected", Some("1008"), false),
        },
        Case {
            title: "rejected: another application of this customer is pending (1000)",
            slug: "pending",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(codes(&["1000"]), codes(&["1003"])),
            expect: failed("rejected", Some("1000"), true),
        },
        Case {
            title: "rejected: a code the partner's document does not list",
            slug: "unknown-code",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(codes(&["4711"]), vec![]),
            expect: failed("rejected", Some("4711"), false),
        },
        Case {
            title: "deadline exceeded: under review for ever",
            slug: "never",
            raw_body: None,
            fields: none.clone(),
            copies: 1,
            script: script(vec![], codes(&["1005"])),
            expect: failed("deadline_exceeded", Some("1005"), true),
        },
        Case {
            title: "invalid: phone is not +998 and nine digits",
            slug: "bad-phone",
            raw_body: None,
            fields: json!({"phoneNumber": "+99890123"}),
            copies: 1,
            script: None,
            expect: Expect::Failed {
                reason: "invalid_command",
                code: None,
                retryable: false,
                parked: Some("invalid_phone"),
            },
        },
        Case {
            title: "invalid: product 99 is not offered",
            slug: "no-product",
            raw_body: None,
            fields: json!({"productId": 99}),
            copies: 1,
            script: None,
            expect: Expect::Failed {
                reason: "unknown_product",
                code: None,
                retryable: false,
                parked: Some("unknown_product"),
            },
        },
        Case {
            title: "invalid: the body is not JSON",
            slug: "not-json",
            raw_body: Some("requestId={run}-not-json&phone=not-json"),
            fields: none,
            copies: 1,
            script: None,
            expect: Expect::ParkedOnly { reason: "not_json" },
        },
    ]
}
