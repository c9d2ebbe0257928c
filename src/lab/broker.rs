//! Restarting the broker application with `rabbitmqctl stop_app` and
//! `start_app`: the node stays up, every client connection is closed, and
//! queues come back from disk, as in a broker upgrade or a crash of the
//! application.
//!
//! This disrupts everyone using that broker. Point it at a node of your own
//! (`scripts/lab-broker start`) unless nothing else runs there, as in CI.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

/// rabbitmqctl failed; the run stops, and the application is started again
/// if it may be stopped.
#[derive(Debug, thiserror::Error)]
pub enum BrokerControlError {
    /// rabbitmqctl could not be run at all.
    #[error("cannot run {program}; is RabbitMQ's CLI installed?")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("`rabbitmqctl {action}` failed ({status}): {output}")]
    Failed {
        /// What was asked.
        action: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines it printed.
        output: String,
    },
    /// Its `status` cannot be read.
    #[error("cannot read `rabbitmqctl status`: {0}")]
    Status(String),
    /// The node it reaches is not the broker the run uses.
    #[error(
        "the node rabbitmqctl reaches ({node}) does not listen for AMQP on port {port}, the \
         port of --amqp-url; pass the matching --rabbitmq-node rather than restart a broker \
         the run does not use"
    )]
    OtherNode {
        /// The node that answered.
        node: String,
        /// The port of the run's broker URL.
        port: u16,
    },
}

/// How to reach one node with rabbitmqctl, and whether its application may
/// be down because of us.
pub struct BrokerControl {
    program: PathBuf,
    node: Option<String>,
    log: PathBuf,
    maybe_stopped: bool,
}

/// The part of `rabbitmqctl status --formatter json` the lab reads.
#[derive(Deserialize)]
struct NodeStatus {
    listeners: Vec<Listener>,
}

#[derive(Deserialize)]
struct Listener {
    node: String,
    protocol: String,
    port: u16,
}

impl BrokerControl {
    /// Controls `node` (rabbitmqctl's default node when `None`) with
    /// `program`, logging its output to `log`.
    pub fn new(program: PathBuf, node: Option<String>, log: PathBuf) -> Self {
        Self {
            program,
            node,
            log,
            maybe_stopped: false,
        }
    }

    /// Checks that the node answers and listens on `amqp_port`, so a wrong
    /// `--rabbitmq-node` fails here rather than restarting someone else's
    /// broker half-way through the run.
    pub async fn check_serves(&self, amqp_port: u16) -> Result<(), BrokerControlError> {
        let output = self.run(&["status", "--formatter", "json"]).await?;
        let status: NodeStatus = serde_json::from_slice(&output.stdout)
            .map_err(|error| BrokerControlError::Status(error.to_string()))?;
        let serves = status
            .listeners
            .iter()
            .any(|listener| listener.protocol.starts_with("amqp") && listener.port == amqp_port);
        if serves {
            return Ok(());
        }
        let node = status.listeners.first().map(|l| l.node.clone());
        Err(BrokerControlError::OtherNode {
            node: node.unwrap_or_else(|| "a node without listeners".into()),
            port: amqp_port,
        })
    }

    /// Stops the application, waits `down`, starts it again.
    pub async fn restart(&mut self, down: Duration) -> Result<(), BrokerControlError> {
        // Marked first: if the run is interrupted while stop_app runs,
        // clean-up must still start the application again.
        self.maybe_stopped = true;
        self.run(&["stop_app"]).await?;
        tokio::time::sleep(down).await;
        self.start().await
    }

    /// Starts the application if this lab may have stopped it.
    pub async fn ensure_started(&mut self) -> Result<(), BrokerControlError> {
        if self.maybe_stopped {
            self.start().await?;
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<(), BrokerControlError> {
        self.run(&["start_app"]).await?;
        self.maybe_stopped = false;
        Ok(())
    }

    async fn run(&self, action: &[&str]) -> Result<Output, BrokerControlError> {
        let mut command = Command::new(&self.program);
        // Out of the terminal's process group, so Ctrl-C cannot cut a
        // start_app short; clean-up finishes the job instead.
        command.process_group(0);
        if let Some(node) = &self.node {
            command.args(["-n", node]);
        }
        let output =
            command
                .args(action)
                .output()
                .await
                .map_err(|source| BrokerControlError::Spawn {
                    program: self.program.clone(),
                    source,
                })?;
        self.record(action, &output);
        if output.status.success() {
            return Ok(output);
        }
        Err(BrokerControlError::Failed {
            action: action.join(" "),
            status: output.status,
            output: last_lines(&output),
        })
    }

    /// Appends what rabbitmqctl said to the run's broker log; the log is
    /// evidence, so a failure to write it is not worth stopping the run.
    fn record(&self, action: &[&str], output: &Output) {
        let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&self.log) else {
            return;
        };
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let _ = writeln!(
            file,
            "{now} rabbitmqctl {} -> {}",
            action.join(" "),
            output.status
        );
        let _ = file.write_all(&output.stdout);
        let _ = file.write_all(&output.stderr);
    }
}

fn last_lines(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}
