//! Log output: human-readable text, or JSON lines for Loki and ELK.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event, with span fields.
    Json,
}

/// Installs the global subscriber, writing to standard error so standard
/// output stays free for what commands print. `filter` is in `RUST_LOG`
/// syntax, e.g. `info` or `card_issuer=debug,lapin=warn`.
///
/// Installing twice (tests start several workers in one process) keeps the
/// first subscriber.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    // A second install fails harmlessly; the first subscriber stays.
    drop(installed);
}
