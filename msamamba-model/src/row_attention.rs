use burn::nn::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;
use msamamba_kernels::recomputed_linear::recomputed_linear;
use msamamba_kernels::row_attention::row_attention;
use msamamba_kernels::{RecomputedLinearBackend, RowAttentionBackend, RowAttentionInput};

use crate::recomputed::kept;

/// Multi-head self-attention across the M rows at each position, with learned absolute
/// row-position embeddings. Dropped and padding rows are masked out as keys.
///
/// The weights are those of burn's `MultiHeadAttention` (its query, key, value and output
/// projections), but the attention itself runs as one fused operation
/// ([`msamamba_kernels::row_attention`]) on the model's [B, M, L, D] layout: projections as plain
/// [B·M·L, D] matmuls and no transposes, where burn's module works on [B·L, M, D] batches.
#[derive(Config, Debug)]
pub struct RowAttentionConfig {
    /// Model width D.
    #[config(default = 128)]
    pub d_model: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Most rows an MSA may have (size of the row-position table).
    #[config(default = 128)]
    pub max_rows: usize,
}

/// See [`RowAttentionConfig`].
#[derive(Module, Debug)]
pub struct RowAttention<B: Backend> {
    /// The projections of the attention over rows (burn's module, for its weights and record).
    pub attention: MultiHeadAttention<B>,
    /// Learned embedding of each row index: [max_rows, D].
    pub row_position: Embedding<B>,
}

impl RowAttentionConfig {
    /// Initialises the row attention.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RowAttention<B> {
        RowAttention {
            attention: MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
                .with_dropout(0.0)
                .init(device),
            row_position: EmbeddingConfig::new(self.max_rows, self.d_model)
                .with_initializer(burn::nn::Initializer::Normal { mean: 0.0, std: 0.02 })
                .init(device),
        }
    }
}

impl<B: Backend> RowAttention<B> {
    /// Most rows the row-position table covers.
    pub fn max_rows(&self) -> usize {
        self.row_position.weight.dims()[0]
    }

    /// x plus the row-position embeddings: [B, M, L, D].
    pub fn with_positions(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let m = x.dims()[1];
        let index = Tensor::<B, 1, Int>::arange(0..m as i64, &x.device()).unsqueeze_dim::<2>(0); // [1, M]
        let positions = self.row_position.forward(index).cast(x.dtype());
        x + positions.unsqueeze_dim::<4>(2) // + [1, M, 1, D]
    }
}

impl<B: RowAttentionBackend + RecomputedLinearBackend> RowAttention<B> {
    /// Queries, keys and values come out of one projection (the three weights side by side) and
    /// are recomputed in the backward, not kept.
    ///
    /// # Shapes
    /// x: [B, M, L, D], row_keep: [B, M] Bool (true = attend to this row) -> [B, M, L, D]
    pub fn forward(&self, x: Tensor<B, 4>, row_keep: Tensor<B, 2, Bool>) -> Tensor<B, 4> {
        let x = self.with_positions(x);
        let mha = &self.attention;
        let dtype = x.dtype();
        let projections = [&mha.query, &mha.key, &mha.value];
        let weight = Tensor::cat(projections.map(|p| p.weight.val()).to_vec(), 1).cast(dtype);
        let bias = projections.map(|p| match &p.bias {
            Some(bias) => bias.val(),
            None => Tensor::zeros([mha.d_model], &x.device()),
        });
        let bias = Tensor::cat(bias.to_vec(), 0).cast(dtype);
        let context = row_attention(RowAttentionInput {
            qkv: recomputed_linear(x, weight, Some(bias)),
            key_keep: row_keep.float(),
            n_heads: mha.n_heads,
        });
        kept(&mha.output, context)
    }
}
