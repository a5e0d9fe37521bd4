use burn::config::Config;
use rand::Rng;
use rand::seq::index::sample;

use crate::tokens::{A, GAP, IGNORE_TARGET, MASK, T};

/// Masked-language-model corruption of the target row (BERT's 80/10/10 recipe).
#[derive(Config, Debug)]
pub struct MlmMaskConfig {
    /// Fraction of the non-gap positions that carry the loss.
    #[config(default = 0.15)]
    pub mask_prob: f64,
    /// Of those, the fraction replaced by the mask token.
    #[config(default = 0.8)]
    pub mask_token_prob: f64,
    /// Of those, the fraction replaced by a random base (the rest keep their base).
    #[config(default = 0.1)]
    pub random_token_prob: f64,
}

impl MlmMaskConfig {
    /// Corrupts `row` in place and returns the targets: the original token where a position
    /// was chosen, [`IGNORE_TARGET`] elsewhere.
    ///
    /// Exactly round(mask_prob * non-gap positions) positions are chosen, at least one when the
    /// row has any base, so that every window carries a loss. Gap positions are never chosen:
    /// there is nothing to predict there.
    pub fn apply<R: Rng + ?Sized>(&self, row: &mut [u8], rng: &mut R) -> Vec<i64> {
        let mut targets = vec![IGNORE_TARGET; row.len()];
        let candidates: Vec<usize> = (0..row.len()).filter(|&i| row[i] != GAP).collect();
        if candidates.is_empty() {
            return targets;
        }
        let count = ((self.mask_prob * candidates.len() as f64).round() as usize).clamp(1, candidates.len());
        for k in sample(rng, candidates.len(), count) {
            let i = candidates[k];
            targets[i] = i64::from(row[i]);
            let draw: f64 = rng.random();
            if draw < self.mask_token_prob {
                row[i] = MASK;
            } else if draw < self.mask_token_prob + self.random_token_prob {
                row[i] = rng.random_range(A..=T);
            }
        }
        targets
    }
}
