//! Integration tests: a real RabbitMQ, the partner simulator over HTTP, and
//! the worker in this process, each test on names of its own.

mod support;

mod broker_loss;
mod delays;
mod events;
mod hostile;
mod operations;
mod partner_answers;
mod partner_guards;
mod poison;
mod replicas;
mod restarts;
mod tls;
mod validation;
