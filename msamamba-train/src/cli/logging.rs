//! Messages on stderr through `tracing`, one line each, `msamamba: warning: ...` as the binary
//! has always written them; `-v` adds debug lines, `-q` keeps only warnings (`-qq`: nothing but
//! the error line at exit, which `main` prints itself). Other crates' events show from warnings
//! up, so a dependency's chatter never drowns ours.

use std::fmt;

use msamamba_train::progress;
use tracing::{Event, Level, Subscriber, level_filters::LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::Targets};

/// `msamamba: LEVEL: message`, nothing else: no time, no target.
struct OneLine;

impl<S, N> FormatEvent<S, N> for OneLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let label = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(writer, "msamamba: {label}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The level of our own messages for `-v` given `verbose` times and `-q` given `quiet` times.
fn level(verbose: u8, quiet: u8) -> LevelFilter {
    match i16::from(verbose) - i16::from(quiet) {
        ..=-2 => LevelFilter::OFF,
        -1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the subscriber; `-q` also hides the progress bars.
pub fn init(verbose: u8, quiet: u8) {
    let ours = level(verbose, quiet);
    if quiet > 0 {
        progress::hide();
    }
    let filter = Targets::new()
        .with_default(LevelFilter::WARN.min(ours))
        // A prefix: the binary and every msamamba_* crate.
        .with_target("msamamba", ours)
        // cubecl's runner thread warns "Task failed" for every task after a device failure: the
        // failure itself is reported once, as the command's error (`-v` shows them).
        .with_target(
            "cubecl_common::device",
            if verbose > 0 { ours } else { LevelFilter::ERROR },
        );
    let layer = tracing_subscriber::fmt::layer()
        .event_format(OneLine)
        .with_writer(progress::log_writer)
        .with_filter(filter);
    // Only fails when one is installed already (never, in the binary).
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_and_quiet_flags_move_the_level_both_ways() {
        assert_eq!(level(0, 0), LevelFilter::INFO);
        assert_eq!(level(1, 0), LevelFilter::DEBUG);
        assert_eq!(level(3, 0), LevelFilter::TRACE);
        assert_eq!(level(0, 1), LevelFilter::WARN);
        assert_eq!(level(0, 2), LevelFilter::OFF);
        assert_eq!(level(1, 1), LevelFilter::INFO);
    }
}
