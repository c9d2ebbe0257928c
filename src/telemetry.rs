//! Log output: human-readable text, or JSON lines for Loki and ELK.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event, with span fields.
    Json,
}

/// Libraries that print whole messages, frames or HTTP exchanges when asked
/// for detail: message bodies hold PINFLs, phone and card numbers, and the
/// connection handshake holds the broker password. They are held at `info`
/// whatever the filter asks for.
const WORDY_LIBRARIES: &[&str] = &[
    "lapin",
    "amq_protocol",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
];

/// Targets silenced outright. lapin logs a returned (unroutable) message
/// whole, body included, at `warn`; and it logs every end of a connection
/// at `error` from `lapin::channels`, the worker's own orderly close
/// included, so a demo that succeeded ended on an error line. The worker
/// logs both facts itself: the return as a failed publish, a lost
/// connection as "broker connection lost" with its cause.
const SILENCED: &[&str] = &["lapin::returned_messages", "lapin::channels"];

/// Installs the global subscriber, writing to standard error so standard
/// output stays free for what commands print. `filter` is in `RUST_LOG`
/// syntax, e.g. `info` or `card_issuer=debug,lapin=warn`; no filter can make
/// the libraries above print message contents.
///
/// Installing twice (tests start several workers in one process) keeps the
/// first subscriber.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let layer = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let layer = layer
        .with_filter(filter)
        .with_filter(filter_fn(is_safe_to_print));
    // A second install fails harmlessly; the first subscriber stays.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Whether an event or span may reach the log at all.
fn is_safe_to_print(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    if SILENCED.iter().any(|silenced| target.starts_with(silenced)) {
        return false;
    }
    let from_wordy_library = WORDY_LIBRARIES.iter().any(|library| {
        target == *library
            || target
                .strip_prefix(library)
                .is_some_and(|rest| rest.starts_with("::"))
    });
    !from_wordy_library || *metadata.level() <= Level::INFO
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing::callsite::Identifier;
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;

    use super::*;

    struct Callsite;
    impl tracing::callsite::Callsite for Callsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unimplemented!()
        }
    }
    static CALLSITE: Callsite = Callsite;

    fn metadata(target: &'static str, level: Level) -> Metadata<'static> {
        let fields = FieldSet::new(&[], Identifier(&CALLSITE));
        Metadata::new(
            "event",
            target,
            level,
            None,
            None,
            None,
            fields,
            Kind::EVENT,
        )
    }

    #[test]
    fn lapin_s_report_of_every_closed_connection_is_left_to_the_worker() {
        assert!(!is_safe_to_print(&metadata(
            "lapin::channels",
            Level::ERROR
        )));
        assert!(is_safe_to_print(&metadata(
            "card_issuer::broker::session",
            Level::WARN
        )));
    }

    #[test]
    fn libraries_that_print_message_contents_are_held_at_info() {
        let cases = [
            ("lapin::channels", Level::TRACE, false),
            ("lapin::connection", Level::WARN, true),
            ("lapin::returned_messages", Level::WARN, false),
            ("amq_protocol::frame", Level::DEBUG, false),
            ("hyper_util::client", Level::DEBUG, false),
            ("lapinous", Level::DEBUG, true),
            ("card_issuer::worker", Level::TRACE, true),
        ];
        for (target, level, shown) in cases {
            assert_eq!(
                is_safe_to_print(&metadata(target, level)),
                shown,
                "{target} {level}"
            );
        }
    }
}
