//! The issuance policy: where a request stands, what each partner reply
//! leads to, and the events that end a request.

mod outcome;
mod policy;
mod progress;

pub use outcome::{Failure, FailureReason, Outcome};
pub use policy::{Decision, Plan, StatusCheckReason, decide, stage_to_run};
pub use progress::{
    Progress, ProgressError, Stage, earlier_deliveries, header_text, headers, without_own,
};
