//! Device failures as errors.
//!
//! cubecl runs each device's work on a runner thread of its own and catches any panic there: an
//! allocation the memory pool cannot make, a kernel that fails to compile or launch, a lost
//! device. The thread that queued the work carries on with tensors that were never computed, so
//! without a check a training run saves a model of garbage and exits 0. [`watch`] installs a
//! panic hook that records the first panic of a runner thread and keeps its message off the
//! terminal (it is reported once, as an error); [`failure`] returns it without waiting for the
//! device, and [`check`] waits for the device and returns it, or an error the runtime collected
//! while executing, as a [`DeviceFailure`].
//!
//! Hand-written because burn 0.21 reports neither through its API: `Backend::sync` sees the errors
//! a stream recorded, not a panic on the runner thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use burn::tensor::backend::Backend;

/// The first failure recorded in this process.
static FIRST: Mutex<Option<String>> = Mutex::new(None);
static INSTALL: Once = Once::new();

/// cubecl names its runner threads `DS<stage>-<device type>-<device index>`.
const RUNNER_PREFIX: &str = "DS";

/// What failed on a device, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the device {device} failed: {reason}")]
pub struct DeviceFailure {
    /// The device, as burn prints it.
    pub device: String,
    /// The first line of what went wrong, out-of-memory errors in bytes and GiB.
    pub reason: String,
}

impl DeviceFailure {
    /// Whether the device ran out of memory, which a smaller problem avoids.
    pub fn out_of_memory(&self) -> bool {
        self.reason.starts_with("out of memory")
    }
}

/// Starts recording runner-thread panics (once per process; later calls do nothing). Panics of
/// other threads go to the hook that was installed before.
pub fn watch() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let runner = std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with(RUNNER_PREFIX));
            if runner {
                record(panic_message(info.payload()));
            } else {
                previous(info);
            }
        }));
    });
}

/// The message a panic carries (a `String` or a `&str`), or a stand-in without one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

/// Keeps `text` as the process's failure unless one is recorded already: the first failure is
/// the cause, the rest follow from it.
fn record(text: &str) {
    let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
    first.get_or_insert_with(|| reason(text));
}

/// The failure recorded so far, if any, without waiting for the device.
pub fn failure() -> Option<String> {
    FIRST.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Waits for the work queued on `device`; fails with the first failure recorded, or with the
/// error the runtime reports for the queued work.
pub fn check<B: Backend>(device: &B::Device) -> Result<(), DeviceFailure> {
    let synced = B::sync(device);
    failed_on::<B>(
        device,
        failure().or_else(|| synced.err().map(|err| reason(&err.to_string()))),
    )
}

/// `reason`, if any, as a failure of `device`.
fn failed_on<B: Backend>(device: &B::Device, reason: Option<String>) -> Result<(), DeviceFailure> {
    match reason {
        Some(reason) => Err(DeviceFailure {
            device: format!("{device:?}"),
            reason,
        }),
        None => Ok(()),
    }
}

/// After reading a result back from `device` (which waited for it): fails with the failure
/// recorded so far, as the result was not computed. Counts the reads for [`inject_at`].
pub fn after_read<B: Backend>(device: &B::Device) -> Result<(), DeviceFailure> {
    static READS: AtomicUsize = AtomicUsize::new(0);
    inject_at(READS.fetch_add(1, Ordering::Relaxed) + 1);
    failed_on::<B>(device, failure())
}

/// Set, to N, for tests that need a device to fail at the N-th training step or result read:
/// the CPU backend cannot run out of device memory, and a test machine has no GPU to exhaust.
pub const INJECT_AT: &str = "MSAMAMBA_INJECT_DEVICE_FAILURE_AT";

/// Fails the device at `step` (a training step, or a read) if [`INJECT_AT`] says so.
pub fn inject_at(step: usize) {
    // Read once: this runs at every step and every read.
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(INJECT_AT).ok().and_then(|at| at.trim().parse().ok()));
    if *at == Some(step) {
        watch();
        inject(&format!("failure injected at {step} ({INJECT_AT})"));
    }
}

/// Fails as a device does, on a runner thread, with `why`: the hook records it.
fn inject(why: &str) {
    let why = why.to_string();
    let runner = std::thread::Builder::new()
        .name(format!("{RUNNER_PREFIX}-injected"))
        .spawn(move || panic!("{why}"));
    if let Ok(handle) = runner {
        // The panic is the point: it is recorded by the hook.
        let _ = handle.join();
    }
}

/// The first line of a panic or error message, without the `unwrap` wrapping, and an allocation
/// failure as "out of memory" with its size.
fn reason(text: &str) -> String {
    const ALLOCATION: &str = "can't allocate buffer of size: ";
    if let Some(at) = text.find(ALLOCATION) {
        let digits: String = text[at + ALLOCATION.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(bytes) = digits.parse::<u64>() {
            let gib = bytes as f64 / f64::from(1u32 << 30);
            return format!("out of memory: could not allocate {bytes} bytes ({gib:.2} GiB)");
        }
    }
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("unknown error");
    let line = line
        .strip_prefix("called `Result::unwrap()` on an `Err` value: ")
        .unwrap_or(line);
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_failure_reads_as_out_of_memory_with_its_size() {
        let text =
            "called `Result::unwrap()` on an `Err` value: can't allocate buffer of size: 1509949440\n   0: backtrace";
        assert_eq!(
            reason(text),
            "out of memory: could not allocate 1509949440 bytes (1.41 GiB)"
        );
    }

    #[test]
    fn other_failures_keep_their_first_line_without_the_unwrap_wrapping() {
        let text = "called `Result::unwrap()` on an `Err` value: launch failed\nBacktrace:\n...";
        assert_eq!(reason(text), "launch failed");
    }
}
