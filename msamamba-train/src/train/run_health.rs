//! How a training run stands, shared by the metrics log, which sees each step end, and the run,
//! which decides what to keep: the first step whose loss was not finite, and the first step at
//! which the device failed (out of memory, a failed launch, a lost device).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use burn::tensor::backend::Backend;
use msamamba_kernels::device_failure;

#[derive(Debug, Default)]
struct Health {
    non_finite_at: Option<usize>,
    device_failed: Option<DeviceFailed>,
    last_step: usize,
}

/// A step at which the device failed, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFailed {
    /// The global step (1-based) that did not complete, or the first one that showed it.
    pub step: usize,
    /// What failed, in words.
    pub reason: String,
}

/// Shared between the metrics log and the run.
#[derive(Debug, Clone, Default)]
pub struct RunHealth {
    inner: Arc<Mutex<Health>>,
}

impl RunHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The global step at which the loss became NaN or infinite, if it did.
    pub fn non_finite_at(&self) -> Option<usize> {
        self.lock().non_finite_at
    }

    /// Where and how the device failed, if it did.
    pub fn device_failed(&self) -> Option<DeviceFailed> {
        self.lock().device_failed.clone()
    }

    /// Step `step` has ended with loss `loss`: the first non-finite loss and the first device
    /// failure are kept. Returns why the run must stop, if it must.
    pub fn step_ended(&self, step: usize, loss: Option<f64>) -> Option<&'static str> {
        device_failure::inject_at(step);
        let mut health = self.lock();
        health.last_step = health.last_step.max(step);
        if let Some(reason) = device_failure::failure() {
            health.device_failed.get_or_insert(DeviceFailed { step, reason });
            return Some("the device failed");
        }
        if loss.is_some_and(|l| !l.is_finite()) {
            health.non_finite_at.get_or_insert(step);
            return Some("the training loss is not finite");
        }
        None
    }

    /// Runs `launch` (burn-train's training loop) and then waits for `device`: a device failure
    /// that no step showed, or a panic of the loop (which a failed device can cause when a read
    /// comes back empty), is kept as a failure of the step after the last one that ended.
    /// Returns what `launch` returned when it ran through.
    pub fn watch_launch<B: Backend, T>(&self, device: &B::Device, launch: impl FnOnce() -> T) -> Option<T> {
        device_failure::watch();
        let result = std::panic::catch_unwind(AssertUnwindSafe(launch));
        let failure = match (&result, device_failure::check::<B>(device)) {
            (_, Err(failure)) => Some(failure.reason),
            (Err(panic), Ok(())) => Some(first_line(device_failure::panic_message(panic.as_ref()))),
            (Ok(_), Ok(())) => None,
        };
        let mut health = self.lock();
        if let Some(reason) = failure {
            let step = health.last_step + 1;
            health.device_failed.get_or_insert(DeviceFailed { step, reason });
        }
        match health.device_failed {
            Some(_) => None,
            None => result.ok(),
        }
    }
}

/// The first line of a panic's message.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}
