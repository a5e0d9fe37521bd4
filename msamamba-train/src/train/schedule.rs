//! The optimizer and its schedule: AdamW as the paper (and mamba_ssm) train with, and linear
//! warmup then cosine decay of the learning rate, per optimizer step.

use burn::config::Config;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{AdamWConfig, LearningRate};
use burn::tensor::backend::Backend;

/// AdamW with betas (0.9, 0.95) and PyTorch's epsilon 1e-8 (burn's default 1e-5 damps the
/// updates of parameters with small gradients at the pre-training rate of 3e-5), without weight
/// decay: [`crate::train::weight_decay::SelectiveAdamW`] decays the parameters that are decayed.
pub fn adamw() -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.95)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
}

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
    fn adamw_is_the_papers() {
        let config = serde_json::to_value(adamw()).unwrap();
        assert_eq!(config["beta_1"], 0.9f32 as f64, "{config}");
        assert_eq!(config["beta_2"], 0.95f32 as f64, "{config}");
        assert_eq!(config["epsilon"], 1e-8f32 as f64, "{config}");
    }

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
