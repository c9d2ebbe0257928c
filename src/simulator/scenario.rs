//! Scripted answers per request id, for tests that need the partner to say
//! something exact.

use std::collections::HashMap;

use serde::Deserialize;

use super::reply::Reply;
use super::rules::Endpoint;

/// The replies for one request id, per endpoint.
///
/// The n-th call to an endpoint gets the n-th reply, and the last one
/// repeats; an empty list leaves that endpoint to the stateful partner.
/// In JSON: `{"open_card": [reply, ...], "status": [reply, ...]}`
/// (`open-card` and `openCard` are accepted too).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Replies to `POST /api/v1/open-card`.
    #[serde(default, alias = "open-card", alias = "openCard")]
    pub open_card: Vec<Reply>,
    /// Replies to `GET /card/status/{requestId}`.
    #[serde(default)]
    pub status: Vec<Reply>,
}

/// Scenarios by request id; in JSON `{"requestId": scenario, ...}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Scenarios(HashMap<String, Scenario>);

impl Scenario {
    /// The reply to the call with this ordinal (0 for the first), if scripted.
    pub(crate) fn reply(&self, call: Endpoint, ordinal: u32) -> Option<&Reply> {
        let replies = match call {
            Endpoint::OpenCard => &self.open_card,
            Endpoint::Status => &self.status,
            Endpoint::Products | Endpoint::Any => return None,
        };
        let index = usize::try_from(ordinal).unwrap_or(usize::MAX);
        replies.get(index).or(replies.last())
    }
}

impl Scenarios {
    /// No scenarios: every request id meets the stateful partner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts one request id, replacing its earlier scenario.
    pub fn insert(&mut self, request_id: impl Into<String>, scenario: Scenario) {
        self.0.insert(request_id.into(), scenario);
    }

    /// Adds every scenario of `other`, replacing those for the same ids.
    pub fn merge(&mut self, other: Scenarios) {
        self.0.extend(other.0);
    }

    /// The scripted reply to a call, if its request id and endpoint are
    /// scripted.
    pub(crate) fn reply(&self, request_id: &str, call: Endpoint, ordinal: u32) -> Option<&Reply> {
        self.0.get(request_id)?.reply(call, ordinal)
    }

    /// How many request ids are scripted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no request id is scripted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Scenario)> for Scenarios {
    fn from_iter<I: IntoIterator<Item = (String, Scenario)>>(iter: I) -> Self {
        Scenarios(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_reply_repeats_and_an_empty_list_is_unscripted() {
        let json = r#"{"r-1": {"open-card": [{"code": "1007"}, {"ok": true}]}}"#;
        let scenarios: Scenarios = serde_json::from_str(json).unwrap();

        let nth = |n| {
            scenarios
                .reply("r-1", Endpoint::OpenCard, n)
                .map(Reply::is_success)
        };

        assert_eq!(
            [nth(0), nth(1), nth(5)],
            [Some(false), Some(true), Some(true)]
        );
        assert!(scenarios.reply("r-1", Endpoint::Status, 0).is_none());
        assert!(scenarios.reply("r-2", Endpoint::OpenCard, 0).is_none());
    }

    #[test]
    fn a_bad_reply_in_a_table_is_refused_with_the_reason() {
        let json = r#"{"r-1": {"status": [{"ok": true, "code": 1}]}}"#;

        let error = serde_json::from_str::<Scenarios>(json)
            .unwrap_err()
            .to_string();

        assert!(error.contains("only one of"), "{error}");
    }
}
