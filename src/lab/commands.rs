//! The open-card commands a run publishes. Each has a request id of its own
//! and a customer of its own: the partner allows one pending application per
//! customer, so two commands sharing a customer would turn the second into a
//! legitimate 1000, which is not what a fault run measures.
//!
//! The phone numbers and PINFLs are made up from the command's number. They
//! are still handled as personal data: they go into the command body and
//! nowhere else.

use serde_json::json;

/// The request id of command `number` of run `run_id`.
pub fn request_id(run_id: &str, number: u32) -> String {
    format!("{run_id}-{number:05}")
}

/// The body of command `number` of run `run_id`: a valid command for
/// product 1 or 2, alternately.
pub fn body(run_id: &str, number: u32) -> Vec<u8> {
    let command = json!({
        "requestId": request_id(run_id, number),
        "phoneNumber": format!("+99890{:07}", number % 10_000_000),
        "productId": 1 + number % 2,
        "pin": format!("5{:013}", number),
    });
    command.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OpenCardCommand;

    fn field(number: u32, name: &str) -> String {
        let body: serde_json::Value = serde_json::from_slice(&body("r", number)).unwrap();
        body[name].as_str().unwrap().to_owned()
    }

    #[test]
    fn every_command_has_a_customer_of_its_own() {
        let phones: std::collections::HashSet<String> =
            (0..10_000).map(|n| field(n, "phoneNumber")).collect();
        let pins: std::collections::HashSet<String> =
            (0..10_000).map(|n| field(n, "pin")).collect();

        assert_eq!((phones.len(), pins.len()), (10_000, 10_000));
    }

    #[test]
    fn the_worker_takes_every_command_as_valid() {
        for number in [0, 1, 9_999, 9_999_999] {
            let parsed = OpenCardCommand::parse(&body("fault-run-1", number), 65_536);

            assert!(parsed.is_ok(), "command {number}");
        }
    }

    #[test]
    fn request_ids_sort_in_publishing_order() {
        assert!(request_id("r", 99) < request_id("r", 100));
    }
}
