//! What operators do by hand: submit one command and wait for its answer,
//! ask the partner directly, and look after the dead-letter queue.

pub mod dead_letters;
pub mod partner_query;
pub mod submit;
