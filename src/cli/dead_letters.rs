//! `card-issuer dead-letters`: see what is parked and move it back.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::{CliError, Loaded};
use crate::ops::dead_letters::{self, Selection};
use crate::settings::{BrokerArgs, BrokerSettings, TopologyArgs};

/// Look after the dead-letter queue: list parked messages grouped by reason,
/// or move chosen ones back so that each resumes at the stage it had
/// reached (a parked status check never causes a second open-card).
#[derive(Args)]
pub struct DeadLetterArgs {
    #[command(subcommand)]
    action: Action,

    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    topology: TopologyArgs,
}

#[derive(Subcommand)]
enum Action {
    /// Count parked messages by reason and list them, without removing any.
    List {
        /// Read at most this many.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
    /// Move parked messages back to the queue of their stage.
    Requeue {
        /// Only messages parked for this reason (repeatable).
        #[arg(long = "reason")]
        reasons: Vec<String>,
        /// Only the message of this request (repeatable).
        #[arg(long = "request-id")]
        request_ids: Vec<String>,
        /// Move every parked message back; needed when no filter is given.
        #[arg(long)]
        all: bool,
        /// Give each moved message a new deadline this far from now.
        #[arg(long, value_parser = humantime::parse_duration)]
        new_deadline: Option<Duration>,
        /// Examine at most this many.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
}

/// Lists or requeues, printing what it did.
pub async fn run(args: &DeadLetterArgs, loaded: Loaded<'_>) -> Result<(), CliError> {
    let broker = BrokerSettings::load(&loaded.layers()?)?;
    match &args.action {
        Action::List { limit } => {
            let parked = dead_letters::list(&broker, *limit).await?;
            for (reason, count) in dead_letters::by_reason(&parked) {
                println!("{count:>6}  {reason}");
            }
            println!();
            for message in &parked {
                println!(
                    "{}\t{}\t{}\t{}",
                    message.reason,
                    message.stage.as_str(),
                    // Debug-quoted: an id may hold line breaks or escapes.
                    message
                        .request_id
                        .as_ref()
                        .map_or("-".to_owned(), |id| format!("{id:?}")),
                    message.detail
                );
            }
        }
        Action::Requeue {
            reasons,
            request_ids,
            all,
            new_deadline,
            limit,
        } => {
            if reasons.is_empty() && request_ids.is_empty() && !all {
                return Err(CliError::Input {
                    what: "the selection".into(),
                    why: "name --reason, --request-id, or --all to move every parked message"
                        .into(),
                });
            }
            let selection = Selection {
                reasons: reasons.clone(),
                request_ids: request_ids.clone(),
                new_deadline: *new_deadline,
            };
            for reason in reasons
                .iter()
                .filter(|reason| !dead_letters::is_known_reason(reason))
            {
                eprintln!("note: the worker never parks for `{reason}`; check the spelling");
            }
            let moved = dead_letters::requeue(&broker, &selection, *limit).await?;
            for message in &moved {
                let id = message.request_id.as_deref().unwrap_or("-");
                println!(
                    "moved back to {}: {id} (was {})",
                    message.stage.as_str(),
                    message.reason
                );
            }
            println!("{} message(s) moved back", moved.len());
        }
    }
    Ok(())
}
