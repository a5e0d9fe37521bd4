//! The learning-rate schedule: linear warmup then cosine decay, per optimizer step (the optimizer,
//! AdamW, is [`crate::train::adamw`]).

use burn::config::Config;
use burn::optim::LearningRate;
use burn::optim::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;

/// Warmup over the first `warmup_fraction` of the steps from 0 to `lr`, then cosine to 0.
#[derive(Config, Debug)]
pub struct WarmupCosineConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Optimizer steps in the whole run.
    pub total_steps: usize,
    /// Fraction of the steps spent warming up.
    #[config(default = 0.1)]
    pub warmup_fraction: f64,
    /// Micro-batches per optimizer step: burn-train steps the scheduler once per micro-batch.
    #[config(default = 1)]
    pub accumulate: usize,
}

/// See [`WarmupCosineConfig`]; its record is the number of steps taken.
#[derive(Debug, Clone)]
pub struct WarmupCosine {
    config: WarmupCosineConfig,
    step: usize,
}

impl WarmupCosineConfig {
    /// The scheduler, at step 0.
    pub fn init(&self) -> WarmupCosine {
        WarmupCosine {
            config: self.clone(),
            step: 0,
        }
    }

    /// Learning rate of optimizer step `step` (1-based): `lr * step / warmup` during warmup,
    /// then `lr * (1 + cos(pi * progress)) / 2` with progress from 0 to 1 over the rest.
    pub fn lr_at(&self, step: usize) -> f64 {
        let warmup = ((self.warmup_fraction * self.total_steps as f64).round() as usize).max(1);
        if step <= warmup {
            return self.lr * step as f64 / warmup as f64;
        }
        let decay = self.total_steps.saturating_sub(warmup).max(1);
        let progress = ((step - warmup) as f64 / decay as f64).min(1.0);
        self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

impl LrScheduler for WarmupCosine {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        self.step += 1;
        // The rate set at the last micro-batch of a group is the one its optimizer step uses.
        let accumulate = self.config.accumulate.max(1);
        self.config.lr_at((self.step - 1) / accumulate + 1)
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.step = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_zero() {
        let schedule = WarmupCosineConfig::new(3e-4, 100);
        let close = |step: usize, want: f64| {
            let got = schedule.lr_at(step);
            assert!((got - want).abs() < 1e-12, "step {step}: {got} against {want}");
        };
        close(5, 1.5e-4); // halfway up the 10 warmup steps
        close(10, 3e-4);
        close(55, 1.5e-4); // halfway down the cosine
        close(100, 0.0);
    }
}
