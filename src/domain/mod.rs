//! Validated domain types: once a value is one of these, it is known to be good.

mod card;
mod command;
mod person;
mod product;
mod request_id;

pub use card::{CardNumber, Expiry};
pub use command::{OpenCardCommand, Rejection, RejectionReason, read_ids, request_id_of};
pub use person::{PhoneNumber, Pinfl};
pub use product::{Product, ProductId};
pub use request_id::RequestId;
