//! Items -> MLM batches: random strand, row padding, target-row masking, row-sparse sampling.

use burn::config::Config;
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use msamamba_model::mlm_mask::MlmMaskConfig;
use msamamba_model::tokens::reverse_complement;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::windows::row_order::RowOrder;
use crate::windows::tiling::MsaItem;

/// A batch of MSAs for masked-language-model training.
#[derive(Debug, Clone)]
pub struct MsaBatch<B: Backend> {
    /// Tokens, target row corrupted for MLM: [B, M, L] Int.
    pub tokens: Tensor<B, 3, Int>,
    /// Rows that take part (target always, others sampled, padding never): [B, M] Bool.
    pub row_keep: Tensor<B, 2, Bool>,
    /// Original target-row tokens at the masked positions, -100 elsewhere: [B, L] Int.
    pub targets: Tensor<B, 2, Int>,
    /// Whether rows were sampled: only then is a training step worth scanning the kept rows
    /// alone (gathering every row of a dense batch costs a copy and a host sync for nothing).
    pub row_sparse: bool,
}

/// How items become batches.
#[derive(Config, Debug)]
pub struct MsaBatcherConfig {
    /// Rows M of every MSA in a batch (target included): missing rows are padding, extra rows
    /// are cut.
    pub rows: usize,
    /// Probability of keeping each non-target row (row-sparse training); 1 keeps all.
    #[config(default = 0.5)]
    pub row_keep: f64,
    /// Read each window on a random strand (reverse complement of every row).
    #[config(default = true)]
    pub random_strand: bool,
    /// Target-row corruption.
    #[config(default = "MlmMaskConfig::new()")]
    pub mlm: MlmMaskConfig,
}

/// Builds [`MsaBatch`]es; everything random comes from each item's seed.
#[derive(Debug, Clone)]
pub struct MsaBatcher {
    config: MsaBatcherConfig,
    /// The first `config.rows` rows of each item, gap rows after its last.
    order: RowOrder,
}

impl MsaBatcher {
    /// A batcher for `config`.
    pub fn new(config: MsaBatcherConfig) -> Self {
        let order = RowOrder::first(config.rows);
        Self { config, order }
    }
}

/// One item, ready to stack: tokens [M * L], keep [M], targets [L].
struct Prepared {
    tokens: Vec<i64>,
    keep: Vec<bool>,
    targets: Vec<i64>,
}

impl MsaBatcher {
    fn prepare(&self, item: MsaItem, len: usize) -> Prepared {
        let mut rng = StdRng::seed_from_u64(item.seed);
        let filled = self.order.filled(item.rows.len());
        let mut rows = self.order.arrange(&item.rows);
        if self.config.random_strand && rng.random_bool(0.5) {
            rows.iter_mut().for_each(|r| reverse_complement(r));
        }
        let targets = match rows.first_mut() {
            Some(target) => self.config.mlm.apply(target, &mut rng),
            None => vec![msamamba_model::tokens::IGNORE_TARGET; len],
        };
        let keep = filled
            .iter()
            .enumerate()
            .map(|(i, &filled)| i == 0 || (filled && rng.random_bool(self.config.row_keep)))
            .collect();
        let tokens = rows.iter().flatten().map(|&t| i64::from(t)).collect();
        Prepared { tokens, keep, targets }
    }
}

impl<B: Backend> Batcher<B, MsaItem, MsaBatch<B>> for MsaBatcher {
    /// # Panics
    /// When an item has no rows or items differ in length: windows of one loader all have a
    /// target row and the same L.
    fn batch(&self, items: Vec<MsaItem>, device: &B::Device) -> MsaBatch<B> {
        let (batch, m) = (items.len(), self.config.rows);
        let len = items.first().and_then(|i| i.rows.first()).map_or(0, Vec::len);
        let (mut tokens, mut keep, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for item in items {
            assert!(
                !item.rows.is_empty() && item.rows.iter().all(|r| r.len() == len),
                "items of one batch must have a target row and the same length"
            );
            let p = self.prepare(item, len);
            tokens.extend(p.tokens);
            keep.extend(p.keep);
            targets.extend(p.targets);
        }
        MsaBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch, m, len]), device),
            row_keep: Tensor::from_data(TensorData::new(keep, [batch, m]), device),
            targets: Tensor::from_data(TensorData::new(targets, [batch, len]), device),
            row_sparse: self.config.row_keep < 1.0,
        }
    }
}
