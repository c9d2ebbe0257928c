//! card-issuer: issues virtual bank cards from RabbitMQ commands.

pub mod simulator;
