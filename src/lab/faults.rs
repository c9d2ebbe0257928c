//! The mix of partner faults a run injects, as the simulator's rules.
//!
//! Transient faults only: each one must end in a card once the worker
//! retries or checks the status, so any request that ends otherwise, or not
//! at all, is the worker's doing. What each does to the worker:
//!
//! | fault | endpoints | the partner processed the call? | the worker should |
//! |---|---|---|---|
//! | HTTP 503 page | all | no | retry after the retry delay |
//! | timeout (504 after the hold) | all | no | give up at its own timeout, retry |
//! | 1007 | open-card | no | retry after the retry delay |
//! | 1009 | all | no | retry after the retry delay |
//! | lost reply (answer after the hold) | open-card | yes | give up at its timeout, retry, get 1002, check the status |

use std::time::Duration;

use clap::Args;

use crate::simulator::{Endpoint, Fault, FaultRule};

/// The share of partner calls that go wrong, by kind.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Partner faults")]
pub struct FaultMix {
    /// Share of all partner calls answered with an HTTP 503 error page.
    #[arg(long, default_value_t = 0.05, value_name = "SHARE")]
    pub http_503_share: f64,

    /// Share of all partner calls that answer only after --fault-hold (a 504
    /// page), unprocessed; the worker's partner timeout must be shorter.
    #[arg(long, default_value_t = 0.02, value_name = "SHARE")]
    pub timeout_share: f64,

    /// Share of open-card calls answered 1007 (service temporarily down).
    #[arg(long, default_value_t = 0.05, value_name = "SHARE")]
    pub code_1007_share: f64,

    /// Share of all partner calls answered 1009 (service unavailable).
    #[arg(long, default_value_t = 0.03, value_name = "SHARE")]
    pub code_1009_share: f64,

    /// Share of open-card calls the partner processes but answers only
    /// after --fault-hold, so a worker with a shorter timeout never learns
    /// that the application went through.
    #[arg(long, default_value_t = 0.02, value_name = "SHARE")]
    pub lost_reply_share: f64,

    /// How long a timed-out or lost reply is held back.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub fault_hold: Duration,
}

/// A fault mix that cannot be injected as asked.
#[derive(Debug, thiserror::Error)]
pub enum FaultMixError {
    /// A share outside 0..=1.
    #[error("--{flag} must be a share from 0 to 1, got {share}")]
    Share {
        /// The flag.
        flag: &'static str,
        /// What was given.
        share: f64,
    },
    /// Shares for one endpoint add up to more than every call.
    #[error("the fault shares for {endpoint} calls add up to {total}, more than 1")]
    Total {
        /// The endpoint.
        endpoint: &'static str,
        /// Their sum.
        total: f64,
    },
}

impl FaultMix {
    /// The simulator's rules for this mix, after checking the shares.
    pub fn rules(&self) -> Result<Vec<FaultRule>, FaultMixError> {
        let rules = self.unchecked_rules();
        for rule in &rules {
            if !(0.0..=1.0).contains(&rule.share) {
                return Err(FaultMixError::Share {
                    flag: flag_of(&rule.fault),
                    share: rule.share,
                });
            }
        }
        for endpoint in [Endpoint::OpenCard, Endpoint::Status] {
            let total: f64 = rules
                .iter()
                .filter(|rule| rule.endpoint == endpoint || rule.endpoint == Endpoint::Any)
                .map(|rule| rule.share)
                .sum();
            if total > 1.0 {
                return Err(FaultMixError::Total {
                    endpoint: endpoint.as_str(),
                    total,
                });
            }
        }
        Ok(rules)
    }

    fn unchecked_rules(&self) -> Vec<FaultRule> {
        let rule = |endpoint, share, fault| FaultRule {
            endpoint,
            share,
            fault,
        };
        vec![
            rule(Endpoint::Any, self.http_503_share, Fault::Http(503)),
            rule(
                Endpoint::Any,
                self.timeout_share,
                Fault::Timeout(self.fault_hold),
            ),
            rule(
                Endpoint::OpenCard,
                self.code_1007_share,
                Fault::Code("1007".into()),
            ),
            rule(
                Endpoint::Any,
                self.code_1009_share,
                Fault::Code("1009".into()),
            ),
            rule(
                Endpoint::OpenCard,
                self.lost_reply_share,
                Fault::LostReply(self.fault_hold),
            ),
        ]
    }
}

fn flag_of(fault: &Fault) -> &'static str {
    match fault {
        Fault::Http(_) => "http-503-share",
        Fault::Timeout(_) => "timeout-share",
        Fault::Code(code) if code == "1007" => "code-1007-share",
        Fault::Code(_) => "code-1009-share",
        Fault::LostReply(_) => "lost-reply-share",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix() -> FaultMix {
        FaultMix {
            http_503_share: 0.05,
            timeout_share: 0.02,
            code_1007_share: 0.05,
            code_1009_share: 0.03,
            lost_reply_share: 0.02,
            fault_hold: Duration::from_secs(3),
        }
    }

    #[test]
    fn the_default_mix_becomes_the_simulators_rules() {
        let rules: Vec<String> = mix()
            .rules()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();

        assert_eq!(
            rules,
            [
                "any:0.05:http503",
                "any:0.02:timeout=3s",
                "open-card:0.05:1007",
                "any:0.03:1009",
                "open-card:0.02:lost=3s",
            ]
        );
    }

    #[test]
    fn a_mix_beyond_every_call_is_refused() {
        let too_much = FaultMix {
            code_1007_share: 0.9,
            ..mix()
        };
        let negative = FaultMix {
            timeout_share: -0.1,
            ..mix()
        };

        assert!(matches!(too_much.rules(), Err(FaultMixError::Total { .. })));
        assert!(
            negative
                .rules()
                .unwrap_err()
                .to_string()
                .contains("--timeout-share")
        );
    }
}
