//! The per-column frequency baseline of the paper: predict the most frequent base among the
//! other rows of the column; and the model's accuracy on exactly the same masked positions.

use burn::data::dataloader::batcher::Batcher;
use msamamba_kernels::KernelBackend;
use msamamba_model::MsaMamba;
use msamamba_model::mlm_mask::MlmMaskConfig;
use msamamba_model::tokens::{A, GAP, T};

use crate::windows::mlm_batch::{MsaBatch, MsaBatcher, MsaBatcherConfig};
use crate::windows::tiling::MsaItem;

/// Accuracy of the model and of the baseline over the same masked target positions.
#[derive(Debug, Clone, Copy)]
pub struct BaselineComparison {
    /// Masked positions scored.
    pub positions: usize,
    /// Model accuracy (argmax over A, C, G, T).
    pub model: f64,
    /// Baseline accuracy.
    pub baseline: f64,
}

/// The baseline's guess for one column: the most frequent base of the other rows, or
/// `fallback` when they are all gaps. Ties go to the first base in ACGT order.
pub fn column_majority(others: impl Iterator<Item = u8>, fallback: u8) -> u8 {
    let mut counts = [0usize; 5];
    others
        .filter(|&t| (A..=T).contains(&t))
        .for_each(|t| counts[t as usize] += 1);
    (A..=T)
        .fold(None, |best: Option<u8>, t| match best {
            Some(b) if counts[b as usize] >= counts[t as usize] => Some(b),
            _ if counts[t as usize] > 0 => Some(t),
            _ => best,
        })
        .unwrap_or(fallback)
}

/// Scores the model and the baseline on every window of `windows`, each position chosen for
/// MLM replaced by the mask token (no random or kept bases: neither side may see the answer).
pub fn compare_with_baseline<B: KernelBackend>(
    model: &MsaMamba<B>,
    windows: &[MsaItem],
    rows: usize,
    batch_size: usize,
    device: &B::Device,
) -> BaselineComparison {
    let batcher = MsaBatcher::new(
        MsaBatcherConfig::new(rows)
            .with_row_keep(1.0)
            .with_random_strand(false)
            .with_mlm(
                MlmMaskConfig::new()
                    .with_mask_token_prob(1.0)
                    .with_random_token_prob(0.0),
            ),
    );
    let fallback = most_frequent_target_base(windows);
    let (mut positions, mut model_hits, mut baseline_hits) = (0usize, 0usize, 0usize);
    for chunk in windows.chunks(batch_size.max(1)) {
        let batch: MsaBatch<B> = batcher.batch(chunk.to_vec(), device);
        let [b, m, l] = batch.tokens.dims();
        let tokens: Vec<i64> = batch.tokens.to_data().convert::<i64>().to_vec().unwrap_or_default();
        let targets: Vec<i64> = batch.targets.to_data().convert::<i64>().to_vec().unwrap_or_default();
        let logits = model
            .forward(batch.tokens, batch.row_keep, false)
            .narrow(2, A as usize, 4); // [B, L, 4]
        let predicted: Vec<i64> = logits
            .argmax(2)
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap_or_default();
        for bi in 0..b {
            for li in 0..l {
                let target = targets[bi * l + li];
                if target < 0 {
                    continue;
                }
                positions += 1;
                model_hits += usize::from(predicted[bi * l + li] + i64::from(A) == target);
                let column = (1..m).map(|r| tokens[(bi * m + r) * l + li] as u8);
                baseline_hits += usize::from(i64::from(column_majority(column, fallback)) == target);
            }
        }
    }
    let rate = |hits: usize| hits as f64 / positions.max(1) as f64;
    BaselineComparison {
        positions,
        model: rate(model_hits),
        baseline: rate(baseline_hits),
    }
}

/// The commonest base of the target rows, the baseline's guess for columns with no other base.
fn most_frequent_target_base(windows: &[MsaItem]) -> u8 {
    let mut counts = [0usize; 5];
    for item in windows {
        item.rows[0]
            .iter()
            .filter(|&&t| t != GAP && t <= T)
            .for_each(|&t| counts[t as usize] += 1);
    }
    (A..=T).max_by_key(|&t| counts[t as usize]).unwrap_or(A)
}
