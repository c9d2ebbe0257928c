//! Ask the partner directly: its products, and one request's status.

use crate::domain::RequestId;
use crate::partner::{PartnerClient, Reply};

/// A reply as an operator reads it, with the card masked.
pub fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Accepted => "accepted".to_owned(),
        Reply::Issued { card, exp } => format!("issued: card {}, exp {}", card.masked(), exp.0),
        Reply::Refused { code, message } => {
            format!("error {code}: {}", message.replace(['\r', '\n'], " "))
        }
        Reply::Unavailable { cause, retry_after } => match retry_after {
            Some(wait) => format!("no usable answer ({}), retry after {wait:?}", cause.label()),
            None => format!("no usable answer ({})", cause.label()),
        },
        Reply::CredentialsRejected { http_status } => {
            format!("credentials rejected (HTTP {http_status})")
        }
    }
}

/// The status of one request, described.
pub async fn status(client: &PartnerClient, request_id: &RequestId) -> String {
    describe(&client.card_status(request_id).await)
}
