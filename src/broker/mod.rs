//! The RabbitMQ side: connections, the topology the worker owns, and
//! publishing that counts only what the broker confirmed.

mod connection;
mod publisher;
mod session;
mod topology;

pub use connection::{BrokerError, connect};
pub use publisher::{PublishError, Publisher};
pub use session::{Consuming, Session};
pub use topology::{COMMAND_ROUTING_KEY, Topology, delay_label};
