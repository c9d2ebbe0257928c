//! Integration tests: a real RabbitMQ, the partner simulator over HTTP, and
//! the worker in this process, each test on names of its own.

mod support;

mod delays;
mod events;
mod partner_answers;
mod restarts;
mod validation;
