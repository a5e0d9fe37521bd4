//! Progress bars for long commands (indicatif) on stderr. indicatif draws nothing when stderr is
//! not a terminal, so logs, pipes and tests see no bar; `-q` hides them in a terminal too. Every
//! bar belongs to one [`MultiProgress`], so that log lines ([`log_writer`]) are printed above
//! the bars instead of through them.

use std::io::{self, Write};
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars on screen.
static BARS: LazyLock<MultiProgress> = LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

/// Hides every bar from now on (`-q`).
pub fn hide() {
    BARS.set_draw_target(ProgressDrawTarget::hidden());
}

/// A bar for `total` items of `what` (`"regions"`, `"steps"`), with rate and time left.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!(
        "{{bar:40}} {{human_pos}}/{{human_len}} {what} ({{per_sec}}, {{eta}} left)"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    BARS.add(ProgressBar::new(total).with_style(style))
}

/// A counter for items of `what` when their number is not known (a streamed VCF or MAF).
pub fn counter(what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!("{{spinner}} {{human_pos}} {what} ({{per_sec}}, {{elapsed}})"))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    BARS.add(ProgressBar::new_spinner().with_style(style))
}

/// Standard error, written with the bars lifted out of the way.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        BARS.suspend(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// A [`LogWriter`], for `tracing_subscriber`'s `with_writer`.
pub fn log_writer() -> LogWriter {
    LogWriter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_bars_and_counters_still_count_what_they_are_given() {
        hide();
        let bar = bar(10, "regions");
        bar.inc(3);
        assert_eq!((bar.position(), bar.length()), (3, Some(10)));
        assert!(bar.is_hidden(), "-q hides the bars");
        let counter = counter("records");
        counter.inc(5);
        assert_eq!(counter.position(), 5);
    }
}
