//! The bank partner's HTTP API: the client, what its answers mean, and the
//! guards that keep us from overwhelming it.

mod breaker;
mod catalogue;
mod client;
mod code;
mod rate_limit;
mod reply;

pub use breaker::{Admission, Breaker, BreakerState};
pub use catalogue::Catalogue;
pub use client::{ClientError, Endpoint, PartnerClient};
pub use code::PartnerCode;
pub use rate_limit::RateLimit;
pub use reply::{Reply, Unavailable};
